"""Request and response bodies of the people's API. Strict: unknown fields are refused."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

Phone = Annotated[str, Meta(min_length=1, max_length=32, description="E.164, or national form in the default region")]
Code = Annotated[str, Meta(min_length=1, max_length=12, description="the 6-digit one-time code")]
Password = Annotated[str, Meta(min_length=1, max_length=256)]
Email = Annotated[str, Meta(min_length=3, max_length=254)]
BindingTypes = Annotated[list[Literal["login", "recovery", "2fa", "payment"]], Meta(min_length=1, max_length=4)]
DispositionName = Literal["unbind", "handover", "memorialize", "delete", "notify"]
Hint = Annotated[str, Meta(max_length=200)]
Instructions = Annotated[str, Meta(max_length=4000)]


class Strict(Struct, forbid_unknown_fields=True):
    pass


class CodeRequest(Strict):
    """A code to a number (owners), or with ``email`` instead, a `login` code for an account."""

    purpose: Literal["signup", "login", "new_holder", "step_up"]
    phone_number: Phone | UnsetType = UNSET
    email: Email | UnsetType = UNSET


class Accepted(Struct):
    status: str = "accepted"


class OwnerCreate(Strict):
    phone_number: Phone
    code: Code
    password: Password
    email: Email


class OwnerCreated(Struct):
    owner_id: uuid.UUID
    token: str


class SessionCreate(Strict):
    """Owners log in with number, password and code; heirs, executors and reviewers with e-mail, password
    and code; the new holder of a number with number and a `new_holder` code, ``purpose: "new_holder"``."""

    code: Code
    password: Password | UnsetType = UNSET
    phone_number: Phone | UnsetType = UNSET
    email: Email | UnsetType = UNSET
    purpose: Literal["login", "new_holder"] = "login"


class SessionCreated(Struct):
    token: str


class PlatformOut(Struct):
    id: uuid.UUID
    slug: str
    name: str
    name_zh: str
    region: str
    category: str


class PlatformRef(Struct):
    id: uuid.UUID
    slug: str
    name: str
    name_zh: str


class BindingCreate(Strict):
    platform_id: uuid.UUID
    binding_types: BindingTypes
    disposition: DispositionName
    account_hint: Hint | None = None
    heir_id: uuid.UUID | None = None
    instructions: Instructions | None = None


class BindingPatch(Strict):
    platform_id: uuid.UUID | UnsetType = UNSET
    binding_types: BindingTypes | UnsetType = UNSET
    disposition: DispositionName | UnsetType = UNSET
    account_hint: Hint | None | UnsetType = UNSET
    heir_id: uuid.UUID | None | UnsetType = UNSET
    instructions: Instructions | None | UnsetType = UNSET


class BindingOut(Struct):
    id: uuid.UUID
    platform_id: uuid.UUID
    platform: PlatformRef
    binding_types: list[str]
    account_hint: str | None
    disposition: str
    heir_id: uuid.UUID | None
    instructions: str | None
    created_at: dt.datetime
    updated_at: dt.datetime


class HeirCreate(Strict):
    name: Annotated[str, Meta(min_length=1, max_length=100)]
    email: Email
    relationship: Annotated[str, Meta(max_length=50)] = ""
    phone_number: Phone | None = None
    is_executor: bool = False


class HeirOut(Struct):
    id: uuid.UUID
    name: str
    email: str
    phone_number: str | None
    relationship: str
    is_executor: bool
    rank: int
    status: str
    invite_expires_at: dt.datetime | None = None
    accepted_at: dt.datetime | None = None
    confirmed_at: dt.datetime | None = None
    created_at: dt.datetime | None = None


class ContactCreate(Strict):
    kind: Literal["email", "phone"]
    address: Annotated[str, Meta(min_length=3, max_length=254)]


class ContactOut(Struct):
    id: uuid.UUID
    kind: str
    address: str
    created_at: dt.datetime


class AuditEntry(Struct):
    seq: int
    at: dt.datetime
    action: str
    actor: str
    subject: str


def out(value: object, kind: type):
    return msgspec.convert(value, kind)


class TaskOut(Struct):
    id: uuid.UUID
    action: str
    status: str
    updated_at: dt.datetime
    platform_name: str
    platform_name_zh: str
    heir_name: str | None


class CaseOut(Struct):
    id: uuid.UUID
    status: str
    reason: str
    disconnected_at: dt.datetime
    earliest_clear_at: dt.datetime
    notify_at: dt.datetime
    tasks: list[TaskOut]


class NumberStatusOut(Struct):
    phone_number: str
    status: str
    case: CaseOut | None


# ---------------------------------------------------------------- heirs, claims, review

class InvitationOut(Struct):
    heir_name: str
    email: str
    relationship: str
    is_executor: bool
    owner_number: str
    expires_at: dt.datetime
    has_account: bool


class InvitationAccept(Strict):
    password: Password


class LegacySettings(Strict):
    veto_window_days: Literal[1, 3, 7, 14, 30]


class LegacySettingsOut(Struct):
    veto_window_days: int
    presets: list[int]


class DesignationOut(Struct):
    heir_id: uuid.UUID
    owner_number: str
    relationship: str
    is_executor: bool
    status: str
    case_id: uuid.UUID | None
    case_status: str | None


class ClaimCreate(Strict):
    """Name the owner by number (or by ``heir_id`` from GET /v1/me/designations)."""

    phone_number: Phone | None = None
    heir_id: uuid.UUID | None = None
    note: Annotated[str, Meta(max_length=2000)] = ""


class EvidenceOut(Struct):
    id: uuid.UUID
    kind: str
    media_type: str
    size: int
    sha256: str
    created_at: dt.datetime


class ClaimOut(Struct):
    id: uuid.UUID
    status: str
    source: str
    owner_number: str
    opened_at: dt.datetime
    veto_ends_at: dt.datetime | None
    decided_at: dt.datetime | None
    decision_reason: str | None
    access_until: dt.datetime | None
    closed_at: dt.datetime | None
    evidence: list[EvidenceOut]


class ClaimantOut(Struct):
    name: str
    relationship: str
    is_executor: bool
    email: str


class ReviewCaseOut(ClaimOut):
    claim_note: str | None = None
    claimant: ClaimantOut | None = None
    plan: dict[str, int] = {}
    party: bool = False


class Decision(Strict):
    decision: Literal["approve", "reject"]
    reason: Annotated[str, Meta(max_length=1000)] = ""
    evidence_verified: bool = False


class HandoverAccountOut(Struct):
    id: uuid.UUID
    platform: dict[str, str]
    binding_types: list[str]
    disposition: str
    account_hint: str | None
    instructions: str | None
    done_at: dt.datetime | None


class HandoverOut(Struct):
    case_id: uuid.UUID
    owner_number: str
    access_until: dt.datetime
    accounts: list[HandoverAccountOut]


# ---------------------------------------------------------------- new holders and recycling checks

class PlatformCounts(Struct):
    finished: int
    pending: int


class UnbindRequestOut(Struct):
    id: uuid.UUID
    created_at: dt.datetime
    platforms_asked: int
    platforms_done: int


class NewHolderStatusOut(Struct):
    phone_number: str
    recycled: bool
    holder_since: dt.datetime | None
    earlier_holders: int
    platforms: PlatformCounts
    unbind_request: UnbindRequestOut | None
    harassment_reports: int


class HarassmentCreate(Strict):
    kind: Literal["debt_collection", "marketing", "other"]
    caller_number: Phone | None = None
    note: Annotated[str, Meta(max_length=500)] = ""
    occurred_on: dt.date | None = None


class HarassmentReportOut(Struct):
    id: uuid.UUID
    kind: str
    caller_e164: str | None
    note: str
    occurred_on: dt.date | None
    created_at: dt.datetime


class HarassmentOut(Struct):
    reports_for_this_number: int
    mine: list[HarassmentReportOut]


class RecyclingQueryIn(Strict):
    phone_number: Phone
    since: Annotated[str, Meta(description="YYYY-MM-DD")]


class RecyclingCheck(Strict):
    queries: Annotated[list[RecyclingQueryIn], Meta(min_length=1, max_length=1000)]


class RecyclingAnswer(Struct):
    phone_number: str
    since: dt.date
    result: Literal["yes", "no", "no_data"]


class RecyclingResults(Struct):
    results: list[RecyclingAnswer]


class CamaraCheck(Strict):
    """CAMARA `CreateCheckNumRecycling`."""

    specifiedDate: Annotated[str, Meta(description="YYYY-MM-DD, not in the future")]
    phoneNumber: Annotated[str, Meta(pattern=r"^\+[1-9][0-9]{4,14}$", max_length=16)] | UnsetType = UNSET


class CamaraAnswer(Struct):
    phoneNumberRecycled: bool


class AccountDeletion(Strict):
    password: Password


class StepUp(Strict):
    password: Password
    code: Code
