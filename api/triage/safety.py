"""Safety patterns: distress, self-harm, spiking, medical, harassment, a missing friend.

A miss here is the worst failure the product can have, so the patterns lean towards recall and
every one of them has a test. They run on a normalised copy of the text (``text.normalise``:
"cant find my m8" -> "can't find my mate") in the notation of ``patterns.py``.
"""

# ruff: noqa: E501  (pattern tables read better one pattern per line)
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from spacy.language import Language
from spacy.tokens import Doc

from api.triage.patterns import Found, Kind, PatternMatcher, Rule, merge
from api.triage.text import Normalised


@dataclass(frozen=True)
class SafetyHit:
    rule: str
    topic: str
    kind: Kind
    quote: str  # the fan's own words that matched


@dataclass(frozen=True)
class SafetyResult:
    topic: str | None
    hits: tuple[SafetyHit, ...] = field(default_factory=tuple)

    @property
    def urgent(self) -> bool:
        return self.topic is not None

    @property
    def reason(self) -> str | None:
        """"safety: 'can't find my m8' + 'not answering'" (quotes in the order they appear)."""
        if self.topic is None:
            return None
        return "safety: " + " + ".join(f"'{hit.quote}'" for hit in self.hits)


# When several topics fire, the first in this order is the thread's topic (all stay in the
# reason). Welfare staff hold every one of them; the order only picks the label.
TOPIC_ORDER: tuple[str, ...] = ("medical", "safety", "harassment", "lost_person")

CLASSES: dict[str, dict[str, Any]] = {
    "PERSON": {"NORM": {"IN": [
        "friend", "friends", "mate", "mates", "bestie", "besties", "sister", "sisters",
        "brother", "brothers", "bro", "boyfriend", "girlfriend", "husband", "wife", "partner",
        "daughter", "son", "kid", "kids", "child", "children", "mum", "mom", "dad", "cousin",
        "pal", "pals", "buddy", "girls", "boys", "group", "fiance", "fiancee", "niece", "nephew",
        "friend's", "freind", "frend", "freinds", "frends", "firend", "mats"]}},
    "POSS": {"NORM": {"IN": ["my", "our", "me", "the", "his", "her", "their"]}},
    "NOT": {"NORM": {"IN": ["not", "no", "never"]}},
    "CAN": {"NORM": {"IN": ["can", "could", "ca"]}},
    "ANSWER": {"LEMMA": {"IN": ["answer", "pick", "reply", "respond", "text", "call",
                                "answering", "replying", "responding", "picking"]}},
    "INTENS": {"NORM": {"IN": ["really", "very", "so", "super", "extremely", "proper", "well",
                               "soo", "rly", "realy", "incredibly", "quite", "pretty"]}},
    "UNWELL": {"NORM": {"IN": ["sick", "unwell", "ill", "dizzy", "faint", "weird", "strange",
                               "awful", "terrible", "horrible", "rough", "wrong", "funny",
                               "off", "drunk", "spaced", "numb", "shaky"]}},
    "DRINK": {"NORM": {"IN": ["drink", "drinks", "glass", "cup", "water", "beer", "cocktail",
                              "bottle", "vodka", "shot", "drnk"]}},
    "ME": {"NORM": {"IN": ["me", "us", "her", "him", "them", "my", "someone", "somebody",
                           "friend", "mate", "sister", "girlfriend", "boyfriend"]}},
    # Spanish (norms are accent-free; lemmas from the lookup tables fold amiga -> amigo)
    # Spanish person words by form: the lookup table maps "amigo" to the verb "amigar".
    "ES_PERSON": {"NORM": {"IN": [
        f"{stem}{end}" for stem in ("amig", "novi", "herman", "hij", "prim", "companer", "chic",
                                    "nin", "ti", "compi", "colegui")
        for end in ("o", "a", "os", "as")
    ] + ["pareja", "marido", "mujer", "madre", "padre", "colega", "colegas", "grupo", "gente",
         "mama", "papa", "compi", "compis", "bro", "novix"]}},
    "ES_POSS": {"NORM": {"IN": ["mi", "mis", "nuestra", "nuestro", "nuestras", "nuestros", "su",
                                "sus", "la", "el", "los", "las", "a"]}},
    "ES_DRINK": {"NORM": {"IN": ["bebida", "copa", "vaso", "cubata", "cerveza", "agua", "chupito",
                                 "botella", "cubalibre", "copas", "bebidas"]}},
    "ES_INTENS": {"NORM": {"IN": ["muy", "fatal", "super", "bastante", "tan", "realmente",
                                  "mazo", "re"]}},
}

