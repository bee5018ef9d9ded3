"""Charts for the reports page as server-rendered SVG: no script, no CDN, nothing the inbox's
CSP would block (presentation attributes, no inline styles). Labels are escaped."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup, escape

BOT = "#2f7d6d"  # contained by the bot
PERSON = "#c0673a"  # handed off to a person
BAR = "#3d5a98"
TARGET = "#b3261e"
TEXT = "#333"


def _svg(width: int, height: int, label: str, body: list[str]) -> Markup:
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" aria-label="{escape(label)}" class="chart">'
        f"<title>{escape(label)}</title>{''.join(body)}</svg>"
    )


def _text(x: float, y: float, text: Any, anchor: str = "start", size: int = 11) -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" fill="{TEXT}" '
            f'text-anchor="{anchor}">{escape(str(text))}</text>')


def hbars(rows: list[tuple[str, float]], label: str, unit: str = "") -> Markup:
    """Horizontal bars, one per (label, value)."""
    if not rows:
        return Markup("")
    width, left, row_h = 560, 150, 22
    top = max((v for _, v in rows), default=0) or 1
    body = []
    for i, (name, value) in enumerate(rows):
        y = i * row_h
        w = (width - left - 70) * value / top
        body.append(_text(left - 6, y + 15, name, "end"))
        body.append(f'<rect x="{left}" y="{y + 4}" width="{w:.1f}" height="{row_h - 8}" '
                    f'fill="{BAR}"><title>{escape(name)}: {escape(str(value))}{unit}</title>'
                    f"</rect>")
        body.append(_text(left + w + 4, y + 15, f"{value}{unit}"))
    return _svg(width, row_h * len(rows) + 4, label, body)


def daily_columns(days: list[dict[str, Any]]) -> Markup:
    """Per day, a column: contained (bottom) and handed off (top)."""
    if not days:
        return Markup("")
    width, height, bottom, left = 640, 200, 24, 34
    top = max((d["conversations"] for d in days), default=0) or 1
    slot = (width - left) / len(days)
    bar = max(slot * 0.7, 1)
    scale = (height - bottom - 10) / top
    body = [_text(left - 4, 14, top, "end"), _text(left - 4, height - bottom, 0, "end")]
    for i, d in enumerate(days):
        x = left + i * slot + (slot - bar) / 2
        base = height - bottom
        h_bot = d["contained"] * scale
        h_person = d["handed_off"] * scale
        tip = (f'{d["date"]}: {d["conversations"]} conversations, {d["contained"]} contained, '
               f'{d["handed_off"]} handed off')
        body.append(f'<rect x="{x:.1f}" y="{base - h_bot:.1f}" width="{bar:.1f}" '
                    f'height="{h_bot:.1f}" fill="{BOT}"><title>{escape(tip)}</title></rect>')
        body.append(f'<rect x="{x:.1f}" y="{base - h_bot - h_person:.1f}" width="{bar:.1f}" '
                    f'height="{h_person:.1f}" fill="{PERSON}"><title>{escape(tip)}</title>'
                    f"</rect>")
        if len(days) <= 14 or i % max(len(days) // 7, 1) == 0:
            body.append(_text(x + bar / 2, height - 8, d["date"][5:], "middle", 10))
    return _svg(width, height, "Conversations per day: contained by the bot and handed off",
                body)


def first_reply_vs_target(topics: list[dict[str, Any]]) -> Markup:
    """Per topic, the first-reply p50 (bar) and p90 (thin bar) against the target (red tick)."""
    rows = [t for t in topics if t["first_reply_p50_s"] is not None]
    if not rows:
        return Markup("")
    width, left, row_h = 560, 110, 26
    top = max(max(t["first_reply_p90_s"] or 0, t["target_s"]) for t in rows) or 1
    span = width - left - 80
    body = []
    for i, t in enumerate(rows):
        y = i * row_h
        p50 = span * t["first_reply_p50_s"] / top
        p90 = span * (t["first_reply_p90_s"] or 0) / top
        target = left + span * t["target_s"] / top
        tip = (f'{t["topic"]}: p50 {_minutes(t["first_reply_p50_s"])}, p90 '
               f'{_minutes(t["first_reply_p90_s"])}, target {_minutes(t["target_s"])}')
        body.append(_text(left - 6, y + 16, t["topic"], "end"))
        body.append(f'<rect x="{left}" y="{y + 4}" width="{p90:.1f}" height="{row_h - 10}" '
                    f'fill="{BAR}" fill-opacity="0.35"><title>{escape(tip)}</title></rect>')
        body.append(f'<rect x="{left}" y="{y + 4}" width="{p50:.1f}" height="{row_h - 10}" '
                    f'fill="{BAR}"><title>{escape(tip)}</title></rect>')
        body.append(f'<line x1="{target:.1f}" x2="{target:.1f}" y1="{y + 1}" y2="{y + row_h - 3}"'
                    f' stroke="{TARGET}" stroke-width="2"/>')
        body.append(_text(left + max(p90, p50) + 4, y + 16, _minutes(t["first_reply_p50_s"])))
    return _svg(width, row_h * len(rows) + 4,
                "First human reply per topic: p50, p90 and the target", body)


def _minutes(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min"


def for_report(data: dict[str, Any]) -> dict[str, Markup]:
    """Every chart of the page."""
    summary = data["summary"]
    return {
        "daily": daily_columns(data["daily"]),
        "triggers": hbars(list(summary["handoffs_by_trigger"].items()), "Handoffs by trigger"),
        "topics": hbars([(t["topic"], t["handed_off"]) for t in data["topics"]],
                        "Handoffs by topic"),
        "first_reply": first_reply_vs_target(data["topics"]),
        "csat": hbars([(f"{s} ★", n) for s, n in data["csat"]["distribution"].items()],
                      "CSAT answers per score"),
    }


minutes = _minutes
