# ruff: noqa: E501  (pattern tables read better one pattern per line)
"""Requests the bot must not own, the fan asking for a person, and routine question subjects.

Same notation as the safety patterns (``patterns.py``), English and Spanish. Three kinds of rule:
- OWNED_BY_STAFF: refund disputes, VIP table bookings, press, artists, complaints about staff or
  being refused entry -> hand off on the first message (the bot's facts may ride along).
- EXPLICIT: "talk to a human", "hablar con una persona" -> the evident subject, else `general`.
- Subjects (tickets, lockers, hours...): routine questions, only counted so that two or more
  *case* requests (things a person has to do: change a name, resend a ticket, an invoice) in one
  message hand off while "do you have lockers and how much?" stays with the bot.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from spacy.language import Language
from spacy.tokens import Doc

from api.triage.patterns import Found, PatternMatcher, Rule, merge
from api.triage.text import Normalised


class Group(enum.Enum):
    OWNED_BY_STAFF = "owned"  # hand off in the first reply
    EXPLICIT = "explicit"  # the fan asks for a person
    CASE = "case"  # an action only a person can take; two distinct ones hand off
    SUBJECT = "subject"  # a routine question subject; only counted
    GRIEVANCE = "grievance"  # raises an angry message to a handoff on its own


@dataclass(frozen=True)
class Request:
    group: Group
    topic: str  # staff.yml topic for OWNED_BY_STAFF / EXPLICIT / CASE; a subject name otherwise
    quote: str
    rule: str = ""  # the lexicon rule that matched (one rule = one kind of request)
    span: int = 0  # which stretch of the message matched (overlapping matches share one)


@dataclass(frozen=True)
class LexiconResult:
    requests: tuple[Request, ...] = field(default_factory=tuple)

    def of(self, group: Group) -> tuple[Request, ...]:
        return tuple(r for r in self.requests if r.group is group)

    @property
    def explicit(self) -> bool:
        return bool(self.of(Group.EXPLICIT))

    @property
    def owned(self) -> tuple[Request, ...]:
        return self.of(Group.OWNED_BY_STAFF)

    @property
    def grievance(self) -> tuple[Request, ...]:
        return self.of(Group.GRIEVANCE)

    def distinct(self, group: Group) -> list[str]:
        seen: list[str] = []
        for r in self.of(group):
            if r.topic not in seen:
                seen.append(r.topic)
        return seen

    def distinct_cases(self) -> list[Request]:
        """One request per case the fan raises: a second phrasing of a case already counted
        ("lost my phone ... lost and found") or one stretch of text matching two rules counts
        once."""
        counted: list[Request] = []
        rules: set[str] = set()
        spans: set[int] = set()
        for r in self.of(Group.CASE):
            if r.rule in rules or r.span in spans:
                continue
            counted.append(r)
            rules.add(r.rule)
            spans.add(r.span)
        return counted


# Rule.topic carries "<group>:<topic>" so one Matcher serves every group.
def _r(name: str, group: Group, topic: str, lang: str, *patterns: str) -> Rule:
    return Rule(name, f"{group.value}:{topic}", lang, patterns)


O, E, C, S, G = Group.OWNED_BY_STAFF, Group.EXPLICIT, Group.CASE, Group.SUBJECT, Group.GRIEVANCE  # noqa: E741

CLASSES: dict[str, dict[str, Any]] = {
    "NUM": {"LIKE_NUM": True},
    "NOT": {"NORM": {"IN": ["not", "no", "never"]}},
    "STAFF": {"NORM": {"IN": [
        "bouncer", "bouncers", "security", "staff", "doorman", "doormen", "bartender",
        "bartenders", "barman", "barmen", "barmaid", "waiter", "waitress", "manager", "host",
        "hostess", "guard", "guards", "promoter", "cloakroom", "employee", "employees", "girl",
        "guy", "woman", "man", "lady", "bloke", "dj", "door", "team", "people", "worker"]}},
    "BAD": {"NORM": {"IN": [
        "rude", "racist", "aggressive", "disrespectful", "abusive", "violent", "sexist",
        "homophobic", "horrible", "awful", "unprofessional", "nasty", "hostile", "condescending",
        "arrogant", "vile", "disgusting", "discriminated", "discriminating", "insulted", "swore",
        "shouted", "yelled", "screamed", "pushed", "shoved", "laughed", "mocked", "ignored",
        "threw", "kicked", "ruined", "stole", "robbed", "scammed", "lied", "humiliated", "refused",
        "manhandled", "grabbed", "harassed", "assaulted", "treated", "spoke", "talked"]}},
    "REFUSED": {"NORM": {"IN": ["refused", "denied", "turned", "rejected", "declined",
                                "kicked", "thrown", "threw", "chucked", "removed", "ejected",
                                "barred", "banned", "refuse", "deny"]}},
    "PAST": {"NORM": {"IN": ["was", "were", "got", "been", "get", "they", "he", "she", "we",
                             "i", "us", "me", "just", "have", "has", "had"]}},
    "PERSON": {"NORM": {"IN": ["human", "person", "humans", "people", "someone", "somebody",
                               "agent", "operator", "manager", "staff", "representative",
                               "rep", "advisor", "adviser", "real", "actual", "member"]}},
    "ES_POSS": {"NORM": {"IN": ["mi", "mis", "nuestro", "nuestra", "el", "la", "los", "las",
                                "del", "al", "vuestro", "vuestra", "un", "una"]}},
    "ES_STAFF": {"NORM": {"IN": [
        "portero", "porteros", "seguridad", "segurata", "seguratas", "camarero", "camarera",
        "camareros", "personal", "encargado", "encargada", "relaciones", "chico", "chica",
        "tio", "tia", "senor", "senora", "empleado", "empleada", "puerta", "staff",
        "guardarropa", "relacion", "rrpp", "taquilla"]}},
    "ES_BAD": {"NORM": {"IN": [
        "borde", "bordes", "maleducado", "maleducada", "racista", "agresivo", "agresiva",
        "grosero", "grosera", "violento", "irrespetuoso", "fatal", "horrible", "machista",
        "nos", "me", "insulto", "insultaron", "grito", "gritaron", "empujo", "empujaron",
        "echo", "echaron", "trato", "trataron", "robo", "estafo", "mintio", "humillo"]}},
}

RULES: tuple[Rule, ...] = (
    # --- refund disputes -----------------------------------------------------------------------
    _r("money_back", O, "refund", "en",
       "~want|~need|~demand|~expect|=give|=get|=getting =me? =my|=the|=our money back",
       "=my|=our money back", "~want|~demand|~expect|~need =a|=my|=our|=the|=full? refund",
       "refund|refunds|refunded =still|=yet|=never|=not",
       "=still =waiting =for|=on =a|=my|=the|=our? refund",
       "=haven't|=hasn't|=have|=has =not|=never|=still =received|=got|=gotten|=seen =my|=the|=a|=our? refund",
       "=no =refund =yet", "=where =is|='s =my|=our refund",
       "~charge|charged|=billed =me|=us|=my =card? =twice|=double", "~charge|charged|=billed =me|=us|=my =card? =two =times",
       "=double|=twice charged|=billed|=charged", "overcharged|~overcharge", "chargeback",
       "~charge|charged|=billed =me|=us|=my? =card? $NUM =times", "=charged =for =nothing",
       "=refuse|=refused|=refusing|=won't|=will =to? =give|=issue|=process =me|=us|=a? refund",
       "refund =was =refused|=denied|=rejected",
       "=this =is =a? scam", "=scammed", "=took =my|=our money",
       "=dispute =the? =charge|=payment"),
    _r("reembolso", O, "refund", "es",
       "~querer|=quiero|=queremos =mi|=el|=nuestro? =dinero|reembolso|=devolucion",
       "=devolvedme|=devuelvanme|=devolvednos|=devuelveme =el|=mi? =dinero",
       "=cobraron|=cobrado|=cobrasteis|=cobrais =dos =veces", "=cobraron|=cobrado|=cobrasteis|=cobrais =de =mas", "=cobraron|=cobrado|=cobrasteis =doble",
       "=cobrado =dos =veces|=de =mas", "=cobro =doble",
       "=todavia|=aun =no =me|=nos? =han? =devuelto|=llegado|=recibido",
       "=sigo|=seguimos =esperando =el|=mi|=la =reembolso|=devolucion|=dinero",
       "=estafa|=estafado|=estafaron|=timo"),
    # --- VIP table bookings --------------------------------------------------------------------
    _r("vip_booking", O, "vip", "en",
       "~book|~reserve|=booking|=reserving|=get =a|=the? =vip? table|tables|booth|=section",
       "=vip =table|=tables|=booth|=area|=section =for",
       "=table|=booth =for $NUM",
       "=bottle =service", "=table =booking|=reservation",
       "=reservation|=booking =for =a? =vip"),
    _r("vip_reserva", O, "vip", "es",
       "=reservar|=reserva|=reservo|=reservamos =una? =mesa|=reservado|=vip",
       "=mesa =vip", "=mesa =para $NUM",
       "=servicio =de =botella|=botellas", "=zona =vip"),
    # --- press and artists ---------------------------------------------------------------------
    _r("press", O, "press", "en",
       "journalist|reporter|=editor|=magazine|=newspaper|=blogger|=podcast|=press",
       "=media|=press accreditation|=pass|=enquiry|=inquiry|=request|=release|=kit",
       "=interview =with|=request|=the", "=writing =an|=a =article|=piece|=story|=feature",
       "~film|=filming|=shoot =a? =documentary|=story|=report"),
    _r("prensa", O, "press", "es",
       "periodista|=prensa|=revista|=periodico|=reportaje|=entrevista|=acreditacion|=medio"),
    _r("artists", O, "artists", "en",
       "=booking =agent|=agency", "~book|=booking =an|=our|=my? =artist|=artists|=dj|=act",
       "=i'm|=i|=we|=am|='m|=m|=are|='re =a|=an =dj|=producer|=artist|=band|=promoter",
       "=play|=perform|=gig =at =your|=the =club|=venue|=night",
       "=send =you|=my|=our =demo|=mix|=music", "=my|=our =demo|=mix|=rider",
       "=artist|=artists =management|=manager|=booking|=liaison|=relations",
       "=manage|=represent|=managing =the? =dj|=artist|=band"),
    _r("artistas", O, "artists", "es",
       "=soy|=somos =dj|=productor|=productora|=artista|=banda|=promotor",
       "=pinchar|=tocar|=actuar =en =vuestro|=el|=la? =club|=sala|=fiesta|=noche",
       "=booking =de =artistas?", "=mi|=nuestra =maqueta|=demo|=sesion",
       "=mando|=envio|=enviar|=mandar =mi|=una =demo|=maqueta|=sesion"),
    # --- complaints about staff, refused entry (grievances) --------------------------------------
    _r("staff_bad", O, "complaint", "en",
       "$STAFF =was|=were|=is|=are|=being|=so $BAD", "$STAFF =was|=were|=is|=are =so|=really|=very $BAD",
       "$STAFF $BAD =me|=us|=my|=at|=to|=out|=like",
       "=complaint =about|=against =the? =staff|=bouncer|=security|=bouncers|=doorman|=barman|=bartender",
       "=complain =about =the? $STAFF",
       "=complaint|=complain|=complaining =about|=against|=regarding =a|=one|=your|=the? =member|=members =of =staff|=security|=your|=the", "=report =a|=the? =member =of =staff|=bouncer|=barman",
       "=your|=the =staff|=bouncer|=bouncers|=security|=doorman =treated|=humiliated =me|=us"),
    _r("refused_entry", O, "complaint", "en",
       "$PAST $REFUSED =entry|=entrance|=in|=access|=away|=out",
       "$REFUSED =me|=us|=my|=her|=him|=them =entry|=out|=away",
       "=would|=did|=do|=does|=will|=refused|=refuse|=refusing $NOT? =to? =let =me|=us|=my|=her|=him|=them =in",
       "$PAST =not =let =in", "=turned =away =at =the =door",
       "=no =reason =given", "=for =no =reason"),
    _r("personal_es", O, "complaint", "es",
       "$ES_STAFF =fue|=fueron|=es|=son|=estuvo|=estuvieron =muy|=super|=bastante|=tan? $ES_BAD", "$ES_STAFF =ha|=han =sido =muy|=super|=bastante|=tan? $ES_BAD",
       "$ES_STAFF =nos|=me =echo|=echaron|=trato|=trataron|=insulto|=grito|=empujo",
       "=queja|=reclamacion|=quejarme|=reclamar =sobre|=del|=de|=contra $ES_POSS? $ES_STAFF?",
       "=hoja =de =reclamaciones"),
    _r("entrada_denegada", O, "complaint", "es",
       "=no =me|=nos =dejaron|=dejan|=dejaban|=dejasteis|=dejais =entrar|=pasar",
       "=no =nos|=me =han =dejado =entrar|=pasar", "=nos|=me =echaron", "=nos|=me =han =echado",
       "=nos|=me =denegaron|=negaron =la =entrada", "=sin =motivo|=razon|=explicacion"),
    # --- the fan asks for a person ---------------------------------------------------------------
    _r("human", E, "general", "en",
       "~talk|~speak|~chat|=talking|=speaking =to|=with =a|=an|=the|=your|=some? =real? $PERSON",
       "=real|=actual|=live =person|=human|=people|=agent|=someone",
       "=human|=person|=agent =please", "=are =you =a|=an? =bot|=robot|=real",
       "~get|~put =me =to|=through =to? =a|=an|=the? =human|=person|=agent|=manager",
       "=not =a? =bot", "=no =more =bot|=bots", "=someone|=somebody =who =works =there|=here",
       "=can =someone|=somebody =call|=contact|=ring =me", "$PERSON =call|=ring|=contact|=phone =me|=us",
       "=call =me =back", "=contact =a|=the? =manager|=supervisor",
       "~talk|~speak =to|=with =the? =manager|=supervisor|=boss"),
    _r("persona", E, "general", "es",
       "=hablar|=habla|=hablo|=contactar|=pasar =con =una|=un|=el|=la|=alguien =persona|=humano|=agente|=encargado|=responsable",
       "=hablar|=habla =con =alguien", "=persona =real|=humana", "=un? =humano",
       "=eres =un? =bot|=robot|=maquina", "=no =quiero =hablar =con =un? =bot|=robot|=maquina",
       "=quiero =una? =persona", "=que =me =llame|=llamen|=llameis"),
    # --- cases only a person can act on (two distinct ones hand off) -------------------------------
    _r("case_name", C, "tickets", "en",
       "=change|=changing|=transfer|=transferring =the|=my|=a? =name|=names", "=name =change|=changes",
       "=wrong =name|=names",
       "~transfer =my|=the|=a? =ticket|=tickets"),
    _r("case_resend", C, "tickets", "en",
       "~resend|=re-send =my|=the|=our? =ticket|=tickets|=e-ticket|=confirmation|=email", "=send =again",
       "$NOT ~receive|~get|=received|=got|=gotten =my|=the|=our|=any? =tickets|=ticket|=e-ticket|=confirmation|=email"),
    _r("case_invoice", C, "tickets", "en",
       "=invoice|=invoices|=receipt|=vat"),
    _r("case_change", C, "tickets", "en",
       "~change|~move|~swap =my|=the|=our =ticket|=tickets|=booking|=date|=dates",
       "~upgrade =my|=our|=the|=to", "~cancel =my|=our|=the =ticket|=tickets|=booking|=order",
       "=wrong =date|=email|=ticket"),
    _r("case_access", C, "accessibility", "en",
       "=wheelchair|=carer|=companion|=disabled|=disability|=deaf|=blind|=autistic",
       "=accessible =entrance|=toilet|=platform|=area"),
    _r("case_lost", C, "lost_property", "en",
       "~lose|=left|=dropped|=forgot|=forgotten =my|=our =phone|=wallet|=bag|=keys|=jacket|=coat|=card|=id|=passport|=ring|=glasses",
       "=lost =and =found|=property"),
    # One rule per kind of case: two phrasings of one case are one case (see distinct_cases).
    _r("caso_nombre", C, "tickets", "es", "=cambiar|=cambio =el|=de =nombre|=fecha"),
    _r("caso_factura", C, "tickets", "es", "=factura|=recibo"),
    _r("caso_reenviar", C, "tickets", "es",
       "=no =me =ha|=han =llegado =la|=las|=el|=mi|=mis? =entrada|=entradas|=correo|=email",
       "=reenviar|=reenviadme|=reenviarme =la|=las|=mi|=mis? =entrada|=entradas"),
    _r("caso_cancelar", C, "tickets", "es", "=cancelar =mi|=la|=las|=mis? =entrada|=entradas|=reserva"),
    _r("caso_perdido", C, "lost_property", "es",
       "=perdi|=perdido|=deje|=olvide|=dejado|=olvidado =mi|=el|=la|=mis? =movil|=cartera|=bolso|=llaves|=chaqueta|=abrigo|=tarjeta|=dni|=pasaporte|=gafas",
       "=objetos =perdidos"),
    _r("caso_acceso", C, "accessibility", "es",
       "=silla =de =ruedas", "=acompanante|=discapacidad|=movilidad =reducida"),
    # --- routine subjects (counted, never a handoff on their own) ---------------------------------
    _r("subj_refund", S, "refund", "en", "refund|refunds|refunded|=chargeback"),
    _r("subj_reembolso", S, "refund", "es", "=reembolso|=devolucion|=dinero"),
    _r("subj_vip", S, "vip", "en", "=vip|=table|=booth"),
    _r("subj_vip_es", S, "vip", "es", "=vip|=mesa|=reservado"),
    _r("subj_tickets", S, "tickets", "en", "=ticket|=tickets|=e-ticket|=booking|=order"),
    _r("subj_entradas", S, "tickets", "es", "=entrada|=entradas|=pedido"),
    _r("subj_en", S, "faq", "en",
       "=price|=prices|=cost|=costs|=how =much", "=open|=opening|=doors|=close|=closing|=time|=times|=hours",
       "=locker|=lockers|=cloakroom", "=dress|=code|=wear|=shoes|=trainers",
       "=ticket|=tickets|=guestlist|=guest", "=park|=parking|=bus|=taxi|=shuttle|=get =there",
       "=age|=id|=18|=21", "=lineup|=line|=playing|=dj|=set", "=water|=smoke|=smoking|=food|=drink|=drinks"),
    _r("subj_es", S, "faq", "es",
       "=precio|=precios|=cuesta|=cuanto", "=abre|=abris|=cierra|=cerrais|=hora|=horario",
       "=taquilla|=taquillas|=guardarropa|=consigna", "=vestir|=ropa|=zapatillas|=codigo",
       "=entrada|=entradas|=lista", "=aparcar|=parking|=bus|=autobus|=taxi|=llegar",
       "=edad|=dni", "=cartel|=pincha|=dj|=line"),
    # --- grievance words: an angry message with one of these hands off on its own ----------------
    _r("grievance_en", G, "complaint", "en",
       "=unacceptable|=disgraceful|=disgrace|=outrageous|=ridiculous|=shocking|=appalling|=joke",
       "=worst =night|=club|=experience|=service", "=never =coming =back|=again",
       "=ruined =my|=our|=the =night|=birthday|=evening|=holiday", "=rip-off|=ripoff|=rip =off",
       "=treated =like =shit|=dirt|=criminals|=animals", "=make =a? =complaint",
       "=want|=going =to =complain|=complaint", "=formal =complaint", "=lawyer|=solicitor|=sue",
       "=trading =standards", "=police", "=consumer =rights"),
    _r("grievance_es", G, "complaint", "es",
       "=inaceptable|=vergonzoso|=verguenza|=indignante|=escandalo|=lamentable|=penoso",
       "=peor =noche|=club|=experiencia|=servicio", "=nunca =mas|=volvere",
       "=arruinado|=arruinasteis|=amargado =la|=mi|=nuestra =noche",
       "=denuncia|=denunciar|=abogado|=consumo|=policia", "=reclamacion|=quejarme|=queja"),
)


class Lexicon:
    """The compiled request lexicon of both languages."""

    def __init__(self, pipelines: Mapping[str, Language], rules: Sequence[Rule] = RULES) -> None:
        self.patterns = PatternMatcher(pipelines, rules, CLASSES)

    def match(self, raw: str, norm: Normalised, docs: Mapping[str, Doc]) -> LexiconResult:
        return resolve(self.patterns.find(docs), raw, norm)


def resolve(found: Sequence[Found], raw: str, norm: Normalised) -> LexiconResult:
    requests: list[Request] = []
    for span, (start, end, rules) in enumerate(merge(found)):
        quote = norm.original(raw, start, end)
        for rule in {r.topic: r for r in rules}.values():
            group, topic = rule.topic.split(":", 1)
            requests.append(Request(Group(group), topic, quote, rule.name, span))
    return LexiconResult(tuple(requests))
