"""The conversation state table: every move of the architecture note, and nothing else."""

from __future__ import annotations

import itertools

import pytest

from api.conversations import service as conversations
from api.conversations.state import TRANSITIONS, IllegalTransition, check, is_allowed
from api.enums import Channel
from api.enums import ConversationStatus as S
from api.staff import service as staff
from tests.api.conftest import REPO_ROOT

EXPECTED = {
    (S.bot, S.queued), (S.bot, S.assigned), (S.queued, S.assigned), (S.assigned, S.assigned),
    (S.assigned, S.queued), (S.assigned, S.bot), (S.queued, S.resolved),
    (S.assigned, S.resolved), (S.resolved, S.bot), (S.resolved, S.assigned),
}


def test_table_is_exactly_the_architecture_note():
    assert set(TRANSITIONS) == EXPECTED


@pytest.mark.parametrize("pair", sorted(itertools.product(S, S)))
def test_every_pair_is_allowed_or_refused(pair):
    current, target = pair
    if pair in EXPECTED:
        assert is_allowed(current, target)
        assert check(current, target)
    else:
        assert not is_allowed(current, target)
        with pytest.raises(IllegalTransition):
            check(current, target)


def _open(session):
    conversation, created = conversations.open_for(
        session=session, channel=Channel.rest, external_id="fan-1"
    )
    assert created
    return conversation


def _noor(session):
    staff.seed(session=session, team=staff.load_team(path=REPO_ROOT / "data" / "staff.yml"))
    return staff.get_by_handle(session=session, handle="noor")


def test_transition_records_activity_and_event(harness):
    bus = harness.services.bus
    with harness.services.db.session() as session:
        noor = _noor(session)
        conversation = _open(session)
        conversations.transition(session=session, conversation=conversation, to=S.assigned,
                                 actor="router", reason="safety", assignee_id=noor.id)
        session.commit()
        assert conversation.status == S.assigned
        assert conversation.assignee_id == noor.id
        assert conversation.version == 2
        activity = [m for m in conversation.messages if m.kind.value == "activity"]
        assert activity and activity[-1].payload["transition"]["to"] == "assigned"
    assert bus.published >= 2  # opened + status_changed, published after commit


def test_illegal_move_changes_nothing(harness):
    with harness.services.db.session() as session:
        conversation = _open(session)
        session.commit()
        with pytest.raises(IllegalTransition):
            conversations.transition(session=session, conversation=conversation,
                                     to=S.resolved, actor="staff", reason="no")
        session.rollback()
        assert conversations.get(session=session, conversation_id=conversation.id).status == S.bot


def test_assigned_needs_an_assignee(harness):
    with harness.services.db.session() as session:
        conversation = _open(session)
        with pytest.raises(ValueError):
            conversations.transition(session=session, conversation=conversation,
                                     to=S.assigned, actor="router", reason="x")


def test_stale_version_is_a_conflict(harness):
    db = harness.services.db
    with db.session() as s1:
        noor = _noor(s1)
        conversation = _open(s1)
        s1.commit()
        cid, noor_id = conversation.id, noor.id
    with db.session() as a, db.session() as b:
        ca = conversations.get(session=a, conversation_id=cid)
        cb = conversations.get(session=b, conversation_id=cid)
        conversations.transition(session=a, conversation=ca, to=S.queued, actor="router",
                                 reason="nobody free")
        a.commit()
        with pytest.raises(conversations.TransitionConflict):
            conversations.transition(session=b, conversation=cb, to=S.assigned, actor="router",
                                     reason="picked", assignee_id=noor_id)
