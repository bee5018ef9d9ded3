"""What the fan is told about a handoff, in their language (EN/ES; other languages get EN).

staff.yml has no pronouns, so the texts never guess a gender: the person's first name is
repeated instead of "she"/"he", and Spanish avoids gendered articles for the title.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

EN_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
ES_DAYS = ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo")

DANGER = {
    "en": "If anyone is in danger right now, call 112 or tell the nearest staff member or "
    "security guard.",
    "es": "Si alguien está en peligro ahora mismo, llama al 112 o avisa a cualquier persona "
    "del equipo o de seguridad.",
}


# Said first when the fan is grieving or in distress (triage's ``care``): a person, and sympathy.
SYMPATHY = {
    "en": "I'm so sorry — that sounds really hard, and it deserves a person, not a bot.",
    "es": "Lo siento muchísimo. Esto merece que te atienda una persona, no un bot.",
}


def with_sympathy(text: str, language: str | None, care: bool) -> str:
    return f"{SYMPATHY[lang(language)]} {text}" if care else text


def lang(language: str | None) -> str:
    code = (language or "en")[:2].lower()
    return code if code in ("en", "es") else "en"


def first_name(name: str) -> str:
    return name.split()[0] if name.strip() else name


def duration(minutes: int, language: str | None) -> str:
    """``2 minutes`` / ``4 hours`` / ``2 minutos`` / ``4 horas``."""
    es = lang(language) == "es"
    if minutes >= 60 and minutes % 60 == 0:
        n = minutes // 60
        return f"{n} {'hora' if es else 'hour'}{'' if n == 1 else 's'}"
    return f"{minutes} {'minuto' if es else 'minute'}{'' if minutes == 1 else 's'}"


def when(at: dt.datetime, now: dt.datetime, language: str | None,
         tz: str = "Europe/Madrid") -> str:
    """``today at 23:00`` / ``tomorrow at 10:00`` / ``on Monday at 10:00`` (local time)."""
    zone = ZoneInfo(tz)
    local, today = at.astimezone(zone), now.astimezone(zone).date()
    clock = local.strftime("%H:%M")
    days = (local.date() - today).days
    if lang(language) == "es":
        if days == 0:
            return f"hoy a las {clock}"
        if days == 1:
            return f"mañana a las {clock}"
        return f"el {ES_DAYS[local.weekday()]} a las {clock}"
    if days == 0:
        return f"today at {clock}"
    if days == 1:
        return f"tomorrow at {clock}"
    return f"on {EN_DAYS[local.weekday()]} at {clock}"


def assigned(*, name: str, title: str, minutes: int, language: str | None,
             instead: bool = False) -> str:
    """The fan is told who takes over, by name and title, and when to expect them."""
    first = first_name(name)
    if lang(language) == "es":
        lead = "Te paso ahora con" if instead else "Te paso con"
        return (f"{lead} {first} ({title} de nuestro equipo): {first} te responderá aquí "
                f"en menos de {duration(minutes, 'es')}.")
    extra = " instead" if instead else ""
    return (f"I'm passing you to {first}, our {title}{extra} — {first} will answer here within "
            f"{duration(minutes, 'en')}.")


def queued(*, expected_at: dt.datetime | None, expected_name: str | None,
           expected_title: str | None, now: dt.datetime, language: str | None, urgent: bool,
           tz: str = "Europe/Madrid") -> str:
    """Nobody suitable is online: say honestly when someone will be there."""
    es = lang(language) == "es"
    if expected_at is not None and expected_name:
        first = first_name(expected_name)
        at = when(expected_at, now, language, tz)
        if es:
            text = (f"Esto necesita a una persona, pero ahora mismo no hay nadie del equipo "
                    f"conectado que pueda ayudarte. {first} ({expected_title}) empieza su turno "
                    f"{at} y te responderá aquí entonces; tu mensaje está guardado.")
        else:
            text = (f"This needs a person, but nobody who can help with it is online right now. "
                    f"{first}, our {expected_title}, starts {at} and will answer you here then; "
                    f"your message is saved.")
    elif es:
        text = ("Esto necesita a una persona, pero ahora mismo no hay nadie del equipo conectado. "
                "Tu mensaje está guardado y te responderemos aquí en cuanto alguien se conecte.")
    else:
        text = ("This needs a person, but nobody from the team is online right now. Your "
                "message is saved and someone will answer you here as soon as they are back.")
    if urgent:
        text += " " + DANGER["es" if es else "en"]
    return text


def handback(*, name: str, language: str | None) -> str:
    """The bot greets the fan back when a person hands the thread back."""
    first = first_name(name)
    if lang(language) == "es":
        return (f"¡Hola de nuevo! Soy el asistente de Aurora: {first} me ha devuelto la "
                f"conversación. ¿En qué más te puedo ayudar?")
    return (f"Hi again! It's the Aurora assistant: {first} has handed you back to me. "
            f"What else can I help you with?")
