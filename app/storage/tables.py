"""Piccolo tables for the core model (see ../shared/domain.md).

Every binding, heir and plan belongs to an owner, and every owner to one tenure of a number, never
to the bare number. Encrypted columns (``*_ct``) hold envelope-encrypted bytes only.
Audit and legal records use ``RESTRICT``: deleting a person never silently deletes history.
"""

from __future__ import annotations

from piccolo.columns import (
    UUID,
    BigInt,
    Boolean,
    Bytea,
    Date,
    ForeignKey,
    Integer,
    OnDelete,
    Serial,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from app.storage.engine import DB


class Carrier(Table, db=DB):
    """A carrier as a client: its webhook secret is sealed under the key-encryption key."""

    id = UUID(primary_key=True)
    name = Varchar(length=100, unique=True)
    jurisdiction = Varchar(length=2)
    webhook_secret_ct = Bytea()
    webhook_secret_kid = Varchar(length=32)
    previous_secret_ct = Bytea(null=True, default=None)  # still accepted until previous_valid_until
    previous_secret_kid = Varchar(length=32, default="")
    previous_valid_until = Timestamptz(null=True, default=None)
    data_since = Timestamptz(null=True, default=None)  # its reports cover numbers from this day (recycling checks)
    created_at = Timestamptz(default=TimestamptzNow())


class ClientToken(Table, db=DB, tablename="client_token"):
    """A machine client's bearer API token (carrier, platform, caller); only its SHA-256 is kept."""

    id = UUID(primary_key=True)
    kind = Varchar(length=16)
    client_id = UUID(index=True)
    token_hash = Varchar(length=64, unique=True)
    created_at = Timestamptz(default=TimestamptzNow())
    revoked_at = Timestamptz(null=True, default=None)


class PhoneNumber(Table, db=DB, tablename="phone_number"):
    id = UUID(primary_key=True)
    e164 = Varchar(length=16, unique=True)
    region = Varchar(length=2)
    carrier = ForeignKey(Carrier, on_delete=OnDelete.restrict, null=True, default=None)  # carrier of record
    created_at = Timestamptz(default=TimestamptzNow())


class Tenure(Table, db=DB):
    """One holder's time with a number, from activation to reassignment."""

    id = UUID(primary_key=True)
    number = ForeignKey(PhoneNumber, on_delete=OnDelete.restrict)  # indexed by (number, seq)
    seq = Integer()
    status = Varchar(length=16, default="active")
    started_at = Timestamptz(default=TimestamptzNow())
    ended_at = Timestamptz(null=True, default=None)


class Owner(Table, db=DB):
    id = UUID(primary_key=True)
    tenure = ForeignKey(Tenure, on_delete=OnDelete.restrict, unique=True)
    password_hash = Varchar(length=200)
    # the owner's data key, wrapped by a key-encryption key; NULL once shredded
    data_key = Bytea(null=True, default=None)
    kek_id = Varchar(length=32)
    locale = Varchar(length=8, default="zh")
    status = Varchar(length=16, default="active")
    veto_days = Integer(default=7)  # the veto window a death claim against this owner waits for
    created_at = Timestamptz(default=TimestamptzNow())


class Account(Table, db=DB, tablename="person_account"):
    """A person who is not an owner: an heir or executor (after accepting an invitation) or a reviewer."""

    id = UUID(primary_key=True)
    email = Varchar(length=254, unique=True)
    password_hash = Varchar(length=200)
    is_reviewer = Boolean(default=False)
    status = Varchar(length=16, default="active")  # active | disabled
    locale = Varchar(length=8, default="zh")
    created_at = Timestamptz(default=TimestamptzNow())


class ContactChannel(Table, db=DB, tablename="contact_channel"):
    """A way to reach the owner that is not the number itself."""

    id = UUID(primary_key=True)
    owner = ForeignKey(Owner, on_delete=OnDelete.cascade, index=True)
    kind = Varchar(length=8)  # email | phone
    address = Varchar(length=254)
    created_at = Timestamptz(default=TimestamptzNow())


class Platform(Table, db=DB):
    """The catalog of apps owners pick from, and the platforms that receive notices."""

    id = UUID(primary_key=True)
    slug = Varchar(length=64, unique=True)
    name = Varchar(length=100)
    name_zh = Varchar(length=100)
    region = Varchar(length=8)  # CN | INTL
    category = Varchar(length=32)
    # set by the operator as agreed with the platform: ALL receives every disconnection
    default_subjects = Varchar(length=4, default="NONE")
    created_at = Timestamptz(default=TimestamptzNow())


class Heir(Table, db=DB):
    id = UUID(primary_key=True)
    owner = ForeignKey(Owner, on_delete=OnDelete.cascade, index=True)
    name = Varchar(length=100)
    email = Varchar(length=254)
    phone_e164 = Varchar(length=16, null=True, default=None)
    relationship = Varchar(length=50)
    is_executor = Boolean(default=False)
    rank = Integer(default=1)
    status = Varchar(length=16, default="invited")  # invited | accepted | confirmed | lapsed | revoked
    account = ForeignKey(Account, on_delete=OnDelete.restrict, null=True, default=None, index=True)
    invite_hash = Varchar(length=64, null=True, default=None)  # unique index in a raw migration
    invite_expires_at = Timestamptz(null=True, default=None)
    accepted_at = Timestamptz(null=True, default=None)
    confirmed_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())


