"""Revocable bearer tokens: sign-out and a password change end them (and the person's inbox
sessions), checked in the database on every request; revoked tokens get the expired ones' 401."""

from __future__ import annotations

import re

import httpx

from api.auth import security
from tests.api.conftest import DEMO_PASSWORD, login

ME = "/api/v1/staff/me"
NEW_PASSWORD = "a-much-longer-password-42"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def browser(harness, handle: str, password: str = DEMO_PASSWORD) -> httpx.AsyncClient:
    """A separate signed-in browser (its own cookie jar)."""
    c = httpx.AsyncClient(transport=httpx.ASGITransport(app=harness.app),
                          base_url="http://testserver")
    page = await c.get("/inbox/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    r = await c.post("/inbox/login", data={"handle": handle, "password": password,
                                           "csrf": csrf})
    assert r.status_code == 303, r.text
    return c


async def csrf_of(c: httpx.AsyncClient) -> str:
    page = await c.get("/inbox")
    return re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)


async def test_sign_out_ends_every_token_and_session(harness):
    c = harness.client
    first, second = await login(c, "noor"), await login(c, "noor")
    karim = await login(c, "karim")
    laptop = await browser(harness, "noor")
    try:
        assert (await laptop.get(ME)).status_code == 200
        r = await c.post("/api/v1/auth/logout", headers=first)
        assert r.status_code == 204
        for headers in (first, second):
            r = await c.get(ME, headers=headers)
            assert r.status_code == 401
            assert r.json() == {"detail": "invalid, expired or revoked token"}
            assert r.headers["www-authenticate"] == "Bearer"
        assert (await laptop.get(ME)).status_code == 401  # the inbox session ended too
        assert (await c.get(ME, headers=karim)).status_code == 200  # others are untouched
        assert (await c.post("/api/v1/auth/logout", headers=first)).status_code == 401
        # signing in again works
        assert (await c.get(ME, headers=await login(c, "noor"))).status_code == 200
    finally:
        await laptop.aclose()


async def test_revoked_and_expired_tokens_get_the_same_401(harness):
    c = harness.client
    settings = harness.services.settings
    expired = security.issue_token(secret=settings.auth_token_secret, staff_id=1, version=0,
                                   ttl_s=-10)
    old_version = await login(c, "tom")
    await c.post("/api/v1/auth/logout", headers=old_version)
    a = await c.get(ME, headers=bearer(expired))
    b = await c.get(ME, headers=old_version)
    assert (a.status_code, a.json(), a.headers["www-authenticate"]) == \
        (b.status_code, b.json(), b.headers["www-authenticate"]) == \
        (401, {"detail": "invalid, expired or revoked token"}, "Bearer")


async def test_inbox_sign_out_is_the_same_sign_out(harness):
    c = harness.client
    token = await login(c, "laura")
    laptop = await browser(harness, "laura")
    try:
        r = await laptop.post("/inbox/logout", data={"csrf": await csrf_of(laptop)})
        assert r.status_code == 303
        assert (await c.get(ME, headers=token)).status_code == 401
    finally:
        await laptop.aclose()


async def test_password_change_ends_the_other_tokens(harness):
    c = harness.client
    used, other = await login(c, "noor"), await login(c, "noor")
    laptop = await browser(harness, "noor")
    url = "/api/v1/auth/password"
    try:
        r = await c.post(url, json={"old_password": "wrong-one", "new_password": NEW_PASSWORD},
                         headers=used)
        assert r.status_code == 403
        r = await c.post(url, json={"old_password": DEMO_PASSWORD, "new_password": "tiny-pw"},
                         headers=used)
        assert r.status_code == 422
        [error] = r.json()["detail"]
        assert error["loc"] == ["body", "new_password"] and "12" in error["msg"]
        assert "tiny-pw" not in r.text  # the password is not echoed
        r = await c.post(url, json={"old_password": DEMO_PASSWORD, "new_password": NEW_PASSWORD},
                         headers=used)
        assert r.status_code == 200, r.text
        fresh = bearer(r.json()["access_token"])
        assert (await c.get(ME, headers=fresh)).json()["handle"] == "noor"
        for ended in (used, other):
            assert (await c.get(ME, headers=ended)).status_code == 401
        assert (await laptop.get(ME)).status_code == 401
        r = await c.post("/api/v1/auth/login",
                         json={"handle": "noor", "password": DEMO_PASSWORD})
        assert r.status_code == 401
        await login(c, "noor", NEW_PASSWORD)
    finally:
        await laptop.aclose()


async def test_password_change_from_the_browser_keeps_its_session(harness):
    c = harness.client
    token = await login(c, "karim")
    laptop, phone = await browser(harness, "karim"), await browser(harness, "karim")
    try:
        r = await laptop.post("/api/v1/auth/password",
                              json={"old_password": DEMO_PASSWORD, "new_password": NEW_PASSWORD})
        assert r.status_code == 403  # a cookie request that changes state needs its CSRF token
        r = await laptop.post("/api/v1/auth/password",
                              json={"old_password": DEMO_PASSWORD, "new_password": NEW_PASSWORD},
                              headers={"X-CSRF-Token": await csrf_of(laptop)})
        assert r.status_code == 200, r.text
        assert (await laptop.get(ME)).status_code == 200
        assert (await phone.get(ME)).status_code == 401
        assert (await c.get(ME, headers=token)).status_code == 401
    finally:
        await laptop.aclose()
        await phone.aclose()


async def test_guessing_the_current_password_is_locked_out(harness):
    """A stolen token cannot be used to guess the person's password: the attempts count."""
    c = harness.client
    token = await login(c, "giulia")
    codes = []
    for i in range(7):
        r = await c.post("/api/v1/auth/password",
                         json={"old_password": f"guess-{i}", "new_password": NEW_PASSWORD},
                         headers=token)
        codes.append(r.status_code)
    assert codes == [403] * 5 + [429] * 2
