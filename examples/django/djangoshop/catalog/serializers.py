"""JSON shapes of categories, products and tags."""

from typing import Any

from rest_framework import serializers

from djangoshop.catalog.models import Category, Product, Tag


class CategorySerializer(serializers.ModelSerializer):
    class Meta:
        model = Category
        fields = ["id", "name", "slug", "parent"]

    def validate_parent(self, parent: Category | None) -> Category | None:
        node = parent
        while node is not None:
            if self.instance is not None and node.pk == self.instance.pk:
                raise serializers.ValidationError("a category cannot be its own ancestor")
            node = node.parent
        return parent


class TagSerializer(serializers.ModelSerializer):
    class Meta:
        model = Tag
        fields = ["slug", "label"]

    def validate_slug(self, slug: str) -> str:
        if self.instance is not None and slug != self.instance.slug:
            raise serializers.ValidationError("a tag's slug is its id and cannot change")
        return slug


class ProductSerializer(serializers.ModelSerializer):
    tags = serializers.PrimaryKeyRelatedField(many=True, queryset=Tag.objects.all(), required=False)

    class Meta:
        model = Product
        fields = [
            "id",
            "sku",
            "name",
            "slug",
            "description",
            "category",
            "unit_price",
            "is_active",
            "tags",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["slug", "created_at", "updated_at"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("is_active", True) is False and self.instance is None:
            raise serializers.ValidationError(
                {"is_active": ["a new product is active; deactivate it afterwards"]}
            )
        return attrs