class Binding(Table, db=DB):
    """One account of the inventory: an app bound to the number, and what to do with it."""

    id = UUID(primary_key=True)
    owner = ForeignKey(Owner, on_delete=OnDelete.cascade, index=True)
    platform = ForeignKey(Platform, on_delete=OnDelete.restrict, index=True)
    binding_types = Varchar(length=64)  # comma-separated, sorted: 2fa,login,payment,recovery
    account_hint_ct = Bytea(null=True, default=None)
    instructions_ct = Bytea(null=True, default=None)
    disposition = Varchar(length=16)
    heir = ForeignKey(Heir, on_delete=OnDelete.restrict, null=True, default=None, index=True)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class NumberEvent(Table, db=DB, tablename="number_event"):
    """Every carrier event, kept for good: ``webhook-id`` is deduplicated per carrier forever."""

    id = UUID(primary_key=True)
    carrier = ForeignKey(Carrier, on_delete=OnDelete.restrict)  # indexed by (carrier, webhook_id)
    webhook_id = Varchar(length=200)
    type = Varchar(length=32)
    e164 = Varchar(length=16)
    received_at = Timestamptz(default=TimestamptzNow())
    answer = Text(default="{}")  # the JSON answered the first time, replayed for duplicates


class ReleaseCase(Table, db=DB, tablename="release_case"):
    """One per permanent disconnection: the tasks that free the number of the closing tenure."""

    id = UUID(primary_key=True)
    number = ForeignKey(PhoneNumber, on_delete=OnDelete.restrict, index=True)
    tenure = ForeignKey(Tenure, on_delete=OnDelete.restrict, index=True)
    carrier = ForeignKey(Carrier, on_delete=OnDelete.restrict, null=True, default=None)
    reason = Varchar(length=24)
    jurisdiction = Varchar(length=2)
    line_class = Varchar(length=16)
    disconnected_at = Timestamptz()
    earliest_clear_at = Timestamptz()
    notify_at = Timestamptz()
    blocked_until = Timestamptz(null=True, default=None)
    status = Varchar(length=16, default="open")
    subscriber_ref = Varchar(length=100, default="")
    carrier_case_id = Varchar(length=100, default="")
    opened_at = Timestamptz(default=TimestamptzNow())
    closed_at = Timestamptz(null=True, default=None)
    notices_at = Timestamptz(null=True, default=None)  # when the platform notices were written


class ReleaseTask(Table, db=DB, tablename="release_task"):
    """One binding of the closing tenure, and what its platform must do about it."""

    id = UUID(primary_key=True)
    case = ForeignKey(ReleaseCase, on_delete=OnDelete.restrict, index=True)
    binding = ForeignKey(Binding, on_delete=OnDelete.set_null, null=True, default=None)
    platform = ForeignKey(Platform, on_delete=OnDelete.restrict, index=True)
    action = Varchar(length=16)  # unbind | handover | memorialize | delete | none
    heir = ForeignKey(Heir, on_delete=OnDelete.set_null, null=True, default=None)
    status = Varchar(length=16, default="pending")
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class NumberHold(Table, db=DB, tablename="number_hold"):
    """A high-risk or legal hold: clearance is `blocked` until ``blocked_until``."""

    id = UUID(primary_key=True)
    number = ForeignKey(PhoneNumber, on_delete=OnDelete.restrict, index=True)
    reason = Varchar(length=200)
    blocked_until = Timestamptz()
    set_by = Varchar(length=100)
    created_at = Timestamptz(default=TimestamptzNow())
    lifted_at = Timestamptz(null=True, default=None)


