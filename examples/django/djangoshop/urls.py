"""URLs: the API under ``/api/`` (DRF's default router: trailing slashes), its OpenAPI 3
document at ``/api/openapi.json``, Django's session login at ``/accounts/login/`` and the
health check at ``/health/``."""

from django.contrib.auth import views as auth_views
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.urls import include, path
from rest_framework.renderers import JSONOpenAPIRenderer, JSONRenderer
from rest_framework.routers import DefaultRouter
from rest_framework.schemas import get_schema_view

from djangoshop.accounts.views import LogoutView, MeView, TokenLoginView, UserViewSet
from djangoshop.audit.views import AuditEventViewSet
from djangoshop.catalog.views import CategoryViewSet, ProductViewSet, TagViewSet
from djangoshop.inventory.views import StockItemViewSet, StockMovementViewSet, WarehouseViewSet
from djangoshop.orders.views import OrderLineViewSet, OrderViewSet


def health(request: HttpRequest) -> JsonResponse:
    """200 once the database answers; nocrud waits for it before a flow starts."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


router = DefaultRouter()
router.register("categories", CategoryViewSet, basename="category")
router.register("products", ProductViewSet, basename="product")
router.register("tags", TagViewSet, basename="tag")
router.register("warehouses", WarehouseViewSet, basename="warehouse")
router.register("stock-items", StockItemViewSet, basename="stockitem")
router.register("stock-movements", StockMovementViewSet, basename="stockmovement")
router.register("orders", OrderViewSet, basename="order")
router.register("order-lines", OrderLineViewSet, basename="orderline")
router.register("audit-events", AuditEventViewSet, basename="auditevent")
router.register("users", UserViewSet, basename="user")

schema_view = get_schema_view(
    title="djangoshop",
    description="The shop API of nocrud's Django example.",
    version="1.0.0",
    public=True,
    permission_classes=[],
    # Its own media type, and plain JSON for clients that ask for application/json.
    renderer_classes=[JSONOpenAPIRenderer, JSONRenderer],
)

#: JSON, not Django's HTML page, for URLs no route matches (djangoshop.api.not_found).
handler404 = "djangoshop.api.not_found"

urlpatterns = [
    path("health/", health, name="health"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/auth/token/", TokenLoginView.as_view(), name="token-login"),
    path("api/auth/logout/", LogoutView.as_view(), name="token-logout"),
    path("api/auth/me/", MeView.as_view(), name="me"),
    path("api/openapi.json", schema_view, name="openapi"),
    path("api/", include(router.urls)),
]
