"""The conversation state machine: one explicit table; any other move is refused."""

from __future__ import annotations

from api.enums import ConversationStatus as S


class IllegalTransition(ValueError):
    """A state change the table does not allow."""

    def __init__(self, current: S, target: S) -> None:
        super().__init__(f"illegal conversation transition {current.value} -> {target.value}")
        self.current = current
        self.target = target


# (from, to) -> when it happens (architecture note, "The conversation state machine").
TRANSITIONS: dict[tuple[S, S], str] = {
    (S.bot, S.queued): "a person is needed and nobody suitable is free",
    (S.bot, S.assigned): "a person is needed and routing picked one",
    (S.queued, S.assigned): "a suitable person comes online or takes it",
    (S.assigned, S.assigned): (
        "transfer to a colleague, or reassignment when the first response is late"
    ),
    (S.assigned, S.queued): "the assignee goes offline and nobody else suitable is free",
    (S.assigned, S.bot): "the assignee hands the thread back to the bot",
    (S.queued, S.resolved): "staff resolve it",
    (S.assigned, S.resolved): "staff resolve it",
    (S.resolved, S.bot): "the fan writes again later",
    (S.resolved, S.assigned): "the fan writes again soon and the same person is online",
}


def is_allowed(current: S, target: S) -> bool:
    return (current, target) in TRANSITIONS


def check(current: S, target: S) -> str:
    """Return why the move exists, or raise :class:`IllegalTransition`."""
    try:
        return TRANSITIONS[(current, target)]
    except KeyError:
        raise IllegalTransition(current, target) from None
