"""``GET /metrics``: the Prometheus text exposition of this process.

Local mode: open on the switchboard's port. Elsewhere: off (404) unless ``METRICS_TOKEN`` is
set, and then only with ``Authorization: Bearer <METRICS_TOKEN>`` (the token is required in
local mode too once it is set).
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, HTTPException, Request, Response

from api.db import utcnow
from api.dependencies import ServicesDep
from api.metrics import service
from api.metrics.metrics import CONTENT_TYPE

router = APIRouter(tags=["operations"])


def _check_access(request: Request, token: str | None, local: bool) -> None:
    if token is None:
        if local:
            return
        raise HTTPException(404, "Not Found")
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(),
                                                             token.encode()):
        raise HTTPException(401, "metrics need the metrics token",
                            headers={"WWW-Authenticate": "Bearer"})


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {CONTENT_TYPE: {}}},
                       401: {"description": "METRICS_TOKEN is set and was not given"},
                       404: {"description": "outside local mode without METRICS_TOKEN: off"}})
async def metrics(request: Request, services: ServicesDep) -> Response:
    """This process's counters plus queue, training, outbox and connection gauges read now."""
    settings = services.settings
    _check_access(request, settings.metrics_token, settings.is_local)

    def figures(session):
        return (service.queue_figures(session=session, now=utcnow()),
                service.training_jobs(session=session), service.outbox_rows(session=session))

    queue, training, outbox = await services.db.run(figures)
    body = services.metrics.render(
        queue_length=queue.length, oldest_wait_s=queue.oldest_wait_s, training=training,
        sse_connections=services.stream.clients if services.stream else 0,
        socketio_connections=services.webchat.connections if services.webchat else 0,
        outbox=outbox,
    )
    return Response(body, media_type=CONTENT_TYPE)
