"""The retention schedule: how long each kind of record is kept, and what happens then.

One table, read by the worker's purge (``app.services.retention``) and published in
``docs/legal/retention.md``; a test checks that the document and this table agree.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    name: str  # the record, as the schedule names it
    days: int  # after the moment the rule counts from
    action: str  # delete | anonymize | keep
    counts_from: str


RULES: tuple[Rule, ...] = (
    Rule("one_time_code", 1, "delete", "expiry"),
    Rule("rate_event", 1, "delete", "the attempt"),
    Rule("idempotency_record", 1, "delete", "the first request"),
    Rule("owner_session", 30, "delete", "expiry or logout"),
    Rule("outbox_message", 30, "delete", "sending"),
    Rule("veto_link", 90, "delete", "expiry"),
    Rule("notice", 365, "delete", "delivery, or the end of retries"),
    Rule("recycling_query", 365, "delete", "the answer"),
    Rule("client_usage", 400, "delete", "the day counted"),
    Rule("harassment_report", 365, "anonymize", "the report (caller number and note removed; the count stays)"),
    Rule("handover_grant", 365, "delete", "the end of the heir's access"),
    Rule("evidence", 365, "anonymize", "the end of the legacy case (the file is destroyed; type, size and hash stay)"),
    Rule("audit_event", 0, "keep", "never removed: the hash chain proves the record; it holds ids and masked numbers"),
    Rule("number_event", 0, "keep", "never removed: carrier events stay deduplicated by webhook-id"),
)

BY_NAME = {rule.name: rule for rule in RULES}
