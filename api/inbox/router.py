"""The staff inbox: ``/inbox`` pages (sign-in, the app), its JSON API additions under
``/api/v1`` and the live event stream ``/api/v1/events`` (server-sent events)."""

from __future__ import annotations

import logging
import secrets
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Form, Header, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, StreamingResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import select

from api.auth.authenticator import LockedOut
from api.auth.dependencies import CurrentStaff, client_address, staff_for_cookie
from api.columns import ID_MAX
from api.conversations.router import _run
from api.dependencies import ServicesDep
from api.enums import StaffRole
from api.events import id_order
from api.inbox import schemas, service, sessions, visibility
from api.inbox.models import CannedResponse
from api.ratelimit.dependencies import login_allowed
from api.staff.models import Staff
from api.text import StorableStr

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
templates = Environment(loader=FileSystemLoader(HERE / "templates"),
                        autoescape=select_autoescape(default=True, default_for_string=True))

INBOX_CSP = "; ".join([
    "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:",
    "connect-src 'self'", "object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'",
    "form-action 'self'",
])
PAGE_HEADERS = {"Content-Security-Policy": INBOX_CSP, "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}
LOGIN_CSRF = "sb_login_csrf"
STATIC = {"inbox.js": "text/javascript", "inbox.css": "text/css"}
# Where a sign-in may lead (an open redirect otherwise); operators land in their console.
AFTER_LOGIN = ("/inbox", "/operator", "/inbox/reports")

pages = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api/v1", tags=["inbox"])


def _page(name: str, status: int = 200, **ctx) -> HTMLResponse:
    return HTMLResponse(templates.get_template(name).render(**ctx), status_code=status,
                        headers=PAGE_HEADERS)


def _cookie_kw(services) -> dict:
    return {"httponly": True, "samesite": "strict", "secure": not services.settings.is_local,
            "path": "/"}


# -- pages --------------------------------------------------------------------------------------
@pages.get("/inbox/login")
async def login_page(services: ServicesDep, error: str = "", next: str = "") -> HTMLResponse:
    token = secrets.token_urlsafe(24)
    resp = _page("login.html", csrf=token, error=error,
                 next=next if next in AFTER_LOGIN else "")
    resp.set_cookie(LOGIN_CSRF, token, max_age=3600, **_cookie_kw(services))
    return resp


@pages.post("/inbox/login")
async def login_submit(request: Request, services: ServicesDep,
                       handle: Annotated[StorableStr, Form(max_length=64)],
                       password: Annotated[str, Form(max_length=256)],
                       csrf: Annotated[str, Form(max_length=100)] = "",
                       next: Annotated[str, Form(max_length=100)] = ""):
    # Login CSRF: the form's token must match the cookie set with the form (double submit).
    if not sessions.csrf_ok(request.cookies.get(LOGIN_CSRF) or "", csrf or None):
        return await _login_again(services, "Your sign-in form expired; try again.", 403)
    limit = await login_allowed(request, services)
    if not limit.allowed:
        resp = await _login_again(services, "Too many sign-in attempts from your network: try "
                                  f"again in {limit.retry_after} s.", 429)
        resp.headers["Retry-After"] = str(limit.retry_after)
        return resp
    settings = services.settings
    try:
        signed_in = await services.auth.sign_in(handle=handle, password=password,
                                                address=client_address(request))
    except LockedOut as exc:
        minutes = -(-exc.seconds // 60)
        return await _login_again(
            services, f"Too many failed attempts: try again in {minutes} min.", 429)
    if signed_in is None:
        return await _login_again(services, "Wrong handle or password.", 401)

    def work(session):
        token, _csrf = sessions.create(session=session, staff_id=signed_in.staff_id,
                                       now=services.auth.clock.now(),
                                       ttl_s=settings.auth_token_ttl_s)
        session.commit()
        return token

    token = await services.db.run(work)
    role = signed_in.role
    landing = next if next in AFTER_LOGIN else (
        "/operator" if role == StaffRole.operator else "/inbox")
    resp = RedirectResponse(landing, status_code=303)
    resp.set_cookie(sessions.COOKIE, token, max_age=settings.auth_token_ttl_s,
                    **_cookie_kw(services))
    resp.delete_cookie(LOGIN_CSRF, path="/")
    return resp


async def _login_again(services, error: str, status: int) -> HTMLResponse:
    token = secrets.token_urlsafe(24)
    resp = _page("login.html", status=status, csrf=token, error=error)
    resp.set_cookie(LOGIN_CSRF, token, max_age=3600, **_cookie_kw(services))
    return resp


@pages.post("/inbox/logout")
async def logout(request: Request, services: ServicesDep,
                 csrf: Annotated[str, Form(max_length=100)] = ""):
    cookie = request.cookies.get(sessions.COOKIE)
    if cookie:
        try:
            staff = await staff_for_cookie(_WithCsrf(request, csrf), services, cookie)
        except HTTPException as exc:
            if exc.status_code == 403:
                raise
        else:
            # The same sign-out as POST /api/v1/auth/logout: every token and session ends.
            await services.auth.sign_out(staff_id=staff.id)
    resp = RedirectResponse("/inbox/login", status_code=303)
    resp.delete_cookie(sessions.COOKIE, path="/")
    return resp


class _WithCsrf:
    """The request as the cookie check sees it, with the form's CSRF field as the header."""

    def __init__(self, request: Request, csrf: str) -> None:
        self.method = request.method
        self.headers = {"x-csrf-token": csrf}
        self.state = request.state


async def page_staff(request: Request, services, *, login_url: str):
    """The signed-in staff member of a page request, or the redirect to sign in (an expired
    session's cookie is dropped on the way)."""
    cookie = request.cookies.get(sessions.COOKIE)
    if not cookie:
        return RedirectResponse(login_url, status_code=303)
    try:
        return await staff_for_cookie(request, services, cookie)
    except HTTPException:
        resp = RedirectResponse(login_url, status_code=303)
        resp.delete_cookie(sessions.COOKIE, path="/")
        return resp


@pages.get("/inbox")
async def inbox_page(request: Request, services: ServicesDep):
    staff = await page_staff(request, services, login_url="/inbox/login")
    if isinstance(staff, RedirectResponse):
        return staff
    presence = await services.db.run(lambda s: s.get(Staff, staff.id).presence.value)
    # Supervisors and operators get a link to the reports (api/reports).
    reports = staff.role in (StaffRole.supervisor, StaffRole.operator, StaffRole.admin)
    return _page("inbox.html", staff=staff, csrf=request.state.csrf_token, presence=presence,
                 label_groups=label_groups(), reports=reports)


def label_groups(with_none: bool = False) -> list[tuple[str, list[tuple[str, str]]]]:
    """The triage labels as the pages offer them: (group, [(label, human name)])."""
    groups = [("Urgent", [(n, schemas.label_name(n)) for n in schemas.URGENT_LABELS]),
              ("Needs a person", [(n, schemas.label_name(n)) for n in schemas.PERSON_LABELS])]
    if with_none:
        groups.append(("No person", [(schemas.NONE, schemas.label_name(schemas.NONE))]))
    return groups


def static_file(folder: Path, allowed: dict[str, str], name: str) -> FileResponse:
    """One of a page's own static files (only the names in ``allowed``: no path tricks)."""
    if name not in allowed:
        raise HTTPException(404)
    return FileResponse(folder / name, media_type=allowed[name],
                        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"})


@pages.get("/inbox/static/{name}")
async def static(name: str) -> FileResponse:
    return static_file(HERE / "static", STATIC, name)


# -- API ----------------------------------------------------------------------------------------
ConvId = Annotated[int, PathParam(ge=1, le=ID_MAX)]
RowId = Annotated[int, PathParam(ge=1, le=ID_MAX)]


@api.get("/inbox")
async def inbox_lists(staff: CurrentStaff, services: ServicesDep) -> dict:
    """My conversations, the queue I could take and — supervisors — every open one and the
    urgent ones nobody has, sorted by priority then how long the fan has waited, with each
    topic's first-response target and how far past it the wait is."""
    return await services.db.run(service.lists, staff_id=staff.id,
                                 topics=services.handoff.topics,
                                 now=services.handoff.clock.now())


@api.get("/conversations/{conversation_id}/context")
async def conversation_context(conversation_id: ConvId, staff: CurrentStaff,
                               services: ServicesDep) -> dict:
    """Transcript with names, notes, triage, channel, language, earlier conversations, the
    Messenger window and lost-property reports (403 when not mine / not takeable)."""
    return await _run(services, service.context, conversation_id=conversation_id,
                      staff_id=staff.id, topics=services.handoff.topics,
                      now=services.handoff.clock.now())


@api.get("/conversations/{conversation_id}/notes")
async def list_notes(conversation_id: ConvId, staff: CurrentStaff,
                     services: ServicesDep) -> list[dict]:
    ctx = await conversation_context(conversation_id, staff, services)
    return ctx["notes"]


@api.post("/conversations/{conversation_id}/notes", status_code=201)
async def add_note(conversation_id: ConvId, body: schemas.NoteCreate, staff: CurrentStaff,
                   services: ServicesDep) -> dict:
    """A private note: staff only, never sent to the fan."""
    return await _run(services, service.add_note_flow, conversation_id=conversation_id,
                      staff_id=staff.id, text=body.text.strip())


@api.post("/conversations/{conversation_id}/take")
async def take(conversation_id: ConvId, staff: CurrentStaff, services: ServicesDep) -> dict:
    """Take a queued conversation that matches my skills (supervisors: any)."""
    await _run(services, service.take_flow, conversation_id=conversation_id,
               staff_id=staff.id, desk=services.handoff.desk())
    return {"id": conversation_id, "status": "assigned", "assignee": staff.handle}


@api.post("/conversations/{conversation_id}/transfer")
async def transfer(conversation_id: ConvId, body: schemas.TransferCreate, staff: CurrentStaff,
                   services: ServicesDep) -> dict:
    """Give my conversation to a colleague with a note; the colleague and the fan are told."""
    conv, replies = await _run(services, service.transfer_flow,
                               conversation_id=conversation_id, staff_id=staff.id,
                               to_handle=body.handle, note=body.note.strip(),
                               desk=services.handoff.desk())
    await services.handoff.deliver(conv, replies)
    return {"id": conversation_id, "status": "assigned", "assignee": body.handle}


@api.post("/conversations/{conversation_id}/messages/{message_id}/flag", status_code=201)
async def flag(conversation_id: ConvId, message_id: RowId,
               body: schemas.FlagCreate, staff: CurrentStaff, services: ServicesDep) -> dict:
    """Flag a fan message for the operators: ``kind`` ``bot`` ("the bot should have known
    this", the default), ``needs_person`` ("this should have come to a person", with the triage
    ``label`` of who) or ``no_person_needed``. One flag per message and kind."""
    flag_id = await _run(services, service.flag_flow, conversation_id=conversation_id,
                         staff_id=staff.id, message_id=message_id, reason=body.reason.strip(),
                         kind=body.kind, label=body.label)
    return {"id": flag_id, "message_id": message_id, "kind": body.kind}


@api.get("/staff")
async def colleagues(staff: CurrentStaff, services: ServicesDep) -> list[dict]:
    """Colleagues to transfer to (handle, name, title, presence, skills)."""
    def work(session):
        rows = session.scalars(select(Staff).where(Staff.active.is_(True)).order_by(Staff.name))
        return [{"handle": s.handle, "name": s.name, "title": s.title,
                 "presence": s.presence.value, "skills": list(s.skills or [])} for s in rows]

    return await services.db.run(work)


def _canned_read(c: CannedResponse, staff=None) -> dict:
    out = {"id": c.id, "shortcut": c.shortcut, "text": c.text}
    if staff is not None:
        out["may_edit"] = _may_edit_canned(staff, c)
    return out


def _may_edit_canned(staff, row: CannedResponse) -> bool:
    """Everyone may add canned responses; their author or a supervisor edits and deletes."""
    return bool(staff.supervisor or row.created_by == staff.id)


@api.get("/canned")
async def canned(staff: CurrentStaff, services: ServicesDep,
                 conversation_id: Annotated[int | None, Query(ge=1, le=ID_MAX)] = None,
                 ) -> list[dict]:
    """Canned responses (each with ``may_edit`` for me); with ``conversation_id`` (one I may
    read), placeholders filled in."""
    rows = await services.db.run(lambda s: [_canned_read(c, staff) for c in service.canned_list(
        session=s)])
    if conversation_id is not None:
        await conversation_context(conversation_id, staff, services)  # authorisation

        def fan_name(session):
            from api.conversations.models import Conversation, Fan

            c = session.get(Conversation, conversation_id)
            fan = session.get(Fan, c.fan_id)
            return fan.display_name

        name = await services.db.run(fan_name)
        for r in rows:
            r["filled"] = service.fill(r["text"], fan_name=name, agent_name=staff.name)
    return rows


@api.post("/canned", status_code=201)
async def add_canned(body: schemas.CannedCreate, staff: CurrentStaff,
                     services: ServicesDep) -> dict:
    """Add a canned response (any staff member)."""
    def work(session):
        if session.scalar(select(CannedResponse).where(
                CannedResponse.shortcut == body.shortcut)):
            return None
        row = CannedResponse(shortcut=body.shortcut, text=body.text, created_by=staff.id)
        session.add(row)
        session.commit()
        return _canned_read(row, staff)

    out = await services.db.run(work)
    if out is None:
        raise HTTPException(409, "that shortcut exists")
    return out


@api.put("/canned/{canned_id}")
async def edit_canned(canned_id: RowId, body: schemas.CannedCreate,
                      staff: CurrentStaff, services: ServicesDep) -> dict:
    """Change a canned response's shortcut and text (its author or a supervisor)."""
    def work(session):
        row = session.get(CannedResponse, canned_id)
        if row is None:
            return 404, None
        if not _may_edit_canned(staff, row):
            return 403, None
        clash = session.scalar(select(CannedResponse).where(
            CannedResponse.shortcut == body.shortcut, CannedResponse.id != canned_id))
        if clash is not None:
            return 409, None
        row.shortcut, row.text = body.shortcut, body.text
        session.commit()
        return 200, _canned_read(row, staff)

    code, out = await services.db.run(work)
    if code != 200:
        raise HTTPException(code, {404: "not found", 403: "not yours to edit",
                                   409: "that shortcut exists"}[code])
    return out


@api.delete("/canned/{canned_id}", status_code=204)
async def delete_canned(canned_id: RowId, staff: CurrentStaff,
                        services: ServicesDep) -> None:
    """Remove a canned response (its author or a supervisor)."""
    def work(session):
        row = session.get(CannedResponse, canned_id)
        if row is None:
            return 404
        if not _may_edit_canned(staff, row):
            return 403
        session.delete(row)
        session.commit()
        return 204

    code = await services.db.run(work)
    if code != 204:
        raise HTTPException(code, "not found" if code == 404 else "not yours to delete")


@api.get("/events")
async def events(request: Request, staff: CurrentStaff, services: ServicesDep,
                 last_event_id: Annotated[str | None, Header()] = None,
                 after: str | None = None) -> StreamingResponse:
    """Server-sent events from the switchboard's bus, only those I may see (the inbox's read
    rule); resume with ``Last-Event-ID`` (or ``?after=``): from this process's ring, or with
    REDIS_URL from the shared stream, on any replica. An id the history no longer holds gets
    a ``resync`` event."""
    last = _event_id(last_event_id) or _event_id(after)
    viewer = await services.db.run(visibility.viewer, staff_id=staff.id)
    if viewer is None:
        raise HTTPException(401, "session expired; sign in again")
    body = services.stream.follow(last_id=last, disconnected=request.is_disconnected,
                                  viewer=viewer, topics=services.handoff.topics)
    return StreamingResponse(body, media_type="text/event-stream",
                             headers={"Cache-Control": "no-store",
                                      "X-Accel-Buffering": "no"})


def _event_id(value: str | None) -> str | None:
    """An event id as sent back by a browser (``5``, ``1733066400000-3``), or None for
    anything else (a stream without one starts with ``hello``, as it always did)."""
    value = (value or "").strip()
    try:
        id_order(value)
    except ValueError:
        return None
    return value
