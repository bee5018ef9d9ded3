"""``python -m api.staff``: create staff, set a password (never from argv; it ends the person's
tokens and sessions), list; and a production start with such an account."""

from __future__ import annotations

import io

import pytest

from api.staff.__main__ import main
from tests.api.conftest import login

PROD = dict(APP_ENV="production", RASA_TOKEN="a-real-long-token-value",
            AUTH_TOKEN_SECRET="a-real-long-secret-value-0123")
PASSWORD = "correct-horse-battery-staple"


def run(settings, *argv: str, stdin: str = "") -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), settings=settings, stdin=io.StringIO(stdin), stdout=out)
    return code, out.getvalue()


async def test_create_set_password_list_then_sign_in_in_production(make_settings,
                                                                   triage_engine, capsys):
    settings = make_settings(**PROD)
    code, out = run(settings, "create", "ines", "--name", "Inés Ruiz", "--role", "supervisor",
                    "--skills", "safety, medical", "--languages", "es,en", "--capacity", "3")
    assert code == 0 and "created ines (supervisor)" in out
    assert run(settings, "create", "ines", "--name", "Again")[0] == 1
    assert "exists" in capsys.readouterr().err
    code, out = run(settings, "list")
    assert code == 0 and "ines\tInés Ruiz\tsupervisor\tactive\tno password" in out
    assert run(settings, "set-password", "ines", stdin="too-short\n")[0] == 1
    assert run(settings, "set-password", "nobody", stdin=PASSWORD + "\n")[0] == 1
    code, out = run(settings, "set-password", "ines", stdin=PASSWORD + "\n")
    assert code == 0 and "tokens and sessions ended" in out
    assert PASSWORD not in out
    assert "ines\tInés Ruiz\tsupervisor\tactive\tpassword set" in run(settings, "list")[1]
    with pytest.raises(SystemExit):  # a password is not an argument
        run(settings, "set-password", "ines", PASSWORD)

    import httpx

    from api.main import create_app

    app = create_app(settings, triage=triage_engine, timers=False)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://testserver") as c:
            me = await c.get("/api/v1/staff/me", headers=await login(c, "ines", PASSWORD))
            assert me.json()["role"] == "supervisor" and me.json()["skills"] == ["safety",
                                                                                 "medical"]


async def test_set_password_ends_tokens_and_sessions(harness, make_settings):
    c = harness.client
    token = await login(c, "tom")
    assert (await c.get("/api/v1/staff/me", headers=token)).status_code == 200
    assert run(make_settings(), "set-password", "tom", stdin=PASSWORD + "\n")[0] == 0
    assert (await c.get("/api/v1/staff/me", headers=token)).status_code == 401
    await login(c, "tom", PASSWORD)
