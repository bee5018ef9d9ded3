"""The fan page at ``/``: the unmodified rasa-webchat 1.0.1 bundle, served from node_modules."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, HTMLResponse

from api.settings import REPO_ROOT

router = APIRouter(tags=["web chat"])

HERE = Path(__file__).resolve().parent
WIDGET_BUNDLE = REPO_ROOT / "node_modules" / "rasa-webchat" / "lib" / "index.js"

# No inline scripts; the widget injects <style> tags, so inline styles are allowed.
FAN_PAGE_CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: https:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "form-action 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": FAN_PAGE_CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def fan_page() -> HTMLResponse:
    html = (HERE / "templates" / "fan.html").read_text(encoding="utf-8")
    return HTMLResponse(html, headers=SECURITY_HEADERS)


@router.get("/static/webchat/fan.js", include_in_schema=False)
async def fan_js() -> FileResponse:
    return FileResponse(HERE / "static" / "fan.js", media_type="text/javascript",
                        headers={"X-Content-Type-Options": "nosniff"})


@router.get("/static/webchat/fan.css", include_in_schema=False)
async def fan_css() -> FileResponse:
    return FileResponse(HERE / "static" / "fan.css", media_type="text/css")


@router.get("/static/vendor/rasa-webchat/index.js", include_in_schema=False)
async def widget_bundle() -> FileResponse:
    if not WIDGET_BUNDLE.is_file():
        raise HTTPException(503, "rasa-webchat is not installed: run `make npm-assets`")
    return FileResponse(WIDGET_BUNDLE, media_type="text/javascript",
                        headers={"Cache-Control": "public, max-age=3600"})
