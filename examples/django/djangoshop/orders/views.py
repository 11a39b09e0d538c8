"""Order endpoints and their rules.

Customers see and change only their own orders; users with ``orders.view_order`` see
all, with ``orders.change_order`` change all. An order is edited while it is a draft;
``place`` takes its lines from the warehouse's stock (409 when short), ``cancel`` puts
them back, ``ship`` needs ``orders.ship_order``.
"""

from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from rest_framework import permissions, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from djangoshop.api import AuditedMixin, Conflict
from djangoshop.audit.models import record
from djangoshop.inventory.models import StockItem, StockMovement
from djangoshop.inventory.views import apply_movement
from djangoshop.orders.models import Order, OrderLine
from djangoshop.orders.serializers import OrderLineSerializer, OrderSerializer

Status = Order.Status


class OwnerOrStaff(permissions.BasePermission):
    """The order's customer, or a user allowed to change any order."""

    message = "only the customer or staff with orders.change_order may do this"

    def has_object_permission(self, request: Request, view: Any, obj: Any) -> bool:
        order = obj if isinstance(obj, Order) else obj.order
        if request.method in permissions.SAFE_METHODS:
            return True  # the queryset already hides other customers' orders
        return order.customer_id == request.user.pk or request.user.has_perm("orders.change_order")


def visible_orders(user: Any) -> QuerySet[Order]:
    orders = Order.objects.select_related("customer", "warehouse")
    return orders if user.has_perm("orders.view_order") else orders.filter(customer=user)


def require_draft(order: Order, doing: str) -> None:
    if order.status != Status.DRAFT:
        raise Conflict(f"order {order.number} is {order.status}; only a draft can be {doing}")


def update_total(order: Order) -> None:
    total = sum((line.unit_price * line.quantity for line in order.lines.all()), Decimal("0.00"))
    Order.objects.filter(pk=order.pk).update(total=total)


class OrderViewSet(AuditedMixin, viewsets.ModelViewSet):
    """Orders; ``?status=`` filters."""

    serializer_class = OrderSerializer
    permission_classes = [permissions.IsAuthenticated, OwnerOrStaff]

    def get_queryset(self) -> QuerySet[Order]:
        orders = visible_orders(self.request.user).prefetch_related("lines")
        if self.request.query_params.get("status"):
            orders = orders.filter(status=self.request.query_params["status"])
        return orders

    def perform_create(self, serializer: Any) -> None:
        order = serializer.save(customer=self.request.user)
        record(self.request.user, "created", order, self.request.data)

    def perform_update(self, serializer: Any) -> None:
        require_draft(serializer.instance, "changed")
        super().perform_update(serializer)

    def perform_destroy(self, instance: Order) -> None:
        require_draft(instance, "deleted")
        super().perform_destroy(instance)

    @action(detail=True, methods=["post"])
    def place(self, request: Request, pk: Any = None) -> Response:
        """Place a draft: needs lines and a warehouse holding enough of each product."""
        order = self.get_object()
        require_draft(order, "placed")
        lines = list(order.lines.select_related("product"))
        if not lines:
            raise Conflict(f"order {order.number} has no lines")
        if order.warehouse is None:
            raise Conflict(f"order {order.number} has no warehouse to ship from")
        with transaction.atomic():
            for line in lines:
                item = StockItem.objects.filter(
                    warehouse=order.warehouse, product=line.product
                ).first()
                if item is None or item.quantity < line.quantity:
                    held = item.quantity if item else 0
                    raise Conflict(
                        f"warehouse {order.warehouse.code} holds {held} of {line.product.sku}, "
                        f"the order needs {line.quantity}"
                    )
                apply_movement(
                    item,
                    delta=-line.quantity,
                    reason=StockMovement.Reason.ORDER,
                    note=order.number,
                    user=request.user,
                )
            order.status = Status.PLACED
            order.placed_at = timezone.now()
            order.save(update_fields=["status", "placed_at"])
            record(request.user, "placed", order)
        return Response(self.get_serializer(self.get_object()).data)

    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: Any = None) -> Response:
        """Cancel a draft or a placed order; a placed order's stock goes back."""
        order = self.get_object()
        if order.status not in {Status.DRAFT, Status.PLACED}:
            raise Conflict(f"order {order.number} is {order.status} and cannot be cancelled")
        with transaction.atomic():
            if order.status == Status.PLACED:
                for line in order.lines.all():
                    item = StockItem.objects.get(warehouse=order.warehouse, product=line.product)
                    apply_movement(
                        item,
                        delta=line.quantity,
                        reason=StockMovement.Reason.RETURN,
                        note=order.number,
                        user=request.user,
                    )
            order.status = Status.CANCELLED
            order.save(update_fields=["status"])
            record(request.user, "cancelled", order)
        return Response(self.get_serializer(order).data)

    @action(detail=True, methods=["post"])
    def ship(self, request: Request, pk: Any = None) -> Response:
        """Ship a placed order (``orders.ship_order``)."""
        order = self.get_object()
        if not request.user.has_perm("orders.ship_order"):
            self.permission_denied(request, message="shipping needs orders.ship_order")
        if order.status != Status.PLACED:
            raise Conflict(f"order {order.number} is {order.status}; only a placed order ships")
        order.status = Status.SHIPPED
        order.save(update_fields=["status"])
        record(request.user, "shipped", order)
        return Response(self.get_serializer(order).data)


class OrderLineViewSet(AuditedMixin, viewsets.ModelViewSet):
    """Lines of the orders the user may see; ``?order=<id>`` filters."""

    serializer_class = OrderLineSerializer
    permission_classes = [permissions.IsAuthenticated, OwnerOrStaff]

    def get_queryset(self) -> QuerySet[OrderLine]:
        lines = OrderLine.objects.filter(order__in=visible_orders(self.request.user))
        if self.request.query_params.get("order", "").isdigit():
            lines = lines.filter(order_id=int(self.request.query_params["order"]))
        return lines

    def _check_order(self, order: Order) -> None:
        user = self.request.user
        if order.customer_id != user.pk and not user.has_perm("orders.change_order"):
            self.permission_denied(self.request, message="this order is someone else's")
        require_draft(order, "changed")

    def perform_create(self, serializer: Any) -> None:
        order = serializer.validated_data["order"]
        self._check_order(order)
        serializer.save(unit_price=serializer.validated_data["product"].unit_price)
        update_total(order)
        record(self.request.user, "created", serializer.instance, self.request.data)

    def perform_update(self, serializer: Any) -> None:
        self._check_order(serializer.instance.order)
        super().perform_update(serializer)
        update_total(serializer.instance.order)

    def perform_destroy(self, instance: OrderLine) -> None:
        self._check_order(instance.order)
        order = instance.order
        super().perform_destroy(instance)
        update_total(order)
