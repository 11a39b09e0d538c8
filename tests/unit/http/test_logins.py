"""Tests of redirects off the app and of the logins frameworks use (issue 21, items 5 and 7).

Against the same real HTTP server as ``test_client.py``: a redirect to an external
login page is a FAILED status check naming its ``Location``; ``auth=None`` sends no
session cookie; OAuth2's password flow (token URL given or read from the OpenAPI
document) and a RealWorld-style nested JSON login with ``Token`` tokens.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from nocrud.flows.context import FlowContext
from nocrud.http.client import (
    ApiClient,
    BearerToken,
    LoginError,
    UnexpectedStatus,
    bearer_login,
    oauth2_login,
)
from nocrud.masking import MASK
from tests.unit.http.test_client import PASSWORD, TOKEN, USER, AppServer


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = AppServer()
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.release.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@pytest.fixture
def api(server: str) -> Iterator[ApiClient]:
    with ApiClient(server, timeout=2.0) as client:
        yield client


def test_a_redirect_off_the_app_is_a_failed_status_naming_its_location(api: ApiClient) -> None:
    with pytest.raises(UnexpectedStatus) as caught:
        api.post("/redirect/away", json={"name": "x"})
    message = str(caught.value)
    assert caught.value.response.status == 302
    assert "-> 302 Found (expected 2xx)" in message, message
    assert "Location: https://login.example.invalid/sso?next=/x (not followed)" in message
    # A flow that expects the redirect can say so.
    assert api.post("/redirect/away", expect=302).headers["Location"].startswith("https://")


def test_a_redirect_on_the_app_is_still_followed(api: ApiClient) -> None:
    response = api.get("/redirect/here")
    assert response.status == 200
    assert response.json()["path"] == "/echo"


def test_auth_none_sends_no_session_cookie_but_its_own(api: ApiClient) -> None:
    api.session.cookies.set("sessionid", "abc")
    assert api.get("/echo").json()["headers"]["Cookie"] == "sessionid=abc"
    assert "Cookie" not in api.get("/echo", auth=None).json()["headers"]
    sent = api.get("/echo", auth=None, cookies={"theme": "dark"}).json()["headers"]
    assert sent["Cookie"] == "theme=dark"


def test_oauth2_login_reads_the_token_url_from_the_openapi_document(api: ApiClient) -> None:
    token = oauth2_login(api, username=USER, password=PASSWORD)
    assert isinstance(token, BearerToken)
    assert api.auth is token
    assert api.get("/api/me").json() == {"user": USER}
    assert repr(token) == f"BearerToken({MASK})"


def test_oauth2_login_with_a_given_token_url_and_wrong_password(api: ApiClient) -> None:
    with pytest.raises(UnexpectedStatus) as caught:
        oauth2_login(api, "/token", username=USER, password="wrong")
    assert "401" in str(caught.value)
    assert "wrong" not in str(caught.value)


def test_oauth2_login_without_a_declared_flow_says_what_to_pass(api: ApiClient) -> None:
    with pytest.raises(LoginError, match=r"no OAuth2 password flow .*pass token_url="):
        oauth2_login(api, username=USER, password=PASSWORD, openapi="/echo")


def test_a_realworld_login_nests_the_body_and_sends_token_scheme(api: ApiClient) -> None:
    token = bearer_login(
        api,
        "/api/users/login",
        username=USER,
        password=PASSWORD,
        username_field="user.email",
        password_field="user.password",
        token_field="user.token",
        scheme="Token",
    )
    assert token.scheme == "Token"
    sent = api.get("/echo").json()["headers"]
    assert sent["Authorization"] == f"Token {TOKEN}"


def _context(api: ApiClient) -> FlowContext:
    def no_db() -> Any:
        raise AssertionError("no database here")

    return FlowContext(
        name="f", base_url=api.base_url, api=api, _connect_db=no_db, _new_client=ApiClient
    )


def test_ctx_login_with_form_uses_oauth2(api: ApiClient) -> None:
    ctx = _context(api)
    assert ctx.login(USER, PASSWORD, form=True) is api
    assert api.get("/api/me").json() == {"user": USER}


def test_ctx_login_with_a_nested_body(api: ApiClient) -> None:
    ctx = _context(api)
    ctx.login(
        USER,
        PASSWORD,
        path="/api/users/login",
        username_field="user.email",
        password_field="user.password",
        token_field="user.token",
        scheme="Token",
    )
    assert api.get("/api/me").json() == {"user": USER}
