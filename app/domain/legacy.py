"""Legacy cases, heirs and the veto window: pure rules, no I/O.

A legacy case is opened by an heir's claim or by a carrier's ``subscriber_deceased`` event. Every case
starts in the veto window (``challenge``), during which the owner is alerted and can cancel it with
one click. After the window a reviewer decides; only verified evidence may approve a handover, while
silence may only let unbind and notify actions proceed (they are never held).
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from app.errors import InvalidRequest, InvalidState

VETO_PRESETS = (1, 3, 7, 14, 30)
DEFAULT_VETO_DAYS = 7
INVITATION_DAYS = 14  # an invitation link works this long
REVIEW_DAYS = 60  # a case nobody decided within this long after the window expires
ACCESS_DAYS = 90  # an heir sees what was left to them this long after approval
MAX_CLAIM_NOTE = 2000
MAX_REASON = 1000


class CaseStatus(StrEnum):
    CHALLENGE = "challenge"  # the veto window is open
    EVIDENCE_REVIEW = "evidence_review"  # the window passed; waiting for a reviewer
    EXECUTING = "executing"  # approved: heirs see what was left to them, platforms are asked
    COMPLETED = "completed"
    VETOED = "vetoed"
    REJECTED = "rejected"
    EXPIRED = "expired"


LIVE = frozenset({CaseStatus.CHALLENGE, CaseStatus.EVIDENCE_REVIEW, CaseStatus.EXECUTING})
UNDECIDED = frozenset({CaseStatus.CHALLENGE, CaseStatus.EVIDENCE_REVIEW})


class CaseEvent(StrEnum):
    VETO = "veto"
    WINDOW_END = "window_end"
    APPROVE = "approve"
    REJECT = "reject"
    REVIEW_TIMEOUT = "review_timeout"
    ALL_DONE = "all_done"
    ACCESS_END = "access_end"


TRANSITIONS: dict[tuple[CaseStatus, CaseEvent], CaseStatus] = {
    (CaseStatus.CHALLENGE, CaseEvent.VETO): CaseStatus.VETOED,
    (CaseStatus.EVIDENCE_REVIEW, CaseEvent.VETO): CaseStatus.VETOED,  # a living owner can always stop it
    (CaseStatus.CHALLENGE, CaseEvent.WINDOW_END): CaseStatus.EVIDENCE_REVIEW,
    (CaseStatus.CHALLENGE, CaseEvent.REJECT): CaseStatus.REJECTED,
    (CaseStatus.EVIDENCE_REVIEW, CaseEvent.REJECT): CaseStatus.REJECTED,
    (CaseStatus.EVIDENCE_REVIEW, CaseEvent.APPROVE): CaseStatus.EXECUTING,
    (CaseStatus.EVIDENCE_REVIEW, CaseEvent.REVIEW_TIMEOUT): CaseStatus.EXPIRED,
    (CaseStatus.EXECUTING, CaseEvent.ALL_DONE): CaseStatus.COMPLETED,
    (CaseStatus.EXECUTING, CaseEvent.ACCESS_END): CaseStatus.COMPLETED,
}

MESSAGES = {
    CaseEvent.VETO: "this case can no longer be cancelled",
    CaseEvent.APPROVE: "a case can be approved only after its veto window, while it waits for review",
    CaseEvent.REJECT: "this case has already been decided",
}


def transition(current: CaseStatus | str, event: CaseEvent) -> CaseStatus:
    """The case's next status, or InvalidState (409)."""
    try:
        return TRANSITIONS[(CaseStatus(current), event)]
    except KeyError:
        raise InvalidState(MESSAGES.get(event, f"{event.value} is impossible in {current}")) from None


def veto_days(value: object) -> int:
    if isinstance(value, bool) or value not in VETO_PRESETS:
        raise InvalidRequest(f"the veto window is one of {', '.join(map(str, VETO_PRESETS))} days",
                             field="veto_window_days")
    return int(value)


def veto_window_end(opened_at: dt.datetime, days: int) -> dt.datetime:
    return opened_at + dt.timedelta(days=days)


def alert_times(opened_at: dt.datetime, ends_at: dt.datetime) -> list[dt.datetime]:
    """When the owner is alerted: on opening, midway, and one day before the window ends (once each)."""
    moments = [opened_at, opened_at + (ends_at - opened_at) / 2, ends_at - dt.timedelta(days=1)]
    out: list[dt.datetime] = []
    for moment in moments:
        if moment >= opened_at and all(abs((moment - m).total_seconds()) > 3600 for m in out):
            out.append(moment)
    return sorted(out)


def check_approval(evidence_count: int, evidence_verified: bool) -> None:
    """A handover needs verified evidence: at least one document, attested by the reviewer."""
    if evidence_count == 0:
        raise InvalidState("no evidence was uploaded: a case cannot be approved without it")
    if not evidence_verified:
        raise InvalidState("approving releases accounts to heirs: confirm that you verified the evidence")


def check_reason(value: object, *, required: bool) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if len(text) > MAX_REASON:
        raise InvalidRequest(f"the reason is longer than {MAX_REASON} characters", field="reason")
    if required and not text:
        raise InvalidRequest("give the reason for this decision", field="reason")
    return text


# ---------------------------------------------------------------- which actions wait for a decision

LEGACY_ACTIONS = frozenset({"handover", "memorialize", "delete"})  # need an approved legacy case


def task_plan(action: str, *, deceased: bool, legacy: CaseStatus | None) -> tuple[str, bool]:
    """(action, held) for a release task created at disconnection.

    Unbind and notify never wait. A handover, memorial or deletion acts on a death: it waits (held)
    while a legacy case is open or the carrier reports a death, is asked for once a case is approved,
    and otherwise (the holder simply cancelled the number) becomes an unbind.
    """
    if action not in LEGACY_ACTIONS:
        return action, False
    if legacy in (CaseStatus.EXECUTING, CaseStatus.COMPLETED):
        return action, False
    if deceased or legacy in UNDECIDED:
        return action, True
    return "unbind", False


# ---------------------------------------------------------------- heirs


class HeirStatus(StrEnum):
    INVITED = "invited"
    ACCEPTED = "accepted"
    CONFIRMED = "confirmed"
    LAPSED = "lapsed"  # the invitation ran out unanswered
    REVOKED = "revoked"


def effective_heirs(bindings: list[dict], heirs: list[dict]) -> dict:
    """Binding id -> the heir who receives it: the named heir if confirmed, else the next confirmed heir
    in the owner's order (the fallback list). Bindings that name no heir go to nobody."""
    ranked = sorted((h for h in heirs if h["status"] == HeirStatus.CONFIRMED.value), key=lambda h: (h["rank"], str(h["id"])))
    confirmed = {h["id"] for h in ranked}
    rank_of = {h["id"]: h["rank"] for h in heirs}
    out = {}
    for binding in bindings:
        named = binding["heir"]
        if named is None:
            continue
        if named in confirmed:
            out[binding["id"]] = named
            continue
        after = [h["id"] for h in ranked if h["rank"] > rank_of.get(named, 0)]
        fallback = after[0] if after else (ranked[0]["id"] if ranked else None)
        if fallback is not None:
            out[binding["id"]] = fallback
    return out
