"""JSON shapes of the signed-in user and of the users an administrator manages."""

from typing import Any

from django.contrib.auth.models import Group, Permission, User
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from djangoshop.accounts.models import Profile


def permission_names(user: User) -> list[str]:
    return sorted(user.get_all_permissions())


class NameList(serializers.ListField):
    """Read-only names computed from the object, documented as an array of strings.

    A ``SerializerMethodField`` is documented as a string by DRF's inspector, which the
    lists of names below are not (found by `nocrud fuzz`: response_schema_conformance).
    """

    def __init__(self, names: Any, **kwargs: Any) -> None:
        self._names = names
        super().__init__(child=serializers.CharField(), read_only=True, source="*", **kwargs)

    def to_representation(self, data: Any) -> list[str]:
        return list(self._names(data))


class MeSerializer(serializers.ModelSerializer):
    """The signed-in user; only the profile fields can be changed."""

    username = serializers.CharField(source="user.username", read_only=True)
    email = serializers.EmailField(source="user.email", read_only=True)
    is_admin = serializers.BooleanField(source="user.is_superuser", read_only=True)
    groups = NameList(lambda profile: sorted(g.name for g in profile.user.groups.all()))
    permissions = NameList(lambda profile: permission_names(profile.user))

    class Meta:
        model = Profile
        fields = [
            "username",
            "email",
            "is_admin",
            "display_name",
            "phone_number",
            "marketing_opt_in",
            "groups",
            "permissions",
        ]

    def validate_phone_number(self, phone: str) -> str:
        digits = phone.replace(" ", "").replace("-", "")
        if digits and not (digits.lstrip("+").isdigit() and len(digits) >= 6):
            raise serializers.ValidationError("use digits, spaces and '-', e.g. +44 20 7946 0000")
        return phone


class PermissionField(serializers.RelatedField):
    """A permission as ``app_label.codename``, e.g. ``catalog.add_product``."""

    default_error_messages = {
        "unknown": "no permission {value!r}; use app_label.codename, e.g. catalog.add_product",
    }

    def to_representation(self, value: Permission) -> str:
        return f"{value.content_type.app_label}.{value.codename}"

    def to_internal_value(self, data: Any) -> Permission:
        app_label, _, codename = str(data).partition(".")
        try:
            return self.get_queryset().get(content_type__app_label=app_label, codename=codename)
        except Permission.DoesNotExist:
            self.fail("unknown", value=data)
            raise  # unreachable: fail() raises


class UserSerializer(serializers.ModelSerializer):
    """A user as an administrator sees it; ``password`` is write-only."""

    password = serializers.CharField(
        write_only=True, required=False, style={"input_type": "password"}
    )
    groups = serializers.SlugRelatedField(
        slug_field="name", many=True, queryset=Group.objects.all(), required=False
    )
    permissions = PermissionField(
        source="user_permissions",
        many=True,
        queryset=Permission.objects.select_related("content_type"),
        required=False,
    )

    class Meta:
        model = User
        fields = [
            "id",
            "username",
            "email",
            "first_name",
            "last_name",
            "is_active",
            "groups",
            "permissions",
            "password",
        ]

    def validate_password(self, password: str) -> str:
        try:
            validate_password(password)
        except DjangoValidationError as error:
            raise serializers.ValidationError(list(error.messages)) from error
        return password

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if self.instance is None and not attrs.get("password"):
            raise serializers.ValidationError({"password": ["a new user needs a password"]})
        return attrs

    def create(self, validated_data: dict[str, Any]) -> User:
        password = validated_data.pop("password")
        user = super().create(validated_data)
        user.set_password(password)
        user.save(update_fields=["password"])
        return user

    def update(self, instance: User, validated_data: dict[str, Any]) -> User:
        password = validated_data.pop("password", None)
        user = super().update(instance, validated_data)
        if password:
            user.set_password(password)
            user.save(update_fields=["password"])
        return user
