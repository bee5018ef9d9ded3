"""Reports for supervisors and operators: JSON and CSV under ``/api/v1/reports/...`` and the
server-rendered page ``/inbox/reports`` (the inbox's session cookie and CSP)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from api.auth.dependencies import CurrentStaff, StaffRef
from api.dependencies import ServicesDep
from api.enums import Channel, StaffRole
from api.inbox.router import PAGE_HEADERS, page_staff, static_file
from api.reports import charts, service
from api.reports.schemas import BadRange, ReportQuery

HERE = Path(__file__).resolve().parent
templates = Environment(loader=FileSystemLoader([HERE / "templates",
                                                 HERE.parent / "inbox" / "templates"]),
                        autoescape=select_autoescape(default=True, default_for_string=True))
STATIC = {"reports.css": "text/css"}
READERS = (StaffRole.supervisor, StaffRole.operator, StaffRole.admin)

api = APIRouter(prefix="/api/v1/reports", tags=["reports"])
pages = APIRouter(include_in_schema=False)


def may_read(staff: StaffRef) -> bool:
    return staff.role in READERS


async def current_reader(staff: CurrentStaff) -> StaffRef:
    """Supervisors and operators (and admins) read reports; everyone else gets 403."""
    if not may_read(staff):
        raise HTTPException(403, "reports are for supervisors and operators")
    return staff


Reader = Annotated[StaffRef, Depends(current_reader)]


def report_query(
    services: ServicesDep,
    first: Annotated[dt.date, Query(alias="from", description="first venue-local day")],
    last: Annotated[dt.date, Query(alias="to", description="last venue-local day (included)")],
    channel: Channel | None = None,
    topic: Annotated[str | None, Query(max_length=32)] = None,
    language: Annotated[str | None, Query(max_length=8)] = None,
) -> ReportQuery:
    try:
        return ReportQuery(first, last, services.settings.staff_timezone, channel=channel,
                           topic=topic or None, language=language or None)
    except BadRange as exc:  # the app's one 422 shape
        raise RequestValidationError([{"type": "value_error", "loc": ["query", "to"],
                                       "msg": str(exc), "input": last.isoformat()}]) from None


Range = Annotated[ReportQuery, Depends(report_query)]
Format = Literal["json", "csv"]


# -- CSV ----------------------------------------------------------------------------------------
def _cell(value: Any) -> Any:
    # A spreadsheet runs a cell starting with = + - @ as a formula: fans write comments.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


def _flat(data: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for key, value in data.items():
        if isinstance(value, dict):
            rows += _flat(value, f"{prefix}{key}.")
        elif not isinstance(value, list):
            rows.append((f"{prefix}{key}", value))
    return rows


def to_csv(data: dict[str, Any] | list[dict[str, Any]], name: str, query: ReportQuery,
           ) -> Response:
    """A figure as CSV: a list of rows with a header, or ``figure,value`` lines."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    if isinstance(data, list):
        header = list(data[0]) if data else []
        writer.writerow(header)
        for row in data:
            writer.writerow([_cell(row.get(k)) for k in header])
    else:
        writer.writerow(["figure", "value"])
        for key, value in _flat(data):
            writer.writerow([key, _cell(value)])
    filename = f"{name}-{query.first.isoformat()}-{query.last.isoformat()}.csv"
    return Response(buf.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"',
                             "Cache-Control": "no-store"})


async def _compute(services, query: ReportQuery, section: Callable[..., Any], **kw) -> Any:
    return await services.db.run(service.compute, query=query, section=section, **kw)


async def _figure(services, name: str, query: ReportQuery, fmt: Format,
                  section: Callable[..., Any], **kw) -> Any:
    data = await _compute(services, query, section, **kw)
    return to_csv(data, name, query) if fmt == "csv" else data


# -- JSON / CSV ---------------------------------------------------------------------------------
@api.get("/summary")
async def summary(query: Range, _staff: Reader, services: ServicesDep,
                  format: Format = "json"):
    """Conversations started in the range (venue dates, both included): conversations,
    contained, containment_rate, handed_off, handoffs_by_trigger, first_reply_p50_s/p90_s,
    csat_responses, csat_average."""
    return await _figure(services, "summary", query, format, service.summary)


@api.get("/daily")
async def daily(query: Range, _staff: Reader, services: ServicesDep, format: Format = "json"):
    """Per venue-local day: conversations, contained, handed off, first reply, CSAT."""
    return await _figure(services, "daily", query, format, service.daily)


