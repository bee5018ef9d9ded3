"""The review queue for automation: ``python -m api.review export [--status new] [--out FILE]``.

Writes JSON Lines (one item per line; personal data replaced by placeholders), after bringing
the queue up to date from the conversations.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from api.main import open_database
from api.review import service
from api.review.models import ReviewStatus
from api.settings import get_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m api.review", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    export = sub.add_parser("export", help="the queue as JSON Lines")
    export.add_argument("--status", choices=[s.value for s in ReviewStatus], default=None)
    export.add_argument("--out", type=Path, default=None, help="default: standard output")
    args = parser.parse_args(argv)
    settings = get_settings()
    db = open_database(settings)
    try:
        with db.session() as session:
            service.collect(session, low_confidence=settings.review_low_confidence)
            session.commit()
            rows = service.export(session, status=args.status)
    finally:
        db.dispose()
    lines = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(lines, encoding="utf-8")
        print(f"{len(rows)} items -> {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