class LegacyCase(Table, db=DB, tablename="legacy_case"):
    """One per death; opened by a carrier's `subscriber_deceased` event or an executor's claim."""

    id = UUID(primary_key=True)
    owner = ForeignKey(Owner, on_delete=OnDelete.restrict, index=True)
    release_case = ForeignKey(ReleaseCase, on_delete=OnDelete.restrict, null=True, default=None)
    source = Varchar(length=24)  # carrier_event | claim
    status = Varchar(length=24, default="challenge")
    opened_at = Timestamptz(default=TimestamptzNow())
    claimant = ForeignKey(Account, on_delete=OnDelete.restrict, null=True, default=None, index=True)
    claim_note = Text(default="")
    veto_ends_at = Timestamptz(null=True, default=None)
    alerts_sent = Integer(default=0)
    decided_by = ForeignKey(Account, on_delete=OnDelete.restrict, null=True, default=None)
    decided_at = Timestamptz(null=True, default=None)
    decision_reason = Text(default="")
    access_until = Timestamptz(null=True, default=None)
    closed_at = Timestamptz(null=True, default=None)


class Evidence(Table, db=DB):
    """An uploaded document for a legacy case: checked, stripped of metadata, stored encrypted."""

    id = UUID(primary_key=True)
    case = ForeignKey(LegacyCase, on_delete=OnDelete.restrict, index=True)
    uploaded_by = ForeignKey(Account, on_delete=OnDelete.restrict)
    kind = Varchar(length=24)  # death_certificate | court_order | other
    media_type = Varchar(length=32)
    size = Integer()
    sha256 = Varchar(length=64)
    file_key = Bytea()  # the file's own key, sealed under the key-encryption key
    kek_id = Varchar(length=32)
    content_ct = Bytea()
    created_at = Timestamptz(default=TimestamptzNow())


class VetoLink(Table, db=DB, tablename="veto_link"):
    """A one-click "I am alive" link sent with an alert: single use, expiring, only its keyed hash kept."""

    id = UUID(primary_key=True)
    case = ForeignKey(LegacyCase, on_delete=OnDelete.cascade, index=True)
    secret_hash = Varchar(length=64)
    expires_at = Timestamptz()
    used_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())


class HandoverGrant(Table, db=DB, tablename="handover_grant"):
    """What an approved case releases to one heir: their bindings, for a limited time."""

    id = UUID(primary_key=True)
    case = ForeignKey(LegacyCase, on_delete=OnDelete.restrict, index=True)
    heir = ForeignKey(Heir, on_delete=OnDelete.restrict, index=True)
    account = ForeignKey(Account, on_delete=OnDelete.restrict, index=True)
    expires_at = Timestamptz()
    created_at = Timestamptz(default=TimestamptzNow())


class HandoverItem(Table, db=DB, tablename="handover_item"):
    id = UUID(primary_key=True)
    grant = ForeignKey(HandoverGrant, on_delete=OnDelete.cascade, index=True)
    binding = ForeignKey(Binding, on_delete=OnDelete.restrict)
    done_at = Timestamptz(null=True, default=None)


class SigningKey(Table, db=DB, tablename="signing_key"):
    """A key that signs SETs; its private half is sealed under the key-encryption key."""

    id = UUID(primary_key=True)
    kid = Varchar(length=64, unique=True)
    alg = Varchar(length=8)  # RS256 | ES256
    private_ct = Bytea()
    private_kek_id = Varchar(length=32)
    public_jwk = Text()
    created_at = Timestamptz(default=TimestamptzNow())
    retired_at = Timestamptz(null=True, default=None)  # signs nothing new; published while its SETs are out


class Stream(Table, db=DB, tablename="ssf_stream"):
    """A platform's Shared Signals stream: how and where its notices go."""

    id = UUID(primary_key=True)
    stream_id = Varchar(length=64, unique=True)
    platform = ForeignKey(Platform, on_delete=OnDelete.restrict, unique=True, null=True, default=None)  # None: deleted
    events_requested = Text(default="[]")
    delivery_method = Varchar(length=64)  # urn:ietf:rfc:8935 | urn:ietf:rfc:8936 | urn:standard-webhooks:1.0
    endpoint_url = Varchar(length=500, default="")
    authorization_ct = Bytea(null=True, default=None)  # sealed authorization_header for push
    authorization_kid = Varchar(length=32, default="")
    webhook_secret_ct = Bytea(null=True, default=None)  # sealed whsec_ for Standard Webhooks delivery
    webhook_secret_kid = Varchar(length=32, default="")
    signing_alg = Varchar(length=8, default="RS256")
    status = Varchar(length=16, default="enabled")
    status_reason = Varchar(length=200, default="")
    description = Varchar(length=200, default="")
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())
    last_polled_at = Timestamptz(null=True, default=None)  # poll streams: noted at most once a POLL_NOTED


