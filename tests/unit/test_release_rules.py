"""The release-case state machine and clearance, property-tested."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings, strategies as st

from app.domain import release as rules
from app.domain.release import (
    CaseStatus, ClearanceStatus, LineClass, NumberEvent, Reason, TaskStatus, TenureStatus,
)
from app.errors import InvalidState

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def test_transition_table():
    assert rules.transition(TenureStatus.ACTIVE, NumberEvent.DISCONNECTED) is TenureStatus.DISCONNECTED
    assert rules.transition(TenureStatus.DISCONNECTED, NumberEvent.RESTORED) is TenureStatus.ACTIVE
    assert rules.transition(TenureStatus.DISCONNECTED, NumberEvent.REASSIGNED) is TenureStatus.CLOSED
    for status, event in [(TenureStatus.ACTIVE, NumberEvent.REASSIGNED), (TenureStatus.ACTIVE, NumberEvent.RESTORED),
                          (TenureStatus.DISCONNECTED, NumberEvent.DISCONNECTED),
                          (TenureStatus.DISCONNECTED, NumberEvent.PORTED_OUT), (TenureStatus.CLOSED, NumberEvent.RESTORED)]:
        with pytest.raises(InvalidState):
            rules.transition(status, event)


def test_closed_is_final():
    for event in NumberEvent:
        with pytest.raises(InvalidState):
            rules.transition(TenureStatus.CLOSED, event)


@pytest.mark.parametrize("code, days", [("CN", 90), ("US", 45), ("GB", 90)])
def test_minimum_aging_by_jurisdiction(code, days):
    timing = rules.release_timing(code, Reason.VOLUNTARY, LineClass.RESIDENTIAL, T0, None)
    assert timing.earliest_clear_at == T0 + dt.timedelta(days=days)
    assert timing.notify_at == T0


def test_carrier_may_age_longer_but_never_shorter():
    later = rules.release_timing("US", Reason.VOLUNTARY, LineClass.RESIDENTIAL, T0, T0 + dt.timedelta(days=60))
    assert later.earliest_clear_at == T0 + dt.timedelta(days=60)
    shorter = rules.release_timing("US", Reason.VOLUNTARY, LineClass.RESIDENTIAL, T0, T0 + dt.timedelta(days=10))
    assert shorter.earliest_clear_at == T0 + dt.timedelta(days=45)


def test_us_fraud_hold_respects_maximum_aging():
    residential = rules.release_timing("US", Reason.FRAUD, LineClass.RESIDENTIAL, T0, None)
    assert residential.blocked_until == T0 + dt.timedelta(days=90)
    cn = rules.release_timing("CN", Reason.FRAUD, LineClass.RESIDENTIAL, T0, None)
    assert cn.blocked_until == T0 + dt.timedelta(days=180)


@given(st.sampled_from(["CN", "US", "FR"]), st.sampled_from(list(Reason)), st.sampled_from(list(LineClass)),
       st.integers(min_value=0, max_value=400))
def test_notices_always_leave_platforms_time(code, reason, line_class, extra_days):
    aging = T0 + dt.timedelta(days=extra_days) if extra_days else None
    timing = rules.release_timing(code, reason, line_class, T0, aging)
    rules_for = rules.jurisdiction(code)
    assert T0 <= timing.notify_at <= timing.earliest_clear_at
    assert timing.earliest_clear_at >= T0 + dt.timedelta(days=rules_for.min_aging_days)
    lead = min(rules_for.platform_lead_days, (timing.earliest_clear_at - T0).days)
    assert timing.earliest_clear_at - timing.notify_at >= dt.timedelta(days=lead)


class Model:
    """The life cycle of one number, driven by random events, checked after each step."""

    def __init__(self, bindings: int):
        self.status = TenureStatus.ACTIVE
        self.case: rules.CaseView | None = None
        self.tasks: list[rules.TaskView] = []
        self.bindings = bindings
        self.disconnected_at: dt.datetime | None = None

    def apply(self, event: NumberEvent, at: dt.datetime) -> None:
        try:
            nxt = rules.transition(self.status, event)
        except InvalidState:
            return
        if event is NumberEvent.DISCONNECTED:
            timing = rules.release_timing("CN", Reason.VOLUNTARY, LineClass.RESIDENTIAL, at, None)
            self.case = rules.CaseView("c", CaseStatus.OPEN, timing.earliest_clear_at, None)
            self.tasks = [rules.TaskView(TaskStatus.PENDING, "unbind") for _ in range(self.bindings)]
            self.disconnected_at = at
        elif event is NumberEvent.RESTORED and self.case:
            self.case = rules.CaseView("c", CaseStatus.CANCELLED, self.case.earliest_clear_at, None)
            self.tasks = [rules.TaskView(TaskStatus.CANCELLED, t.action) for t in self.tasks]
        elif event is NumberEvent.REASSIGNED:
            self.case, self.tasks, nxt = None, [], TenureStatus.ACTIVE  # the successor tenure
        self.status = nxt


events = st.sampled_from(list(NumberEvent))
outcomes = st.sampled_from([TaskStatus.NOTIFIED, TaskStatus.UNBOUND, TaskStatus.NO_ACCOUNT, TaskStatus.REFUSED])


@settings(max_examples=300)
@given(st.integers(min_value=0, max_value=4),
       st.lists(st.tuples(events, st.integers(min_value=0, max_value=120), st.lists(outcomes, max_size=4)),
                max_size=12))
def test_any_event_sequence_keeps_a_legal_state_and_safe_clearance(bindings, steps):
    model = Model(bindings)
    day = 0
    for event, wait, results in steps:
        day += wait
        at = T0 + dt.timedelta(days=day)
        model.apply(event, at)
        for i, result in enumerate(results[: len(model.tasks)]):
            if model.tasks[i].status in rules.OPEN_TASKS:
                model.tasks[i] = rules.TaskView(result, "unbind")
        assert model.status in (TenureStatus.ACTIVE, TenureStatus.SUSPENDED, TenureStatus.DISCONNECTED)
        assert (model.case is not None and model.case.status is CaseStatus.OPEN) == (
            model.status is TenureStatus.DISCONNECTED)
        answer = rules.clearance(known=True, case=model.case, tasks=model.tasks, hold_until=None, now=at)
        if answer.status is ClearanceStatus.CLEAR:
            assert all(t.status in rules.TERMINAL_TASKS for t in model.tasks)
            assert model.disconnected_at is not None and at >= model.disconnected_at + dt.timedelta(days=90)
            assert model.status is TenureStatus.DISCONNECTED
        assert answer.tasks["total"] == sum(1 for t in model.tasks if t.status is not TaskStatus.CANCELLED)


def test_unknown_and_blocked():
    assert rules.clearance(known=False, case=None, tasks=[], hold_until=None, now=T0).status is ClearanceStatus.UNKNOWN
    case = rules.CaseView("c", CaseStatus.OPEN, T0, None)
    held = rules.clearance(known=True, case=case, tasks=[], hold_until=T0 + dt.timedelta(days=1), now=T0)
    assert held.status is ClearanceStatus.BLOCKED and held.blocked_until == T0 + dt.timedelta(days=1)
    expired = rules.clearance(known=True, case=case, tasks=[], hold_until=T0 - dt.timedelta(days=1), now=T0)
    assert expired.status is ClearanceStatus.CLEAR


def test_handover_completion():
    case = rules.CaseView("c", CaseStatus.OPEN, T0, None)
    tasks = [rules.TaskView(TaskStatus.HANDED_OVER, "handover"), rules.TaskView(TaskStatus.PENDING, "handover")]
    assert rules.clearance(known=True, case=case, tasks=tasks, hold_until=None, now=T0).handover == {
        "required": True, "completed": False}
