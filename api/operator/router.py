"""``/operator``: the operators' console page and its static files (the data comes from the
review, training and models APIs)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from api.dependencies import ServicesDep
from api.enums import StaffRole
from api.inbox.router import PAGE_HEADERS, label_groups, page_staff, static_file

HERE = Path(__file__).resolve().parent
templates = Environment(loader=FileSystemLoader([HERE / "templates",
                                                 HERE.parent / "inbox" / "templates"]),
                        autoescape=select_autoescape(default=True, default_for_string=True))
STATIC = {"operator.js": "text/javascript", "operator.css": "text/css"}
OPERATORS = (StaffRole.operator, StaffRole.admin)

pages = APIRouter(include_in_schema=False)


@pages.get("/operator")
async def console(request: Request, services: ServicesDep):
    staff = await page_staff(request, services, login_url="/inbox/login?next=/operator")
    if isinstance(staff, RedirectResponse):
        return staff
    if staff.role not in OPERATORS:
        return HTMLResponse(templates.get_template("forbidden.html").render(staff=staff),
                            status_code=403, headers=PAGE_HEADERS)
    return HTMLResponse(templates.get_template("operator.html").render(
        staff=staff, csrf=request.state.csrf_token, label_groups=label_groups(with_none=True)),
        headers=PAGE_HEADERS)


@pages.get("/operator/static/{name}")
async def static(name: str) -> FileResponse:
    return static_file(HERE / "static", STATIC, name)