class StreamSubject(Table, db=DB, tablename="ssf_subject"):
    """A number a platform added to its stream itself."""

    id = UUID(primary_key=True)
    stream = ForeignKey(Stream, on_delete=OnDelete.cascade, index=True)
    e164 = Varchar(length=16, index=True)
    created_at = Timestamptz(default=TimestamptzNow())


class Notice(Table, db=DB):
    """The durable outbox: a SET (or Standard Webhooks message) for one stream, written with its task."""

    id = UUID(primary_key=True)  # the SET's jti
    stream = ForeignKey(Stream, on_delete=OnDelete.restrict, index=True)
    case = ForeignKey(ReleaseCase, on_delete=OnDelete.restrict, null=True, default=None, index=True)
    task = ForeignKey(ReleaseTask, on_delete=OnDelete.restrict, null=True, default=None, index=True)
    event = Varchar(length=200)
    claims = Text()  # the SET claims, fixed when written
    token = Text(null=True, default=None)  # the signed form, made once at first delivery
    kid = Varchar(length=64, default="")
    status = Varchar(length=16, default="pending")  # pending | sending | delivered | failed | dead
    attempts = Integer(default=0)
    next_attempt_at = Timestamptz(default=TimestamptzNow())  # indexed with status: notice_due
    lease_until = Timestamptz(null=True, default=None)
    deadline = Timestamptz()
    last_error = Varchar(length=300, default="")
    created_at = Timestamptz(default=TimestamptzNow())
    delivered_at = Timestamptz(null=True, default=None)


class CaseOutcome(Table, db=DB, tablename="case_outcome"):
    """What a platform reported for a case: one per case and platform."""

    id = UUID(primary_key=True)
    case = ForeignKey(ReleaseCase, on_delete=OnDelete.restrict, index=True)
    platform = ForeignKey(Platform, on_delete=OnDelete.restrict)
    result = Varchar(length=16)
    completed_at = Timestamptz()
    detail = Varchar(length=500, default="")
    created_at = Timestamptz(default=TimestamptzNow())


class OwnerSession(Table, db=DB, tablename="owner_session"):
    """A login; only the SHA-256 of its token is stored. Rotated at login, revoked at logout."""

    id = UUID(primary_key=True)
    token_hash = Varchar(length=64, unique=True)
    owner = ForeignKey(Owner, on_delete=OnDelete.cascade, null=True, default=None, index=True)
    account = ForeignKey(Account, on_delete=OnDelete.cascade, null=True, default=None, index=True)
    tenure = ForeignKey(Tenure, on_delete=OnDelete.cascade, null=True, default=None)  # a new holder's session
    stepped_up_at = Timestamptz(null=True, default=None)  # last proof by password and code (login or step-up)
    created_at = Timestamptz(default=TimestamptzNow())
    expires_at = Timestamptz()
    revoked_at = Timestamptz(null=True, default=None)
    client = Varchar(length=64, default="")
    user_agent = Varchar(length=200, default="")


class OneTimeCode(Table, db=DB, tablename="one_time_code"):
    id = UUID(primary_key=True)
    e164 = Varchar(length=254, index=True)  # the number, or the e-mail address of an account
    purpose = Varchar(length=16)
    code_hash = Varchar(length=64)
    created_at = Timestamptz(default=TimestamptzNow())
    expires_at = Timestamptz()
    used_at = Timestamptz(null=True, default=None)
    attempts = Integer(default=0)


class AuditEvent(Table, db=DB, tablename="audit_event"):
    """Append-only and hash-chained: ``hash = sha256(prev_hash || canonical entry)``."""

    id = Serial(primary_key=True)
    seq = BigInt(unique=True)
    at = Timestamptz(default=TimestamptzNow())
    actor = Varchar(length=100)
    action = Varchar(length=64)
    subject = Varchar(length=100, default="")
    owner_id = UUID(null=True, default=None, index=True)  # not a foreign key: outlives the owner
    detail = Text(default="{}")
    prev_hash = Varchar(length=64)
    hash = Varchar(length=64)


