"""Auth endpoints (token login and logout, the signed-in user) and user administration."""

from typing import Any

from django.contrib.auth.models import User
from rest_framework import generics, permissions, status, viewsets
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from djangoshop.accounts.models import Profile
from djangoshop.accounts.serializers import MeSerializer, UserSerializer
from djangoshop.api import AuditedMixin


class TokenLoginView(ObtainAuthToken):
    """``POST {"username", "password"}`` → ``{"token"}``; send it as ``Bearer`` or ``Token``."""


class LogoutView(APIView):
    """Revoke the user's token (DRF keeps one per user); Django sessions stay signed in."""

    #: Documented by djangoshop.api.ShopSchema (DRF assumes 201 for every POST).
    success_status = status.HTTP_204_NO_CONTENT

    def post(self, request: Request) -> Response:
        Token.objects.filter(user=request.user).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(generics.RetrieveUpdateAPIView):
    """The signed-in user, with groups and permissions; profile fields can be changed."""

    serializer_class = MeSerializer

    def get_object(self) -> Profile:
        profile, _ = Profile.objects.get_or_create(user=self.request.user)
        return profile


class UserViewSet(AuditedMixin, viewsets.ModelViewSet):
    """Users, their groups and their own permissions: administrators only."""

    queryset = User.objects.prefetch_related("groups", "user_permissions__content_type").order_by(
        "id"
    )
    serializer_class = UserSerializer
    permission_classes = [permissions.IsAdminUser]

    def perform_destroy(self, instance: Any) -> None:
        if instance == self.request.user:
            self.permission_denied(self.request, message="administrators cannot delete themselves")
        super().perform_destroy(instance)
