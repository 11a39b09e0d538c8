"""Warehouses, stock items and the movements that change them."""

from django.conf import settings
from django.db import models
from django.utils import timezone


class Warehouse(models.Model):
    """A place that holds stock; the API addresses it by ``code``."""

    code = models.SlugField(max_length=20, unique=True)
    name = models.CharField(max_length=100)
    address = models.TextField(blank=True, default="")
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code


class StockItem(models.Model):
    """How many of one product one warehouse holds."""

    warehouse = models.ForeignKey(Warehouse, on_delete=models.PROTECT, related_name="stock")
    product = models.ForeignKey("catalog.Product", on_delete=models.PROTECT, related_name="stock")
    quantity = models.PositiveIntegerField(default=0)
    reorder_level = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["warehouse", "product"], name="inventory_stockitem_unique_product"
            )
        ]

    def __str__(self) -> str:
        return f"{self.product_id}@{self.warehouse_id}"


class StockMovement(models.Model):
    """One change of a stock item's quantity, and why."""

    class Reason(models.TextChoices):
        RECEIPT = "receipt", "receipt"
        ADJUSTMENT = "adjustment", "adjustment"
        ORDER = "order", "order"
        RETURN = "return", "return"

    item = models.ForeignKey(StockItem, on_delete=models.CASCADE, related_name="movements")
    delta = models.IntegerField()
    reason = models.CharField(max_length=20, choices=Reason.choices)
    note = models.CharField(max_length=200, blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.delta:+d} {self.reason}"
