"""JSON shapes of warehouses, stock items and movements."""

from typing import Any

from rest_framework import serializers

from djangoshop.inventory.models import StockItem, StockMovement, Warehouse


class WarehouseSerializer(serializers.ModelSerializer):
    class Meta:
        model = Warehouse
        fields = ["code", "name", "address", "is_active"]

    def validate_code(self, code: str) -> str:
        if self.instance is not None and code != self.instance.code:
            raise serializers.ValidationError("a warehouse's code is its id and cannot change")
        return code


class StockItemSerializer(serializers.ModelSerializer):
    warehouse = serializers.SlugRelatedField(slug_field="code", queryset=Warehouse.objects.all())
    needs_reorder = serializers.SerializerMethodField()

    class Meta:
        model = StockItem
        fields = ["id", "warehouse", "product", "quantity", "reorder_level", "needs_reorder"]
        read_only_fields = ["quantity"]

    def get_needs_reorder(self, item: StockItem) -> bool:
        return item.quantity <= item.reorder_level

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        warehouse = attrs.get("warehouse") or getattr(self.instance, "warehouse", None)
        product = attrs.get("product") or getattr(self.instance, "product", None)
        duplicate = StockItem.objects.filter(warehouse=warehouse, product=product)
        if self.instance is not None:
            duplicate = duplicate.exclude(pk=self.instance.pk)
        if duplicate.exists():
            raise serializers.ValidationError(
                {"product": ["this warehouse already has a stock item for this product"]}
            )
        return attrs


class StockMovementSerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = StockMovement
        fields = ["id", "item", "delta", "reason", "note", "created_by", "created_at"]


class AdjustmentSerializer(serializers.Serializer):
    """A change of quantity: ``delta`` (not 0), ``reason`` and an optional ``note``."""

    delta = serializers.IntegerField()
    reason = serializers.ChoiceField(
        choices=[
            StockMovement.Reason.RECEIPT,
            StockMovement.Reason.ADJUSTMENT,
            StockMovement.Reason.RETURN,
        ]
    )
    note = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)

    def validate_delta(self, delta: int) -> int:
        if delta == 0:
            raise serializers.ValidationError("must not be 0")
        return delta
