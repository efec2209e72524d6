"""The number life cycle, release cases and clearance: pure rules, no I/O.

Written once and used by the carrier hook, the bulk import, the worker and the clearance query.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

from app.domain.inventory import Disposition
from app.errors import InvalidRequest, InvalidState


class NumberEvent(StrEnum):
    SUSPENDED = "number.suspended"
    DISCONNECTED = "number.disconnected"
    RESTORED = "number.restored"
    REASSIGNED = "number.reassigned"
    PORTED_OUT = "number.ported_out"


class TenureStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    DISCONNECTED = "disconnected"
    CLOSED = "closed"  # reassigned: the holder's time with the number is over


class Reason(StrEnum):
    VOLUNTARY = "voluntary"
    NON_PAYMENT = "non_payment"
    SUBSCRIBER_DECEASED = "subscriber_deceased"
    FRAUD = "fraud"
    REGULATORY = "regulatory"
    OTHER = "other"


class LineClass(StrEnum):
    RESIDENTIAL = "residential"
    BUSINESS = "business"


class CaseStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"  # every task terminal
    CANCELLED = "cancelled"  # the holder took the number back


class TaskStatus(StrEnum):
    PENDING = "pending"
    HELD = "held"  # a handover, memorial or deletion waiting for a legacy case's decision
    NOTIFIED = "notified"
    UNBOUND = "unbound"
    HANDED_OVER = "handed_over"
    MEMORIALIZED = "memorialized"
    DELETED = "deleted"
    NO_ACCOUNT = "no_account"
    REFUSED = "refused"
    FAILED = "failed"
    CANCELLED = "cancelled"  # the case was cancelled (number restored)


OPEN_TASKS = frozenset({TaskStatus.PENDING, TaskStatus.HELD, TaskStatus.NOTIFIED})
TERMINAL_TASKS = frozenset(set(TaskStatus) - OPEN_TASKS)


class ClearanceStatus(StrEnum):
    CLEAR = "clear"
    PENDING = "pending"
    BLOCKED = "blocked"
    UNKNOWN = "unknown"


# ---------------------------------------------------------------- transitions

TRANSITIONS: dict[tuple[TenureStatus, NumberEvent], TenureStatus] = {
    (TenureStatus.ACTIVE, NumberEvent.SUSPENDED): TenureStatus.SUSPENDED,
    (TenureStatus.SUSPENDED, NumberEvent.SUSPENDED): TenureStatus.SUSPENDED,
    (TenureStatus.ACTIVE, NumberEvent.DISCONNECTED): TenureStatus.DISCONNECTED,
    (TenureStatus.SUSPENDED, NumberEvent.DISCONNECTED): TenureStatus.DISCONNECTED,
    (TenureStatus.SUSPENDED, NumberEvent.RESTORED): TenureStatus.ACTIVE,
    (TenureStatus.DISCONNECTED, NumberEvent.RESTORED): TenureStatus.ACTIVE,
    (TenureStatus.DISCONNECTED, NumberEvent.REASSIGNED): TenureStatus.CLOSED,
    (TenureStatus.ACTIVE, NumberEvent.PORTED_OUT): TenureStatus.ACTIVE,
    (TenureStatus.SUSPENDED, NumberEvent.PORTED_OUT): TenureStatus.SUSPENDED,
}


def transition(current: TenureStatus, event: NumberEvent) -> TenureStatus:
    """The tenure's next status, or InvalidState (409) for an impossible transition."""
    try:
        return TRANSITIONS[(current, event)]
    except KeyError:
        raise InvalidState(f"{event.value} is impossible while the number is {current.value}") from None


# ---------------------------------------------------------------- jurisdictions and timing


@dataclass(frozen=True)
class Jurisdiction:
    code: str
    min_aging_days: int  # no reassignment before disconnection + this
    max_aging_days: dict[str, int] = field(default_factory=dict)  # by line class; empty: no maximum
    non_payment_grace_days: int = 30  # holder may restore the number before platforms are told
    platform_lead_days: int = 30  # platforms always get at least this long before reassignment
    high_risk_hold_days: int = 180


JURISDICTIONS = {
    # China: 《电信服务规范》 freeze of at least 90 days; high-risk numbers may be held longer
    "CN": Jurisdiction("CN", 90, {}, non_payment_grace_days=30, platform_lead_days=30, high_risk_hold_days=180),
    # United States: 47 CFR 52.15(f)(1)(ii): at least 45 days, at most 90 (residential) / 365 (business)
    "US": Jurisdiction("US", 45, {"residential": 90, "business": 365}, non_payment_grace_days=10,
                       platform_lead_days=21, high_risk_hold_days=90),
}
# numbers of other countries: the strictest minimum we know, and no maximum
FALLBACK = Jurisdiction("*", 90)


def jurisdiction(code: str) -> Jurisdiction:
    return JURISDICTIONS.get(code.upper(), FALLBACK)


@dataclass(frozen=True)
class ReleaseTiming:
    disconnected_at: dt.datetime
    earliest_clear_at: dt.datetime  # never clear before: max(minimum aging, carrier's planned date)
    notify_at: dt.datetime  # when platform notices go out
    blocked_until: dt.datetime | None  # high-risk hold


