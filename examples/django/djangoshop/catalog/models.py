"""Categories, products and tags."""

from decimal import Decimal
from typing import Any

from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone
from django.utils.text import slugify

SKU_VALIDATOR = RegexValidator(
    r"^[A-Z0-9][A-Z0-9-]*$", "use upper-case letters, digits and '-', e.g. TEA-001"
)


class Category(models.Model):
    """A product category; categories may nest."""

    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "categories"

    def __str__(self) -> str:
        return self.name


class Tag(models.Model):
    """A label on products; its slug, chosen by the client, is its id."""

    slug = models.SlugField(max_length=50, primary_key=True)
    label = models.CharField(max_length=100)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.label


class Product(models.Model):
    """Something the shop sells."""

    sku = models.CharField(max_length=32, unique=True, validators=[SKU_VALIDATOR])
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=220, unique=True)
    description = models.TextField(blank=True, default="")
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="products")
    unit_price = models.DecimalField(
        max_digits=10, decimal_places=2, validators=[MinValueValidator(Decimal("0"))]
    )
    is_active = models.BooleanField(default=True)
    tags = models.ManyToManyField(Tag, blank=True, related_name="products")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["category", "is_active"], name="catalog_product_cat_active")
        ]

    def __str__(self) -> str:
        return f"{self.sku} {self.name}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self.slug:
            self.slug = unique_slug(self.name, self.sku)
        super().save(*args, **kwargs)


def unique_slug(name: str, sku: str) -> str:
    """A slug made of the name and the SKU, which is unique already."""
    return slugify(f"{name} {sku}")[:220]
