"""``python -m api``: run the switchboard with uvicorn on SWITCHBOARD_PORT (127.0.0.1)."""

from __future__ import annotations

import uvicorn

from api.logs import log_config
from api.settings import get_settings


def main() -> int:
    settings = get_settings()
    uvicorn.run(
        "api.main:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        log_config=log_config(settings),
        log_level=settings.log_level.lower(),
        proxy_headers=False,
        ws_max_size=settings.websocket_max_bytes,  # uvicorn's default is 16 MiB
        lifespan="on",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
