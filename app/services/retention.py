"""The worker's retention purge: what ``app.domain.retention.RULES`` says, in batches, idempotent."""

from __future__ import annotations

import datetime as dt
import logging

from app import audit
from app.clock import now
from app.domain.legacy import LIVE
from app.domain.retention import BY_NAME
from app.storage.engine import write_transaction
from app.storage.tables import (
    ClientUsage, Evidence, HandoverGrant, HarassmentReport, IdempotencyRecord, Notice, OneTimeCode, OutboxMessage,
    OwnerSession, RateEvent, RecyclingQuery, VetoLink,
)

log = logging.getLogger("heirline.retention")
DESTROYED = "destroyed"  # the kek_id of an evidence file past its retention: type, size and hash stay, bytes go


def _before(name: str, moment: dt.datetime) -> dt.datetime:
    return moment - dt.timedelta(days=BY_NAME[name].days)


async def purge(moment: dt.datetime | None = None) -> dict[str, int]:
    """Delete or anonymize what the schedule says is past its time; returns counts by record."""
    moment = moment or now()
    done: dict[str, int] = {}
    deletions = [
        ("one_time_code", OneTimeCode, OneTimeCode.expires_at < _before("one_time_code", moment)),
        ("rate_event", RateEvent, RateEvent.at < _before("rate_event", moment)),
        ("idempotency_record", IdempotencyRecord, IdempotencyRecord.created_at < _before("idempotency_record", moment)),
        ("owner_session", OwnerSession, (OwnerSession.expires_at < _before("owner_session", moment))
         | (OwnerSession.revoked_at < _before("owner_session", moment))),
        ("outbox_message", OutboxMessage, OutboxMessage.created_at < _before("outbox_message", moment)),
        ("veto_link", VetoLink, VetoLink.expires_at < _before("veto_link", moment)),
        ("notice", Notice, Notice.status.is_in(["delivered", "dead", "failed"])
         & (Notice.created_at < _before("notice", moment))),
        ("recycling_query", RecyclingQuery, RecyclingQuery.asked_at < _before("recycling_query", moment)),
        ("client_usage", ClientUsage, ClientUsage.day < _before("client_usage", moment).date()),
        ("handover_grant", HandoverGrant, HandoverGrant.expires_at < _before("handover_grant", moment)),
    ]
    async with write_transaction():
        for name, table, condition in deletions:
            gone = await table.delete().where(condition).returning(table.id)
            done[name] = len(gone)
        reports = await HarassmentReport.update({HarassmentReport.caller_e164: None, HarassmentReport.note: ""}).where(
            (HarassmentReport.created_at < _before("harassment_report", moment))
            & (HarassmentReport.caller_e164.is_not_null() | (HarassmentReport.note != ""))).returning(HarassmentReport.id)
        done["harassment_report"] = len(reports)
        files = [r["id"] for r in await Evidence.select(Evidence.id, Evidence.size).where(
            (Evidence.case.closed_at < _before("evidence", moment)) & Evidence.case.status.not_in([s.value for s in LIVE])
            & (Evidence.kek_id != DESTROYED))]
        for start in range(0, len(files), 500):
            await Evidence.update({Evidence.content_ct: b"", Evidence.file_key: b"", Evidence.kek_id: DESTROYED}).where(
                Evidence.id.is_in(files[start:start + 500]))
        done["evidence"] = len(files)
        if any(done.values()):
            await audit.record("retention:purge", actor="worker", detail={k: v for k, v in done.items() if v})
    return done
