"""Catalog endpoints: anyone signed in reads, users with the model permission write."""

from typing import Any

from django.db.models import QuerySet
from rest_framework import permissions, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from djangoshop.api import AuditedMixin
from djangoshop.audit.models import record
from djangoshop.catalog.models import Category, Product, Tag
from djangoshop.catalog.serializers import CategorySerializer, ProductSerializer, TagSerializer


class ModelPermissions(permissions.DjangoModelPermissions):
    """Reads need a signed-in user; writes need add/change/delete on the model."""


class CategoryViewSet(AuditedMixin, viewsets.ModelViewSet):
    queryset = Category.objects.all()
    serializer_class = CategorySerializer
    permission_classes = [ModelPermissions]


class TagViewSet(AuditedMixin, viewsets.ModelViewSet):
    queryset = Tag.objects.all()
    serializer_class = TagSerializer
    permission_classes = [ModelPermissions]


class ProductViewSet(AuditedMixin, viewsets.ModelViewSet):
    """Products; ``?category=<id>``, ``?active=true|false`` and ``?search=<text>`` filter."""

    queryset = Product.objects.select_related("category").prefetch_related("tags")
    serializer_class = ProductSerializer
    permission_classes = [ModelPermissions]

    def get_queryset(self) -> QuerySet[Product]:
        products = super().get_queryset()
        params = self.request.query_params
        if params.get("category", "").isdigit():
            products = products.filter(category_id=int(params["category"]))
        if params.get("active") in {"true", "false"}:
            products = products.filter(is_active=params["active"] == "true")
        if params.get("search"):
            products = products.filter(name__icontains=params["search"])
        return products

    # Checked below: deactivating is a change, which POST would map to "add".
    @action(detail=True, methods=["post"], permission_classes=[IsAuthenticated])
    def deactivate(self, request: Request, pk: Any = None) -> Response:
        """Take a product off sale; it stays in past orders."""
        product = self.get_object()
        if not request.user.has_perm("catalog.change_product"):
            raise PermissionDenied("deactivating a product needs catalog.change_product")
        product.is_active = False
        product.save(update_fields=["is_active", "updated_at"])
        record(request.user, "deactivated", product)
        return Response(self.get_serializer(product).data)