RULES: tuple[Rule, ...] = (
    # --- a missing friend -------------------------------------------------------------------
    Rule("cant_find_friend", "lost_person", "en", (
        "$CAN $NOT =find $POSS? * $PERSON",
        "$CAN $NOT =see $POSS $PERSON * anywhere",
        "=find $POSS? $PERSON anywhere",
        "where $POSS? $PERSON =is|=are|=went|=gone",
        "where =is|=are|=s|='s $POSS $PERSON",
        "where =the|=on =hell|=fuck|=earth =is|=are|=s|='s $POSS $PERSON",
        "where =tf =is|=are|=s|='s $POSS $PERSON",
        "unable to =find $POSS? $PERSON",
    )),
    Rule("lost_friend", "lost_person", "en", (
        "~lose $POSS? * $PERSON",
        "$PERSON ~be|=has|=have|=s|='s ~lose|missing|~go|~disappear|~vanish",
        "$PERSON =has|=have|=s|='s ~go|gone|=went missing|awol",
        "$PERSON ~disappear|~vanish",
        "~get|~be separated from $POSS? * $PERSON",
        "~have|~be $NOT ~see $POSS? * $PERSON",
        "$POSS $PERSON =never ~come|~make =back",
        "lost contact with",
    )),
    Rule("friend_unreachable", "lost_person", "en", (
        "$PERSON =is|=isn't|=are|=s|='s|=keeps|=will|=won't|=does|=do $NOT? $ANSWER",
        "$PERSON $NOT $ANSWER",
        "$PERSON =is|=are|=s|='s $NOT =answering|=picking|=replying|=responding",
        "$PERSON phone =is|=s|='s|=went dead|off",
    )),
    Rule("unreachable_hint", "lost_person", "en", (
        "$NOT =answering|=picking|=replying|=responding",
        "=no answer",
        "phone =is|=s|='s|=went|~be|~go dead|off",
        "straight to voicemail",
        "=alone =outside",
        "=for|=in ages|hours|=hrs",
        "=been? =looking|=searching =for|=everywhere",
        "$NOT =came|=come|=coming =back",
        "~be|=its|=it's =been? =ages|=hours|=forever",
        "=last =seen",
        "=ages|=hours|=hour =ago",
        "~be|=been gone",
        "=will|=won't|=will|=does|=doesn't|=isn't|=is $NOT? =pick|=picking =up",
        "=wandered|=walked|=ran|=went off",
        "=left =without =me|=us|=telling|=saying",
        "$CAN $NOT =reach|=contact",
        "$CAN $NOT =get =hold =of",
    ), Kind.SUPPORT),
    # A person of ours + an unreachable hint, in any order, is a missing friend (two supports).
    Rule("person_ref", "lost_person", "en", (
        "$POSS * $PERSON",
        "~lose =track =of",
    ), Kind.SUPPORT),
    Rule("lost_track", "lost_person", "en", (
        "~lose =track =of $POSS? * $PERSON",
    )),
    Rule("no_encuentro", "lost_person", "es", (
        "$NOT =encuentro|=encontramos|=encuentra|=encuentran|=encontrar $ES_POSS? * $ES_PERSON",
        "$NOT ~encontrar $ES_POSS? * $ES_PERSON",
        "$NOT ~poder ~encontrar $ES_POSS? * $ES_PERSON",
        "~perder =a? $ES_POSS * $ES_PERSON",
        "=perdi|=perdimos $ES_POSS? * $ES_PERSON",
        "$ES_PERSON ~haber|=se? * ~desaparecer|~perder",
        "$ES_PERSON =desaparecido|=desaparecida|=desaparecio|=perdido|=perdida",
        "$ES_PERSON ~estar =perdido|=perdida|=perdidos|=perdidas|=desaparecido|=desaparecida",
        "=no se|sabemos donde =esta|=estan $ES_POSS * $ES_PERSON",
        "=donde =esta|=estan $ES_POSS * $ES_PERSON",
        "=nos? =hemos? ~separar|=separado|=separados de $ES_POSS? $ES_PERSON",
    )),
    Rule("no_contesta", "lost_person", "es", (
        "$ES_PERSON $NOT ~contestar|~responder|~coger|=contesta|=responde|=coge",
        "$ES_PERSON =tiene? =el? movil =apagado|=muerto",
    )),
    Rule("no_contesta_hint", "lost_person", "es", (
        "$NOT ~contestar|~responder|~coger|=contesta|=responde|=coge",
        "movil|telefono =apagado|=muerto",
        "=hace horas",
        "=se =ha|=han|=fue|=fueron =ido|=marchado|=perdido|=ido",
        "=se =fue|=fueron",
        "$NOT =aparece|=aparecen|=vuelve|=vuelven|=esta|=estan",
    ), Kind.SUPPORT),
    Rule("persona_ref", "lost_person", "es", (
        "$ES_POSS $ES_PERSON",
    ), Kind.SUPPORT),
    # --- medical emergencies --------------------------------------------------------------------
    Rule("collapsed", "medical", "en", (
        "~collapse|collapsed",
        "~pass|passed|=passing out",
        "~faint|fainted",
        "unconscious|unresponsive",
        "~black|blacked out",
        "$CAN? $NOT =breathe|=breath|=breathing",
        "~seizure|seizure|seizures|convulsing|~convulse",
        "=fitting =on =the =floor",
        "overdose|overdosed|overdosing",
        "heart attack",
        "chest =pain|=pains",
        "$NOT =waking|=wake =up",
        "=will|=can|=could $NOT =wake =her|=him|=them =up?",
        "$CAN $NOT =stand =up?",
        "=throwing|=throw|~vomit|=being =up? blood",
        "~bleed|bleeding =a? =lot|heavily|badly|everywhere|loads",
        "blood everywhere",
        "=is|=s|='s|=are|=keeps|~be bleeding",
        "=fell|=fallen|=falling =down|=off =the? =stairs|=steps|=stage|=balcony",
        "=heart =is|=s|='s? =racing|=pounding|=beating",
        "=hit|=banged|=bang|=smashed =his|=her|=my|=their =head",
        "~need|=get|=call =an|=a? ambulance|paramedic|paramedics|=medic|=doctor",
        "ambulance",
        "allergic reaction",
        "anaphylactic|anaphylaxis|epipen",
        "asthma attack",
        "heatstroke", "=heat =stroke",
        "~break|broken =his|=her|=my? =arm|=leg|=ankle|=wrist|=nose",
        "=medical emergency",
        "turning =blue",
        "=lips|=face|=skin =are|=is|=look|=looks|=going|=turning|=gone? =blue|=grey|=purple",
        "$CAN $NOT =stand|=walk|=talk|=speak|=move =properly|=straight|=up",
        "=keeps? =throwing =up|~vomit $CAN? $NOT",
    )),
    Rule("desmayo", "medical", "es", (
        "~desmayar|=desmayado|=desmayada|=desmayo|=desmayos",
        "inconsciente|=inconsciente",
        "$NOT ~poder? ~respirar|=respira",
        "$NOT =se? ~despertar|=despierta|=reacciona|~reaccionar",
        "convulsiones|~convulsionar",
        "sobredosis",
        "ambulancia|=ambulancia",
        "infarto",
        "=ataque =al =corazon",
        "=sangra|sangrando|~sangrar mucho",
        "=se? =ha? =caido =y $NOT =se? =levanta",
        "$NOT =se =tiene =en =pie", "$NOT =puede =andar|=hablar|=levantarse|=moverse",
        "=labios =morados|=azules",
        "=golpe =de =calor",
        "=reaccion alergica",
        "=dolor =en =el =pecho", "=dolor =de =pecho",
        "=duele =mucho? =el =pecho|=corazon",
        "=vomitando sangre",
        "=medico|=doctor|=sanitario =urgente|=ya|=ahora",
        "=emergencia =medica",
    )),
    # --- distress, self-harm, spiking ------------------------------------------------------------
    Rule("spiked", "safety", "en", (
        "spiked|spiking|~spike",
        "~drug|drugged|roofied|=roofies",
        "=put|=slipped|=dropped =something|=stuff|=a =pill? =in|=into $POSS? $DRINK",
        "=something =in $POSS $DRINK",
        "$DRINK ~taste|tasted =really? weird|funny|strange|=off|odd|bitter|salty",
        "=someone =messed|=tampered =with $POSS? $DRINK",
    )),
    Rule("self_harm", "safety", "en", (
        "~want|=wanna =to? ~die",
        "=wish =i =was|=were =dead",
        "~kill|=killing myself",
        "~end =it =all",
        "~end|=take $POSS? =own? life",
        "suicidal|suicide",
        "~hurt|~harm|~cut myself",
        "=self =harm|harming",
        "=thinking|=think|=thought =about|=of ~end|=ending =it|=things|=everything|=my",
        "=thinking|=think|=thought =about|=of ~kill|=killing|~hurt|=hurting|~harm|=harming =myself",
        "$NOT ~want =to =live|=alive", "$NOT ~want =to =be =here|=alive",
        "=no =reason =to =live",
        "=better =off dead",
        "$CAN $NOT =go =on",
        "$CAN $NOT =do =this|=it =anymore",
        "~want =it =all =to =stop|=end",
    )),
    Rule("distress", "safety", "en", (
        "panic|=panicking|anxiety =attack",
        "=having =a? panic",
        "$CAN $NOT =stop shaking|crying|=panicking",
        "$CAN $NOT =calm =down",
        "=i|=we|=she|=he|=they ~be|~feel|=m|=am|=re $INTENS? scared|terrified|frightened|afraid",
        "$INTENS scared|terrified|frightened",
        "$NOT ~feel safe",
        "=feel|=feeling|=felt|~be unsafe", "=in =danger",
        "=i|=we|='m|=m ~be|=am $NOT safe",
        "~feel|=feeling|=felt $INTENS? $UNWELL",
        "~feel|=feeling $INTENS =bad", "~feel|=feeling =not =good|=right|=ok|=okay",
        "$NOT ~feel|=feeling =well|=good|=right|=ok|=okay",
        "=something =is|='s|=s wrong =with =me|=her|=him|=my",
        "=help =me =please",
        "=please|=someone|=somebody|=anyone =help",
        "=there =is|='s|=s =a? fight",
        "=people =are? fighting",
        "$INTENS? =bad|=horrible|=awful|=scary|=terrible trip|tripping",
    )),
    Rule("distress_hint", "safety", "en", (
        "=help",
        "=please|=urgent|urgently|=quick|=now|=asap|emergency",
        "=alone",
        "=scared",
    ), Kind.SUPPORT),
    Rule("drogado", "safety", "es", (
        "~drogar|=drogado|=drogada|=drogaron|=drogao|=drogaos",
        "=echado|=echaron|=echo|=puesto|=pusieron|=metido|=metieron =algo =en $ES_POSS? $ES_DRINK",
        "=algo =en $ES_POSS $ES_DRINK",
        "=burundanga|=extasis|=ghb",
        "=bebida|=copa =sabe|=sabia =rara|=raro|=extrano|=extrana",
    )),
    Rule("autolesion", "safety", "es", (
        "=quiero|=quiere =morir|=morirme|=matarme",
        "=me =quiero =morir",
        "suicidarme|suicidio|~suicidar",
        "=matarme|=hacerme =dano",
        "$NOT =quiero =vivir|=seguir",
        "=no =puedo =mas",
    )),
    Rule("malestar", "safety", "es", (
        "=me =siento|=encuentro|=noto $ES_INTENS? =mal|=rara|=raro|=mareada|=mareado|=fatal",
        "=estoy|=esta $ES_INTENS? =mareada|=mareado|asustada|asustado|aterrada|aterrado",
        "=tengo $ES_INTENS? =mucho? miedo|=panico",
        "=ataque =de =panico|ansiedad",
        "$NOT =me =siento segura|seguro",
        "=socorro|=auxilio",
        "=ayuda =por =favor",
        "=por =favor =ayuda|=ayudadme|=ayudame",
        "=hay =una pelea",
    )),
    Rule("ayuda_hint", "safety", "es", (
        "=ayuda|=urgente|=rapido|=ya|=sola|=solo",
    ), Kind.SUPPORT),
    # --- harassment and assault ---------------------------------------------------------------
    Rule("touched", "harassment", "en", (
        "~touch|touched|touching|=touchin|=toucht =me|=my|=her|=us|=him",
        "~grope|groped|groping",
        "~grab|grabbed|grabbing =me|=my|=her|=us =ass|=bum|=boob|=chest|=arse?",
        "~molest|molested",
        "~harass|harassed|harassing|harassment|harrased|harrassing",
        "~assault|assaulted|assaulting",
        "~rape|raped",
        "~stalk|stalking",
        "=being|=getting|=been ~follow|followed",
        "=follow|=followed|following|=follows =me|=us|=her|=my",
        "=won't|=will|=doesnt|=does|=will $NOT? =leave =me|=us|=her =alone",
        "~flash|flashed =me|=us|=her",
        "~attack|attacked =me|=us|=her|=him|=my",
        "~threaten|threatened =me|=us|=her|=him|=to",
        "=forced|=forcing =himself|=herself|=me",
        "=spat|=spit =on|=at =me|=us|=her",
        "~film|~record =me|=us|=her =without",
        "upskirt|upskirting",
        "~try|=trying|=tried|=keeps|=kept =to? ~kiss|=kissing|~touch|~grab =me|=her|=us|=my",
        "~kiss|kissed =me|=her =without|=against",
        "~expose|exposed|exposing =himself|=themselves|=his",
        "~flash|flashing =his|=us|=me|=her",
        "=sexual =assault|=harassment",
        "=creep|creepy =guy|=man|=men|=bloke =is? =following|~touch|=won't|=keeps",
        "=feel|=felt ~be? =up",
    )),
    Rule("hit", "harassment", "en", (
        "=hit|=punched|=slapped|=kicked|=beat|=beaten|~punch|~slap =me|=us|=her|=him|=my",
        "=beat|=beaten =me|=him|=her|=us? up",
    ), unless_next=("out", "off")),  # "kicked me out" is an ejection: a complaint, not assault
    # Someone + a pestering hint, in any order (two supports).
    Rule("harasser_ref", "harassment", "en", (
        "=guy|=man|=men|=bloke|=creep|=dude|=someone|=somebody|=stranger|=lads|=group",
    ), Kind.SUPPORT),
    Rule("pester_hint", "harassment", "en", (
        "=won't|=wont|=will|=doesn't|=does $NOT? =stop|=go|=leave",
        "~rub|rubbing =against|=up|=on|=himself",
        "=against =me|=us|=her",
        "bothering|pestering|=hassling|~hassle =me|=us|=her",
        "uncomfortable", "=staring =at =me|=us|=her",
        "~corner|cornered =me|=us|=her",
    ), Kind.SUPPORT),
    Rule("acosador_ref", "harassment", "es", (
        "=chico|=tio|=tipo|=hombre|=senor|=alguien|=pavo|=grupo|=chicos|=tios",
    ), Kind.SUPPORT),
    Rule("molestia_hint", "harassment", "es", (
        "=molestando|=molesta|=agobiando|=incomodando|=acercando|=restregando|=rozando",
        "$NOT =se =va|=para|=deja|=van",
        "=incomoda|=incomodo|=incomodas",
    ), Kind.SUPPORT),
    Rule("acoso", "harassment", "es", (
        "~acosar|acosando|=acoso|acosado|acosada",
        "=me|=nos|=la|=le|=les =ha|=han? ~tocar|=toco|=tocado|=tocando|=manoseado|~manosear",
        "=me|=nos|=la|=le =esta|=estan|=ha|=han? ~seguir|=siguiendo|~perseguir|=persiguiendo",
        "=me|=nos|=la|=le =ha|=han? =seguido|=perseguido",
        "=intentado|=intenta|=intento =besarme|=tocarme|=besarla|=tocarla",
        "=se =ha? =bajado =los =pantalones",
        "=metido|=meter|=meten|=metio|=metiendo =mano", "=ensenando|=enseno =sus? =partes",
        "=me|=nos|=la|=le|=les =ha|=han? ~agredir|=agredido|=agredida|=pegado|=pegaron|=pego|=pegando",
        "~agredir|agresion|=agresion",
        "~violar|violacion|=abuso|~abusar",
        "$NOT =me|=nos|=la =deja|=dejan =en =paz",
        "=me|=nos|=la =ha|=han? ~amenazar|=amenazado|=amenazada",
        "=me|=nos|=la =esta|=estan? ~grabar|=grabando =sin",
    )),
)


