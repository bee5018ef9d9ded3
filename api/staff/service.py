"""Staff: seeding from staff.yml and look-ups (no commits here)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.enums import StaffRole
from api.staff.models import Staff

log = logging.getLogger(__name__)


def load_team(*, path: Path) -> list[dict[str, Any]]:
    """Read the ``team`` list of a staff.yml file."""
    with path.open(encoding="utf-8") as fh:
        doc = yaml.safe_load(fh) or {}
    team = doc.get("team") or []
    if not isinstance(team, list):
        raise ValueError(f"{path}: 'team' must be a list")
    return team


def get_by_handle(*, session: Session, handle: str) -> Staff | None:
    """Find a staff member by handle."""
    return session.scalar(select(Staff).where(Staff.handle == handle))


def list_all(*, session: Session) -> list[Staff]:
    """Every staff member, by handle."""
    return list(session.scalars(select(Staff).order_by(Staff.handle)))


class HandleTaken(ValueError):
    """A staff member with this handle exists already."""


def create(*, session: Session, handle: str, name: str, role: StaffRole, title: str = "",
           skills: list[str] | None = None, languages: list[str] | None = None,
           capacity: int = 5, shifts: list[str] | None = None) -> Staff:
    """Add a staff member (no password yet: set one with ``set-password``)."""
    if get_by_handle(session=session, handle=handle) is not None:
        raise HandleTaken(handle)
    staff = Staff(handle=handle, name=name, title=title, role=role, skills=skills or [],
                  languages=languages or [], capacity=capacity, shifts=shifts or [])
    session.add(staff)
    session.flush()
    return staff


def seed(*, session: Session, team: list[dict[str, Any]]) -> tuple[int, int]:
    """Create or update staff from a team list (passwords and presence are left alone).

    Returns ``(created, updated)``.
    """
    created = updated = 0
    for person in team:
        handle = str(person["handle"])
        values = {
            "name": str(person["name"]),
            "title": str(person.get("title") or ""),
            "role": StaffRole(person.get("role", "staff")),
            "skills": [str(s) for s in person.get("skills") or []],
            "languages": [str(s) for s in person.get("languages") or []],
            "capacity": int(person.get("capacity", 5)),
            "shifts": [str(s) for s in person.get("shifts") or []],
        }
        staff = get_by_handle(session=session, handle=handle)
        if staff is None:
            session.add(Staff(handle=handle, **values))
            created += 1
        else:
            changed = False
            for key, value in values.items():
                if getattr(staff, key) != value:
                    setattr(staff, key, value)
                    changed = True
            updated += int(changed)
    session.flush()
    return created, updated
