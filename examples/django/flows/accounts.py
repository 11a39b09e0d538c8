"""Signing in (token and Django session with CSRF), signing out, and per-user permissions."""

from __future__ import annotations

from flows.builders import (
    SESSION_LOGIN,
    TOKEN_LOGIN,
    build_category,
    build_order,
    build_product,
    password_of,
    sign_in,
    user,
)
from nocrud import BearerToken, FlowContext, SessionLogin, flow, unique, unique_email

ROLES = {
    "admin": {"groups": [], "is_admin": True, "can": "orders.ship_order"},
    "manager": {"groups": ["managers"], "is_admin": False, "can": "catalog.add_product"},
    "clerk": {"groups": ["clerks"], "is_admin": False, "can": "orders.ship_order"},
    "alice": {"groups": ["customers"], "is_admin": False, "can": None},
}


@flow(params=list(ROLES), tags=["accounts", "auth"])
def me_names_groups_and_permissions(ctx: FlowContext, username: str) -> None:
    """GET /api/auth/me/ names the user, its groups and what it may do."""
    sign_in(ctx, username)
    me = ctx.api.get("/api/auth/me/").data
    role = ROLES[username]
    assert me["username"] == username
    assert me["groups"] == role["groups"]
    assert me["is_admin"] is role["is_admin"]
    if role["can"]:
        assert role["can"] in me["permissions"]
    else:
        assert me["permissions"] == []


@flow(tags=["accounts"])
def profile_can_be_edited(ctx: FlowContext) -> None:
    """A user changes its own profile with PATCH and PUT; the user name stays."""
    sign_in(ctx, "bob")
    patched = ctx.api.patch("/api/auth/me/", json={"phone_number": "+44 20 7946 0000"}).data
    assert patched["phone_number"] == "+44 20 7946 0000"
    assert patched["display_name"] == "Bob Baker"
    body = {"display_name": "Bobby", "phone_number": "", "marketing_opt_in": True}
    replaced = ctx.api.put("/api/auth/me/", json={**body, "username": "mallory"}).data
    assert {key: replaced[key] for key in body} == body
    assert replaced["username"] == "bob"


@flow(tags=["auth"])
def anonymous_requests_are_refused(ctx: FlowContext) -> None:
    """Without credentials the API answers 401 and names the Bearer scheme."""
    refused = ctx.api.get("/api/products/", expect=401)
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    ctx.api.post("/api/orders/", json={}, expect=401)


@flow(tags=["auth"])
def wrong_password_gets_no_token(ctx: FlowContext) -> None:
    """A wrong password is a 400 naming no token; the right one gets a token."""
    answer = ctx.api.post(
        TOKEN_LOGIN, json={"username": "alice", "password": "guess"}, expect=400
    ).data
    assert "token" not in answer
    assert answer["non_field_errors"]
    good = ctx.api.post(TOKEN_LOGIN, json={"username": "alice", "password": password_of("alice")})
    assert len(good.data["token"]) == 40


@flow(tags=["auth"])
def token_works_with_both_schemes(ctx: FlowContext) -> None:
    """The same token is accepted as ``Bearer`` and as DRF's ``Token``."""
    token = ctx.api.post(
        TOKEN_LOGIN, json={"username": "clerk", "password": password_of("clerk")}
    ).data["token"]
    for scheme in ("Bearer", "Token"):
        client = ctx.new_client(f"clerk-{scheme}", auth=BearerToken(token, scheme=scheme))
        assert client.get("/api/auth/me/").data["username"] == "clerk"


@flow(tags=["auth"])
def logout_revokes_the_token(ctx: FlowContext) -> None:
    """After POST /api/auth/logout/ the token is refused."""
    sign_in(ctx, "alice")
    ctx.api.get("/api/auth/me/", expect=200)
    ctx.api.post("/api/auth/logout/", expect=204)
    ctx.api.get("/api/auth/me/", expect=401)