class SafetyMatcher:
    """The compiled safety patterns of both languages."""

    def __init__(self, pipelines: Mapping[str, Language], rules: Sequence[Rule] = RULES) -> None:
        self.patterns = PatternMatcher(pipelines, rules, CLASSES)

    def match(self, raw: str, norm: Normalised, docs: Mapping[str, Doc]) -> SafetyResult:
        return resolve(self.patterns.find(docs), lambda start, end: norm.original(raw, start, end))


def resolve(found: Sequence[Found], quote: Callable[[int, int], str]
            ) -> SafetyResult:
    """Pick the topic from the triggers; supports only join a reason a trigger started.
    Overlapping matches are quoted once ("having a panic attack", not two halves)."""
    triggered = {rule.topic for _, _, rule in found if rule.kind is Kind.TRIGGER}
    # Two different supporting rules of one topic ("my friend" + "won't pick up") also fire it.
    supports: dict[str, set[str]] = {}
    for _, _, rule in found:
        if rule.kind is Kind.SUPPORT:
            supports.setdefault(rule.topic, set()).add(rule.name)
    triggered |= {topic for topic, names in supports.items() if len(names) >= 2}
    if not triggered:
        return SafetyResult(topic=None)
    topic = next(t for t in TOPIC_ORDER if t in triggered)
    hits: list[SafetyHit] = []
    for start, end, rules in merge(found):
        best = min(rules, key=lambda r: (r.kind is not Kind.TRIGGER, TOPIC_ORDER.index(r.topic)))
        hits.append(SafetyHit(best.name, best.topic, best.kind, quote(start, end)))
    return SafetyResult(topic=topic, hits=tuple(hits))


