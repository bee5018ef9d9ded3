"""Staff accounts from the command line, on the database DATABASE_URL names:

    python -m api.staff list
    python -m api.staff create HANDLE --name NAME [--role staff] [--title T] [--skills a,b]
                                      [--languages en,es] [--capacity 5]
    python -m api.staff set-password HANDLE     # asks twice, or reads one line from stdin

A password is never taken from the command line (shell history, ``ps``). Setting one ends
every bearer token and inbox session the person had. Runs with the switchboard's environment
(APP_ENV and its secrets); in local mode every start gives everyone the demo password again.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import TextIO

from api.auth import security
from api.auth import service as auth_service
from api.enums import StaffRole
from api.main import open_database
from api.settings import Settings, get_settings
from api.staff import service

HANDLE_MAX = 64


def _words(text: str) -> list[str]:
    return [w.strip() for w in text.split(",") if w.strip()]


def _read_password(stdin: TextIO) -> str:
    """From the terminal (asked twice) or, when piped, the first line of stdin."""
    if stdin.isatty():
        first = getpass.getpass("New password: ")
        if getpass.getpass("Again: ") != first:
            raise ValueError("the two passwords differ")
        return first
    return stdin.readline().rstrip("\r\n")


def main(argv: list[str] | None = None, *, settings: Settings | None = None,
         stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m api.staff",
                                     description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n", 1)[1])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="every staff member, role and whether a password is set")
    create = sub.add_parser("create", help="add a staff member (then set-password)")
    create.add_argument("handle")
    create.add_argument("--name", required=True)
    create.add_argument("--role", choices=[r.value for r in StaffRole],
                        default=StaffRole.staff.value)
    create.add_argument("--title", default="")
    create.add_argument("--skills", type=_words, default=[],
                        help="comma-separated topics the person may be handed")
    create.add_argument("--languages", type=_words, default=[],
                        help="comma-separated ISO 639-1 codes")
    create.add_argument("--capacity", type=int, default=5)
    set_password = sub.add_parser("set-password",
                                  help="set a password (prompted, or one line on stdin)")
    set_password.add_argument("handle")
    args = parser.parse_args(argv)
    settings = settings or get_settings()
    stdin, stdout = stdin or sys.stdin, stdout or sys.stdout

    def fail(message: str) -> int:
        print(f"python -m api.staff: {message}", file=sys.stderr)
        return 1

    if args.command == "set-password":
        try:
            password = _read_password(stdin)
        except (ValueError, EOFError) as exc:
            return fail(str(exc) or "no password given")
        if len(password) < settings.auth_min_password_chars:
            return fail(f"a password needs at least {settings.auth_min_password_chars} "
                        "characters")
        if "\x00" in password:
            return fail("a password cannot contain NUL characters")
        password_hash = security.hash_password(password)

    db = open_database(settings)
    try:
        with db.session() as session:
            if args.command == "list":
                for staff in service.list_all(session=session):
                    state = "active" if staff.active else "inactive"
                    has = "password set" if staff.password_hash else "no password"
                    print(f"{staff.handle}\t{staff.name}\t{staff.role}\t{state}\t{has}",
                          file=stdout)
                return 0
            if args.command == "create":
                if not args.handle.strip() or len(args.handle) > HANDLE_MAX:
                    return fail(f"a handle has 1 to {HANDLE_MAX} characters")
                try:
                    staff = service.create(
                        session=session, handle=args.handle, name=args.name,
                        role=StaffRole(args.role), title=args.title, skills=args.skills,
                        languages=args.languages, capacity=args.capacity)
                except service.HandleTaken:
                    return fail(f"{args.handle}: a staff member with this handle exists")
                session.commit()
                print(f"created {staff.handle} ({staff.role}); set a password with "
                      f"`python -m api.staff set-password {staff.handle}`", file=stdout)
                return 0
            staff = service.get_by_handle(session=session, handle=args.handle)
            if staff is None:
                return fail(f"{args.handle}: no such staff member")
            auth_service.set_password(session=session, staff_id=staff.id,
                                      password_hash=password_hash)
            session.commit()
            print(f"password set for {args.handle}; their tokens and sessions ended",
                  file=stdout)
            if settings.is_local:
                print("note: in local mode every start gives everyone the demo password again",
                      file=stdout)
            return 0
    finally:
        db.dispose()


if __name__ == "__main__":
    raise SystemExit(main())
