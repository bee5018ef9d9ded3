"""The thread's trajectory (pure), and the trained model's rough sense."""

from __future__ import annotations

from api.triage.emotion import Level, TrajectoryPolicy, intensity, trajectory
from api.triage.engine import Triage
from api.triage.schemas import FanTurn

TH = 0.5


def t(score, previous=(), grievance=False, distress=False, intense=False):
    return trajectory(score, list(previous), TH, grievance=grievance, distress=distress,
                      intense=intense, policy=TrajectoryPolicy())


def test_calm_and_one_grumpy_message_stay_with_the_bot() -> None:
    assert t(0.1).level is Level.CALM
    assert t(0.7).level is Level.GRUMPY and not t(0.7).handoff
    assert not t(0.7, previous=[0.1, 0.2]).handoff


def test_rising_anger_hands_off() -> None:
    v = t(0.8, previous=[0.1, 0.6])
    assert v.handoff and v.level is Level.RISING and "rising" in (v.reason or "")
    assert t(0.6, previous=[0.9]).reason.startswith("emotion: sustained")


def test_old_anger_outside_the_window_does_not_count() -> None:
    assert not t(0.7, previous=[0.9, 0.1, 0.1]).handoff


def test_strong_first_message_needs_a_grievance_distress_or_intensity() -> None:
    assert not t(0.9).handoff
    assert t(0.9, grievance=True).handoff
    reason = t(0.9, distress=True).reason or ""
    assert reason.startswith("emotion: strongly negative first message (distress")
    assert t(0.9, intense=True).handoff


def test_grievance_lowers_the_bar_a_little() -> None:
    assert t(0.65, grievance=True).handoff
    assert not t(0.55, grievance=True).handoff


def test_intensity() -> None:
    assert intensity("THIS IS A JOKE") and intensity("why?!") and not intensity("ok thanks")


def test_model_scores_anger_above_thanks(triage: Triage) -> None:
    assert triage.model is not None
    angry = triage.model.score("this is a disgrace, worst service ever, i'm furious")
    happy = triage.model.score("thank you so much, amazing night")
    assert angry > triage.model.meta.threshold > happy


def test_rising_anger_over_a_thread(triage: Triage) -> None:
    history = [FanTurn("your website is useless and so slow, really annoying")]
    d = triage.assess_and_decide("this is ridiculous, nobody helps, i'm so angry and fed up",
                                 history)
    assert d.handoff and d.topic == "complaint", d


def test_stored_scores_are_reused(triage: Triage) -> None:
    history = [FanTurn("fine", negative=0.99)]
    a = triage.before_bot("this is so annoying and frustrating, awful, i hate it", history)
    if a.negative >= triage.model.meta.threshold:
        assert a.emotion.handoff
