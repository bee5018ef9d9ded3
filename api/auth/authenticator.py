"""Signing staff in and out: the lock-out count, argon2 in its own threads, bearer tokens.

Built once by the composition root (``api.main.create_app``) and shared by the JSON login and
the inbox's sign-in form. Database work runs through :meth:`Database.run`; argon2 runs in the
:class:`PasswordWorkers` pool, never in the database's threads.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from api.auth import security, service
from api.clock import Clock
from api.db import Database
from api.settings import Settings
from api.staff.models import Staff

log = logging.getLogger(__name__)


class LockedOut(Exception):
    """Too many attempts for this handle from this address; retry after ``seconds``."""

    def __init__(self, seconds: int) -> None:
        super().__init__(seconds)
        self.seconds = seconds


class WrongPassword(Exception):
    """The current password given to change it is wrong."""


@dataclass(frozen=True)
class SignedIn:
    staff_id: int
    role: str
    token_version: int


class Authenticator:
    def __init__(self, *, db: Database, settings: Settings, clock: Clock,
                 passwords: security.PasswordWorkers) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.passwords = passwords

    def issue_token(self, signed_in: SignedIn) -> str:
        return security.issue_token(secret=self.settings.auth_token_secret,
                                    staff_id=signed_in.staff_id,
                                    version=signed_in.token_version,
                                    ttl_s=self.settings.auth_token_ttl_s)

    async def _count(self, *, handle: str, address: str) -> service.Candidate | None:
        """Count the attempt (committed before any password is checked) and read who it
        names; raises :class:`LockedOut` past the limit."""
        settings, now = self.settings, self.clock.now()

        def work(session):
            attempt = service.count_attempt(
                session=session, handle=handle, address=address, now=now,
                limit=settings.auth_lockout_failures, window_s=settings.auth_lockout_window_s,
                lockout_s=settings.auth_lockout_s)
            session.commit()
            if attempt.number > settings.auth_lockout_failures:
                return attempt, None
            return attempt, service.sign_in_candidate(session=session, handle=handle)

        attempt, candidate = await self.db.run(work)
        if attempt.number > settings.auth_lockout_failures:
            until = attempt.locked_until or now
            raise LockedOut(max(1, int((until - now).total_seconds())))
        return candidate

    async def _check(self, candidate: service.Candidate | None, password: str) -> bool:
        if candidate is None:
            await self.passwords.dummy_verify(password)  # unknown handle: take as long
            return False
        return await self.passwords.verify(candidate.password_hash, password)

    async def sign_in(self, *, handle: str, password: str, address: str) -> SignedIn | None:
        """The person a handle and password name, else None; raises :class:`LockedOut`."""
        candidate = await self._count(handle=handle, address=address)
        if not await self._check(candidate, password):
            return None

        def succeed(session):
            service.clear_attempts(session=session, handle=handle, address=address)
            staff = session.get(Staff, candidate.staff_id)
            session.commit()
            # The password may have changed while it was being checked.
            if staff is None or not staff.active or staff.password_hash != candidate.password_hash:
                return None
            return SignedIn(staff.id, staff.role, staff.token_version)

        return await self.db.run(succeed)

    async def sign_out(self, *, staff_id: int) -> None:
        """End every bearer token and inbox session of this person."""

        def work(session):
            service.end_tokens(session=session, staff_id=staff_id)
            session.commit()

        await self.db.run(work)
        log.info("staff %s signed out", staff_id)

    async def change_password(self, *, staff_id: int, handle: str, address: str,
                              old_password: str, new_password: str,
                              keep_session: str | None) -> SignedIn:
        """Set a new password once the current one is confirmed (counted like a sign-in, so a
        stolen token cannot guess it); ends the person's other tokens and sessions. Raises
        :class:`LockedOut` or :class:`WrongPassword`."""
        candidate = await self._count(handle=handle, address=address)
        if candidate is None or candidate.staff_id != staff_id:
            raise WrongPassword
        if not await self._check(candidate, old_password):
            raise WrongPassword
        new_hash = await self.passwords.hash(new_password)

        def work(session):
            service.clear_attempts(session=session, handle=handle, address=address)
            service.set_password(session=session, staff_id=staff_id, password_hash=new_hash,
                                 keep_session=keep_session)
            staff = session.get(Staff, staff_id)
            session.commit()
            return SignedIn(staff.id, staff.role, staff.token_version)

        signed_in = await self.db.run(work)
        log.info("staff %s changed their password; their other tokens ended", staff_id)
        return signed_in

    def close(self) -> None:
        self.passwords.close()
