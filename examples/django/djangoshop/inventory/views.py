"""Inventory endpoints: warehouses by code (PUT creates one), stock, movements."""

from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.db.models import F, QuerySet
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from djangoshop.api import AuditedMixin, Conflict
from djangoshop.audit.models import record
from djangoshop.catalog.views import ModelPermissions
from djangoshop.inventory.models import StockItem, StockMovement, Warehouse
from djangoshop.inventory.serializers import (
    AdjustmentSerializer,
    StockItemSerializer,
    StockMovementSerializer,
    WarehouseSerializer,
)


class WarehouseViewSet(AuditedMixin, viewsets.ModelViewSet):
    """Warehouses, addressed by their code; ``PUT /api/warehouses/<code>/`` creates one."""

    queryset = Warehouse.objects.all()
    serializer_class = WarehouseSerializer
    permission_classes = [ModelPermissions]
    lookup_field = "code"

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        code = kwargs["code"]
        # The URL names the warehouse: the body may leave the code out, not contradict it.
        if not isinstance(request.data, Mapping):  # `nocrud fuzz` sent `false`: a 500 before
            raise ValidationError({"non_field_errors": ["expected an object"]})
        data = {"code": code, **request.data}
        if data["code"] != code:
            raise ValidationError({"code": [f"the URL names warehouse {code!r}"]})
        if kwargs.get("partial") or self.get_queryset().filter(code=code).exists():
            instance = self.get_object()
            serializer = self.get_serializer(instance, data=data, partial=kwargs.get("partial"))
            serializer.is_valid(raise_exception=True)
            self.perform_update(serializer)
            return Response(serializer.data)
        if not request.user.has_perm("inventory.add_warehouse"):
            raise PermissionDenied("creating a warehouse needs inventory.add_warehouse")
        serializer = self.get_serializer(data=data)
        serializer.is_valid(raise_exception=True)
        self.perform_create(serializer)
        return Response(serializer.data, status=status.HTTP_201_CREATED)


class StockItemViewSet(AuditedMixin, viewsets.ModelViewSet):
    """Stock per product and warehouse; quantities change only through ``adjust``."""

    queryset = StockItem.objects.select_related("warehouse")
    serializer_class = StockItemSerializer
    permission_classes = [ModelPermissions]

    def get_queryset(self) -> QuerySet[StockItem]:
        items = super().get_queryset()
        params = self.request.query_params
        if params.get("warehouse"):
            items = items.filter(warehouse__code=params["warehouse"])
        if params.get("product", "").isdigit():
            items = items.filter(product_id=int(params["product"]))
        return items

    def perform_destroy(self, instance: StockItem) -> None:
        if instance.quantity:
            raise Conflict(f"the item still holds {instance.quantity}; adjust it to 0 first")
        super().perform_destroy(instance)

    @action(
        detail=True,
        methods=["post"],
        serializer_class=AdjustmentSerializer,
        permission_classes=[IsAuthenticated],  # checked below: change, not add
    )
    def adjust(self, request: Request, pk: Any = None) -> Response:
        """Receive, correct or return stock; the quantity never goes below 0."""
        item = self.get_object()
        if not request.user.has_perm("inventory.change_stockitem"):
            raise PermissionDenied("adjusting stock needs inventory.change_stockitem")
        serializer = AdjustmentSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        movement = apply_movement(item, **serializer.validated_data, user=request.user)
        record(request.user, "adjusted", item, serializer.validated_data)
        return Response(StockMovementSerializer(movement).data, status=status.HTTP_201_CREATED)


def apply_movement(
    item: StockItem, *, delta: int, reason: str, note: str = "", user: Any
) -> StockMovement:
    """Change ``item``'s quantity by ``delta`` and record the movement, or raise Conflict."""
    with transaction.atomic():
        changed = StockItem.objects.filter(pk=item.pk, quantity__gte=-delta).update(
            quantity=F("quantity") + delta
        )
        if not changed:
            item.refresh_from_db()
            raise Conflict(f"stock item {item.pk} holds {item.quantity}; cannot take {-delta}")
        item.refresh_from_db()
        return StockMovement.objects.create(
            item=item, delta=delta, reason=reason, note=note, created_by=user
        )


class StockMovementViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """The history of stock changes; ``?item=<id>`` filters by stock item."""

    queryset = StockMovement.objects.select_related("created_by")
    serializer_class = StockMovementSerializer

    def get_queryset(self) -> QuerySet[StockMovement]:
        movements = super().get_queryset()
        if self.request.query_params.get("item", "").isdigit():
            movements = movements.filter(item_id=int(self.request.query_params["item"]))
        return movements
