"""JSON shapes of orders and order lines."""

from typing import Any

from rest_framework import serializers

from djangoshop.catalog.models import Product
from djangoshop.inventory.models import Warehouse
from djangoshop.orders.models import Order, OrderLine


class OrderLineSerializer(serializers.ModelSerializer):
    class Meta:
        model = OrderLine
        fields = ["id", "order", "product", "quantity", "unit_price"]
        read_only_fields = ["unit_price"]

    def validate_quantity(self, quantity: int) -> int:
        if quantity < 1:
            raise serializers.ValidationError("must be at least 1")
        return quantity

    def validate_product(self, product: Product) -> Product:
        if not product.is_active:
            raise serializers.ValidationError(f"product {product.sku} is not on sale")
        return product

    def validate_order(self, order: Order) -> Order:
        if self.instance is not None and order.pk != self.instance.order_id:
            raise serializers.ValidationError("a line cannot move to another order")
        return order

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        order = attrs.get("order") or getattr(self.instance, "order", None)
        product = attrs.get("product") or getattr(self.instance, "product", None)
        others = OrderLine.objects.filter(order=order, product=product)
        if self.instance is not None:
            others = others.exclude(pk=self.instance.pk)
        if others.exists():
            raise serializers.ValidationError(
                {"product": ["already in this order: change that line's quantity instead"]}
            )
        return attrs


class OrderSerializer(serializers.ModelSerializer):
    customer = serializers.SlugRelatedField(slug_field="username", read_only=True)
    warehouse = serializers.SlugRelatedField(
        slug_field="code",
        queryset=Warehouse.objects.filter(is_active=True),
        required=False,
        allow_null=True,
    )
    lines = OrderLineSerializer(many=True, read_only=True)

    class Meta:
        model = Order
        fields = [
            "id",
            "number",
            "customer",
            "status",
            "warehouse",
            "shipping_address",
            "note",
            "total",
            "lines",
            "created_at",
            "placed_at",
        ]
        read_only_fields = ["number", "status", "total", "created_at", "placed_at"]
