"""Orders and order lines."""

import uuid
from typing import Any

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone


class Order(models.Model):
    """A customer's order: a draft until placed, then paid for, shipped or cancelled."""

    class Status(models.TextChoices):
        DRAFT = "draft", "draft"
        PLACED = "placed", "placed"
        SHIPPED = "shipped", "shipped"
        CANCELLED = "cancelled", "cancelled"

    number = models.CharField(max_length=20, unique=True)
    customer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="orders"
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    warehouse = models.ForeignKey(
        "inventory.Warehouse", null=True, blank=True, on_delete=models.PROTECT
    )
    shipping_address = models.TextField(blank=True, default="")
    note = models.CharField(max_length=200, blank=True, default="")
    total = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    created_at = models.DateTimeField(default=timezone.now)
    placed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        permissions = [("ship_order", "Can ship orders")]

    def __str__(self) -> str:
        return self.number

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Number a new order after its id (``ORD-000042``), as migration 0003 did."""
        if self.number:
            super().save(*args, **kwargs)
            return
        self.number = f"TMP-{uuid.uuid4().hex[:16]}"
        super().save(*args, **kwargs)
        self.number = f"ORD-{self.pk:06d}"
        super().save(update_fields=["number"])


class OrderLine(models.Model):
    """A product and a quantity in an order, at the price when it was added."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    product = models.ForeignKey("catalog.Product", on_delete=models.PROTECT)
    quantity = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    unit_price = models.DecimalField(max_digits=10, decimal_places=2)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["order", "product"], name="orders_line_unique_product")
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.product_id}"