class OutboxMessage(Table, db=DB, tablename="outbox_message"):
    """A message to a person, written with the change it tells of. With no transport configured for its
    channel it is ``kept`` here (demo and tests; `heirline outbox`); otherwise it is ``pending`` until the
    worker's sender has it out (``sending`` under a lease, then ``sent`` with its body blanked, or
    ``failed`` after its last attempt). Index ``outbox_message_due`` (status, next_attempt_at)."""

    id = UUID(primary_key=True)
    recipient = Varchar(length=254, index=True)
    channel = Varchar(length=8)
    subject = Varchar(length=200)
    body = Text()
    created_at = Timestamptz(default=TimestamptzNow())
    status = Varchar(length=8, default="kept")
    attempts = Integer(default=0)
    next_attempt_at = Timestamptz(null=True, default=None)  # when pending: the next attempt; sending: the lease's end
    last_error = Varchar(length=200, default="")


class RateEvent(Table, db=DB, tablename="rate_event"):
    """One counted attempt in a rate-limit bucket (shared by every worker through the database)."""

    id = UUID(primary_key=True)
    bucket = Varchar(length=120, index=True)
    at = Timestamptz(default=TimestamptzNow(), index=True)


ALL_TABLES: list[type[Table]] = [
    Carrier,
    ClientToken,
    PhoneNumber,
    Tenure,
    Owner,
    Account,
    ContactChannel,
    Platform,
    Heir,
    Binding,
    NumberEvent,
    ReleaseCase,
    ReleaseTask,
    NumberHold,
    LegacyCase,
    Evidence,
    VetoLink,
    HandoverGrant,
    HandoverItem,
    SigningKey,
    Stream,
    StreamSubject,
    Notice,
    CaseOutcome,
    OwnerSession,
    OneTimeCode,
    AuditEvent,
    OutboxMessage,
    RateEvent,
]


class Caller(Table, db=DB):
    """A debt collector or marketer that checks numbers before calling; a token of kind ``caller``."""

    id = UUID(primary_key=True)
    name = Varchar(length=100, unique=True)
    daily_quota = Integer(default=10000)  # numbers it may check per day
    created_at = Timestamptz(default=TimestamptzNow())


class ClientUsage(Table, db=DB, tablename="client_usage"):
    """Numbers checked per client and day, against its quota."""

    id = UUID(primary_key=True)
    client_kind = Varchar(length=16)
    client_id = UUID()
    day = Date()
    queries = Integer(default=0)


class RecyclingQuery(Table, db=DB, tablename="recycling_query"):
    """Every recycling answer given, per client: who asked what, when (accountability)."""

    id = UUID(primary_key=True)
    client_kind = Varchar(length=16)
    client_id = UUID(index=True)
    api = Varchar(length=16)  # camara | reassigned
    e164 = Varchar(length=16)
    asked_date = Date()
    answer = Varchar(length=32)
    asked_at = Timestamptz(default=TimestamptzNow())


class UnbindRequest(Table, db=DB, tablename="unbind_request"):
    """A new holder asked the platforms that still owe an unbind for earlier tenures to do it."""

    id = UUID(primary_key=True)
    tenure = ForeignKey(Tenure, on_delete=OnDelete.restrict, index=True)
    created_at = Timestamptz(default=TimestamptzNow())


class UnbindRequestTask(Table, db=DB, tablename="unbind_request_task"):
    id = UUID(primary_key=True)
    request = ForeignKey(UnbindRequest, on_delete=OnDelete.cascade, index=True)
    task = ForeignKey(ReleaseTask, on_delete=OnDelete.restrict)


class HarassmentReport(Table, db=DB, tablename="harassment_report"):
    """A call or message meant for a previous holder, reported by the number's new holder."""

    id = UUID(primary_key=True)
    number = ForeignKey(PhoneNumber, on_delete=OnDelete.restrict, index=True)
    tenure = ForeignKey(Tenure, on_delete=OnDelete.restrict)
    kind = Varchar(length=24)  # debt_collection | marketing | other
    caller_e164 = Varchar(length=16, null=True, default=None)
    note = Varchar(length=500, default="")
    occurred_on = Date(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())


ALL_TABLES += [Caller, ClientUsage, RecyclingQuery, UnbindRequest, UnbindRequestTask, HarassmentReport]


class IdempotencyRecord(Table, db=DB, tablename="idempotency_record"):
    """A POST answered once under an ``Idempotency-Key``, replayed for retries for 24 hours."""

    id = UUID(primary_key=True)
    key_hash = Varchar(length=64, unique=True)
    fingerprint = Varchar(length=64)
    status = Integer(null=True, default=None)  # NULL while the first request is in flight
    content_type = Varchar(length=100, default="")
    body = Bytea(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow(), index=True)


ALL_TABLES.append(IdempotencyRecord)