@flow(tags=["auth", "session"])
def session_login_with_csrf(ctx: FlowContext) -> None:
    """Django's login form signs in; unsafe requests need the CSRF header."""
    alice = ctx.new_client(
        "alice-session", auth=SessionLogin(SESSION_LOGIN, "alice", "alice-password")
    )
    assert alice.get("/api/auth/me/").data["username"] == "alice"
    order = build_order(alice, note="from the browser")
    assert order["customer"] == "alice"
    # The session cookie alone is not enough to change anything: auth=None sends no
    # CSRF header and no cookie, so the session cookie goes back in by hand.
    session = {"sessionid": alice.session.cookies["sessionid"]}
    refused = alice.patch(
        f"/api/orders/{order['id']}/",
        json={"note": "forged"},
        auth=None,
        cookies=session,
        expect=403,
    ).data
    assert "CSRF" in refused["detail"]
    assert alice.get(f"/api/orders/{order['id']}/").data["note"] == "from the browser"


@flow(tags=["auth", "session"])
def session_login_with_a_wrong_password_fails(ctx: FlowContext) -> None:
    """A wrong password at the login form gives no session: the API still says 401."""
    intruder = ctx.new_client("intruder")
    page = intruder.get(SESSION_LOGIN)
    assert "csrfmiddlewaretoken" in page.text
    token = intruder.session.cookies["csrftoken"]
    intruder.post(
        SESSION_LOGIN,
        data={"username": "alice", "password": "guess", "csrfmiddlewaretoken": token},
        headers={"Referer": intruder.url(SESSION_LOGIN)},
        allow_redirects=False,
        expect=200,  # the form again, with an error
    )
    assert "sessionid" not in intruder.session.cookies
    intruder.get("/api/auth/me/", expect=401)


@flow(tags=["accounts", "permissions", "users"])
def admin_grants_permissions_to_a_user(ctx: FlowContext) -> None:
    """Permissions are per user: what the admin grants, the user may do, nothing more."""
    admin = user(ctx, "admin")
    name = unique("dana")
    created = admin.post(
        "/api/users/",
        json={
            "username": name,
            "email": unique_email(),
            "password": "dana-passphrase-42",
            "permissions": ["catalog.add_product", "catalog.add_category"],
        },
        expect=201,
    ).data
    dana = ctx.new_client(
        name, username=name, password="dana-passphrase-42", login_path=TOKEN_LOGIN
    )
    product = build_product(dana)
    dana.delete(f"/api/products/{product['id']}/", expect=403)
    admin.patch(
        f"/api/users/{created['id']}/",
        json={"permissions": ["catalog.add_product", "catalog.delete_product"]},
    )
    dana.delete(f"/api/products/{product['id']}/", expect=204)
    dana.post("/api/categories/", json={"name": name, "slug": name}, expect=403)


@flow(tags=["users", "permissions"])
def only_admins_manage_users(ctx: FlowContext) -> None:
    """The manager may not list or create users, and an admin cannot delete itself."""
    manager = user(ctx, "manager")
    manager.get("/api/users/", expect=403)
    manager.post("/api/users/", json={"username": unique("eve"), "password": "x"}, expect=403)
    admin = sign_in(ctx, "admin")
    me = next(u for u in admin.get("/api/users/").data["results"] if u["username"] == "admin")
    admin.delete(f"/api/users/{me['id']}/", expect=403)


@flow(tags=["catalog", "permissions"])
def customers_read_the_catalog_but_do_not_write_it(ctx: FlowContext) -> None:
    """Customers list products; creating, changing and deleting them is refused."""
    product = build_product(user(ctx, "manager"))
    alice = sign_in(ctx, "alice")
    assert alice.get(f"/api/products/{product['id']}/").data["sku"] == product["sku"]
    with alice.expect_status(403):
        alice.post("/api/categories/", json={"name": "x", "slug": "x"})
        alice.patch(f"/api/products/{product['id']}/", json={"unit_price": "0.01"})
        alice.delete(f"/api/products/{product['id']}/")
        alice.post(f"/api/products/{product['id']}/deactivate/")
    category = build_category(user(ctx, "manager"))
    assert category["name"].startswith("category-")
