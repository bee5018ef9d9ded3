"""What the fan reads in the satisfaction survey, in their language (EN/ES/DE; others get EN)."""

from __future__ import annotations

QUESTION = {
    "en": "How did we do? Please rate this conversation with our team from 1 (poor) to "
          "5 (excellent).",
    "es": "¿Qué tal te hemos atendido? Valora esta conversación con nuestro equipo del 1 (mal) "
          "al 5 (excelente).",
    "de": "Wie zufrieden warst du mit uns? Bewerte dieses Gespräch mit unserem Team von "
          "1 (schlecht) bis 5 (sehr gut).",
}
COMMENT = {
    "en": "Thank you! Anything you'd like to tell us? Just write it here (optional).",
    "es": "¡Gracias! ¿Quieres contarnos algo más? Escríbelo aquí (opcional).",
    "de": "Danke! Möchtest du uns noch etwas sagen? Schreib es einfach hier (optional).",
}
NO_COMMENT = {"en": "No, thanks", "es": "No, gracias", "de": "Nein, danke"}
THANKS = {
    "en": "Thanks for telling us — it goes straight to the team.",
    "es": "Gracias por contárnoslo: se lo pasamos al equipo.",
    "de": "Danke für deine Rückmeldung – sie geht direkt an das Team.",
}
THANKS_NO_COMMENT = {
    "en": "Thank you! If you need anything else, just write here.",
    "es": "¡Gracias! Si necesitas algo más, escríbenos aquí.",
    "de": "Danke! Wenn du noch etwas brauchst, schreib uns einfach hier.",
}


def lang(language: str | None) -> str:
    code = (language or "en")[:2].lower()
    return code if code in QUESTION else "en"
