"""Sign-in lock-out per handle and client address, counted atomically before any password is
checked; argon2 in its own threads, so a flood of sign-ins cannot starve message intake."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx

from api.auth import security
from api.auth import service as auth_service
from api.db import Database
from api.events import InProcessEventBus
from tests.api.conftest import DEMO_PASSWORD, wait_for

LOGIN = "/api/v1/auth/login"


def client_from(harness, address: str) -> httpx.AsyncClient:
    """A client whose requests come from ``address`` (the ASGI scope's client)."""
    transport = httpx.ASGITransport(app=harness.app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


class CountingVerify:
    """Wraps security.verify_password: how many passwords were checked, and in which threads."""

    def __init__(self, monkeypatch, hold: threading.Event | None = None) -> None:
        self.calls, self.threads = 0, set()
        self.hold = hold
        self._lock = threading.Lock()
        self._real = security.verify_password
        monkeypatch.setattr(security, "verify_password", self)

    def __call__(self, password_hash, password) -> bool:
        with self._lock:
            self.calls += 1
            self.threads.add(threading.current_thread().name)
        if self.hold is not None:  # argon2 held busy; then a quick "wrong password"
            self.hold.wait(60)
            return False
        return self._real(password_hash, password)


def test_attempts_are_numbered_atomically(database_url):
    """40 threads counting the same handle and address at once get 40 different numbers; the
    limit-th sets the lock (SQLite and PostgreSQL)."""
    db = Database(database_url, InProcessEventBus())
    start = dt.datetime.now(dt.UTC)

    def attempt(_):
        with db.session() as session:
            result = auth_service.count_attempt(
                session=session, handle="Tom", address="10.0.0.9", now=start, limit=5,
                window_s=900, lockout_s=900)
            session.commit()
            return result

    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(attempt, range(40)))
    finally:
        db.dispose()
    assert sorted(r.number for r in results) == list(range(1, 41))
    for r in results:
        assert (r.locked_until is None) == (r.number < 5), r


async def test_concurrent_guesses_are_stopped_at_the_limit(harness, monkeypatch):
    verify = CountingVerify(monkeypatch)
    async with client_from(harness, "10.0.0.66") as attacker:
        replies = await asyncio.gather(*(
            attacker.post(LOGIN, json={"handle": "tom", "password": f"guess-{i}"})
            for i in range(40)))
        codes = [r.status_code for r in replies]
        # at most the limit are evaluated; every other guess is refused unchecked
        assert codes.count(401) == 5 and codes.count(429) == 35, codes
        assert verify.calls == 5
        # refused by the lock-out (Retry-After: the rest of the lock) or, beyond the burst, by
        # the per-address rate limit on sign-ins (a few seconds)
        waits = [int(r.headers["retry-after"]) for r in replies if r.status_code == 429]
        assert any(w > 800 for w in waits) and all(w > 800 or w <= 60 for w in waits), waits
        # locked from that address, even with the right password ...
        r = await attacker.post(LOGIN, json={"handle": "tom", "password": DEMO_PASSWORD})
        assert r.status_code == 429
    # ... while Tom still signs in from his own address (API and inbox form)
    async with client_from(harness, "10.0.0.7") as tom:
        r = await tom.post(LOGIN, json={"handle": "tom", "password": DEMO_PASSWORD})
        assert r.status_code == 200, r.text
        page = await tom.get("/inbox/login")
        csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
        r = await tom.post("/inbox/login", data={"handle": "tom", "password": DEMO_PASSWORD,
                                                 "csrf": csrf})
        assert r.status_code == 303


async def test_lock_counts_per_address_and_expires(harness, clock):
    async with client_from(harness, "10.0.0.66") as a, client_from(harness, "10.0.0.67") as b:
        for _ in range(5):
            assert (await a.post(LOGIN, json={"handle": "noor", "password": "x"})
                    ).status_code == 401
        assert (await a.post(LOGIN, json={"handle": "NOOR", "password": "x"})).status_code == 429
        assert (await b.post(LOGIN, json={"handle": "noor", "password": "x"})).status_code == 401
        clock.advance(minutes=16)
        assert (await a.post(LOGIN, json={"handle": "noor", "password": DEMO_PASSWORD})
                ).status_code == 200
        # failures older than the window do not add up
        for _ in range(4):
            await b.post(LOGIN, json={"handle": "noor", "password": "x"})
        clock.advance(minutes=16)
        for _ in range(4):
            assert (await b.post(LOGIN, json={"handle": "noor", "password": "x"})
                    ).status_code == 401


async def test_argon2_flood_does_not_starve_message_intake(harness, monkeypatch):
    """argon2 held busy by 45 sign-ins (more than the database's 40 worker threads): a fan's
    message is still stored and answered at once, because argon2 has its own two threads."""
    release = threading.Event()
    verify = CountingVerify(monkeypatch, hold=release)
    c = harness.client
    flood = [asyncio.create_task(c.post(LOGIN, json={"handle": f"ghost-{i}", "password": "x"}))
             for i in range(45)]
    try:
        await wait_for(lambda: verify.calls >= 2, timeout=10)
        await asyncio.sleep(0.3)  # let the rest of the flood queue up
        # (without argon2's own threads this waits for the release below, which never comes)
        r = await asyncio.wait_for(
            c.post("/webhooks/rest/webhook", json={"sender": "fan-starve", "message": "hello"}),
            timeout=20)
        assert r.status_code == 200, r.text
    finally:
        release.set()
        replies = await asyncio.gather(*flood)
    assert {r.status_code for r in replies} == {401}
    assert verify.threads and all(name.startswith("argon2") for name in verify.threads), \
        verify.threads