def release_timing(code: str, reason: Reason, line_class: LineClass, disconnected_at: dt.datetime,
                   aging_ends_at: dt.datetime | None) -> ReleaseTiming:
    """When a disconnected number may be reissued, and when platforms are told.

    Notices go out at once, except for non-payment, where they wait for a grace period inside the
    freeze (the holder may still pay and restore the number) but always leave platforms at least
    ``platform_lead_days`` before the earliest reassignment.
    """
    rules = jurisdiction(code)
    minimum = disconnected_at + dt.timedelta(days=rules.min_aging_days)
    earliest = max(minimum, aging_ends_at) if aging_ends_at else minimum
    if reason is Reason.NON_PAYMENT:
        graced = disconnected_at + dt.timedelta(days=rules.non_payment_grace_days)
        latest_fair = earliest - dt.timedelta(days=rules.platform_lead_days)
        notify_at = max(disconnected_at, min(graced, latest_fair))
    else:
        notify_at = disconnected_at
    blocked_until = None
    if reason is Reason.FRAUD:
        blocked_until = disconnected_at + dt.timedelta(days=rules.high_risk_hold_days)
        ceiling = rules.max_aging_days.get(line_class.value)
        if ceiling:  # a hold must not push the carrier past its legal maximum aging
            blocked_until = min(blocked_until, disconnected_at + dt.timedelta(days=ceiling))
        blocked_until = max(blocked_until, earliest)
    return ReleaseTiming(disconnected_at, earliest, notify_at, blocked_until)


def requested_action(disposition: str) -> str:
    """What a platform is asked to do for a binding: the owner's disposition, in notice terms."""
    return {
        Disposition.UNBIND: "unbind", Disposition.HANDOVER: "handover", Disposition.MEMORIALIZE: "memorialize",
        Disposition.DELETE: "delete", Disposition.NOTIFY: "none",
    }[Disposition(disposition)]


# ---------------------------------------------------------------- parsing carrier input


def parse_time(value: object, field_name: str) -> dt.datetime:
    """RFC 3339 (or a bare date, taken as midnight UTC); always returned aware, in UTC."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(f"{field_name} is required (RFC 3339)", field=field_name)
    text = value.strip()
    try:
        if len(text) == 10:
            moment = dt.datetime.fromisoformat(text).replace(tzinfo=dt.timezone.utc)
        else:
            moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequest(f"{field_name} is not an RFC 3339 time: {text[:40]!r}", field=field_name) from None
    if moment.tzinfo is None:
        raise InvalidRequest(f"{field_name} needs a time zone (e.g. Z)", field=field_name)
    return moment.astimezone(dt.timezone.utc)


def parse_enum(kind: type[StrEnum], value: object, field_name: str, default: StrEnum | None = None):
    if value in (None, "") and default is not None:
        return default
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(v.value for v in kind)
        raise InvalidRequest(f"{field_name} must be one of {allowed}", field=field_name) from None


# ---------------------------------------------------------------- clearance


class CaseView(NamedTuple):
    # value objects built for every number a clearance batch reads: a named tuple is made in a third
    # of the time a frozen dataclass takes
    id: str
    status: CaseStatus
    earliest_clear_at: dt.datetime
    blocked_until: dt.datetime | None


class TaskView(NamedTuple):
    status: TaskStatus
    action: str


class Clearance(NamedTuple):
    status: ClearanceStatus
    case_id: str | None
    earliest_clear_at: dt.datetime | None
    blocked_until: dt.datetime | None
    tasks: dict[str, int]
    handover: dict[str, bool]


TASK_COUNT_KEYS = ("total", "pending", "unbound", "handed_over", "memorialized", "deleted", "no_account",
                   "refused", "failed")
# what each task status counts as; a cancelled task does not count
_COUNTED_AS = {status: "pending" if status in OPEN_TASKS else status.value
               for status in TaskStatus if status is not TaskStatus.CANCELLED}


def count_tasks(tasks: list[TaskView]) -> dict[str, int]:
    counts = dict.fromkeys(TASK_COUNT_KEYS, 0)
    for task in tasks:
        key = _COUNTED_AS.get(task.status)
        if key is not None:
            counts["total"] += 1
            counts[key] += 1
    return counts


def clearance(*, known: bool, case: CaseView | None, tasks: list[TaskView], hold_until: dt.datetime | None,
              now: dt.datetime) -> Clearance:
    """May the carrier reissue the number now?

    ``unknown``: never registered here. ``blocked``: a high-risk or legal hold until ``blocked_until``.
    ``clear``: the minimum aging has passed and every task of the release case is terminal.
    ``pending`` otherwise, including a number in service (no open case).
    """
    counts = count_tasks(tasks)
    handovers = [t for t in tasks if t.action == "handover" and t.status is not TaskStatus.CANCELLED]
    handover = {"required": bool(handovers),
                "completed": bool(handovers) and all(t.status is TaskStatus.HANDED_OVER for t in handovers)}
    if not known:
        return Clearance(ClearanceStatus.UNKNOWN, None, None, None, counts, handover)
    holds = [h for h in (hold_until, case.blocked_until if case else None) if h and h > now]
    blocked_until = max(holds) if holds else None
    case_id = case.id if case else None
    earliest = case.earliest_clear_at if case else None
    if blocked_until:
        return Clearance(ClearanceStatus.BLOCKED, case_id, earliest, blocked_until, counts, handover)
    if case is None or case.status is CaseStatus.CANCELLED:
        return Clearance(ClearanceStatus.PENDING, None, None, None, counts, handover)
    done = all(t.status in TERMINAL_TASKS for t in tasks)
    status = ClearanceStatus.CLEAR if done and now >= case.earliest_clear_at else ClearanceStatus.PENDING
    return Clearance(status, case_id, earliest, None, counts, handover)