@api.get("/handoffs")
async def handoffs(query: Range, _staff: Reader, services: ServicesDep,
                   format: Format = "json"):
    """Handoffs by trigger (a handoff with two triggers counts under both) and by topic."""
    def work(session, query, h):
        dialect = session.get_bind().dialect.name
        by_trigger = service.by_trigger(session, query=query, dialect=dialect)
        topics = service.by_topic(session, query=query, h=h, topics=services.handoff.topics)
        return {"by_trigger": by_trigger,
                "by_topic": {t["topic"]: t["handed_off"] for t in topics}}

    return await _figure(services, "handoffs", query, format, work)


@api.get("/first-reply")
async def first_reply(query: Range, _staff: Reader, services: ServicesDep,
                      format: Format = "json"):
    """Per topic: first human reply p50/p90 next to the topic's target (staff.yml), the share
    answered inside it."""
    return await _figure(services, "first-reply", query, format, service.by_topic,
                         topics=services.handoff.topics)


@api.get("/queue")
async def queue(query: Range, _staff: Reader, services: ServicesDep, format: Format = "json"):
    """Queued at handoff (nobody suitable online and free), waiting before assignment,
    reassignments for lateness."""
    def work(session, query, h):
        return {**service.queue(session, query=query, h=h),
                "late_reassignments": service.lateness(session, query=query, h=h)}

    return await _figure(services, "queue", query, format, work)


@api.get("/staff")
async def per_staff(query: Range, _staff: Reader, services: ServicesDep,
                    format: Format = "json"):
    """Per person: conversations handled, median first reply, CSAT."""
    return await _figure(services, "staff", query, format, service.per_staff)


@api.get("/bot")
async def bot(query: Range, _staff: Reader, services: ServicesDep, format: Format = "json"):
    """The bot's fallback rate and the intents that most often preceded a handoff."""
    data = await _compute(services, query, service.bot)
    if format == "csv":
        return to_csv(data["intents_before_handoff"], "bot-intents", query)
    return data


@api.get("/csat")
async def csat(query: Range, _staff: Reader, services: ServicesDep, format: Format = "json"):
    """CSAT: asked, answers, response rate, average, distribution and comments (CSV: the
    comments; the figures are in the summary's CSV)."""
    data = await _compute(services, query, service.csat)
    if format == "csv":
        return to_csv(data["comments"], "csat-comments", query)
    return data


# -- the page -----------------------------------------------------------------------------------
@pages.get("/inbox/reports")
async def page(request: Request, services: ServicesDep, from_: Annotated[
        str, Query(alias="from", max_length=10)] = "", to: Annotated[
        str, Query(max_length=10)] = "", channel: Annotated[str, Query(max_length=16)] = "",
        topic: Annotated[str, Query(max_length=32)] = "",
        language: Annotated[str, Query(max_length=8)] = ""):
    staff = await page_staff(request, services, login_url="/inbox/login?next=/inbox/reports")
    if isinstance(staff, RedirectResponse):
        return staff
    if not may_read(staff):
        return HTMLResponse(templates.get_template("reports_forbidden.html").render(staff=staff),
                            status_code=403, headers=PAGE_HEADERS)
    settings = services.settings
    today = services.handoff.clock.now().astimezone(_zone(settings.staff_timezone)).date()
    error = ""
    try:
        first = dt.date.fromisoformat(from_) if from_ else today - dt.timedelta(days=29)
        last = dt.date.fromisoformat(to) if to else today
        query = ReportQuery(first, last, settings.staff_timezone,
                            channel=Channel(channel) if channel else None,
                            topic=topic or None, language=language or None)
    except ValueError as exc:  # BadRange is one: the form shows it and keeps what was asked
        error = str(exc) if isinstance(exc, BadRange) else "not a valid date or channel"
        query = ReportQuery(today - dt.timedelta(days=29), today, settings.staff_timezone)
    data = await _compute(services, query, service.full, topics=services.handoff.topics)
    links = {name: f"/api/v1/reports/{name}?format=csv&" + _params(query)
             for name in ("summary", "daily", "handoffs", "first-reply", "queue", "staff",
                          "bot", "csat")}
    html = templates.get_template("reports.html").render(
        staff=staff, csrf=request.state.csrf_token, data=data, query=query, error=error,
        channels=[c.value for c in Channel], topics=sorted(services.handoff.topics),
        csv=links, charts=charts.for_report(data))
    return HTMLResponse(html, status_code=422 if error else 200, headers=PAGE_HEADERS)


def _zone(name: str):
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


def _params(query: ReportQuery) -> str:
    from urllib.parse import urlencode

    return urlencode({k: v for k, v in query.filters().items() if v and k != "timezone"})


@pages.get("/inbox/reports/static/{name}")
async def static(name: str) -> FileResponse:
    return static_file(HERE / "static", STATIC, name)
