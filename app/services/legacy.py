"""Legacy cases: claims, evidence, the veto window, review, and the release to heirs.

The state machine is :mod:`app.domain.legacy`; every change here checks the caller against the case
(an heir of that owner, the owner, a reviewer who is not a party) and moves the status with a
compare-and-set, so that a timer and a person acting at the same moment cannot both win.
Nothing an heir may receive (account hints, instructions) leaves this module before approval.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import os
import uuid
from typing import Awaitable, Callable

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from app import audit
from app.clock import now
from app.crypto.envelope import WrappedKey, seal, unseal
from app.crypto.secrets import keyed_hash
from app.domain import evidence as evidence_rules
from app.domain import legacy as rules
from app.domain.legacy import CaseEvent, CaseStatus, HeirStatus
from app.domain.numbers import mask, normalize
from app.domain.release import CaseStatus as ReleaseStatus, TaskStatus
from app.errors import AccessDenied, Conflict, InvalidRequest, InvalidState, NotFound
from app.notify import notifier
from app.notify.letters import compose, link
from app.services import accounts, heirs as heir_service, notices
from app.services.accounts import Principal
from app.settings import get_settings
from app.storage.engine import where_in, write_transaction
from app.storage.tables import (
    Account, Binding, Evidence, HandoverGrant, HandoverItem, Heir, LegacyCase, Owner, ReleaseTask,
    VetoLink,
)

log = logging.getLogger("heirline.legacy")
MAX_EVIDENCE_PER_CASE = 10
NOT_AN_HEIR = "only an heir or executor whom the owner confirmed can open a claim about this number"


def _uuid(value: object, what: str = "case") -> uuid.UUID:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError:
        raise NotFound(f"no such {what}") from None


async def _cas(case_id: uuid.UUID, current: CaseStatus | str, event: CaseEvent, **changes) -> CaseStatus:
    """Move the case from ``current`` by ``event``; InvalidState when someone else moved it first."""
    target = rules.transition(current, event)
    values = {LegacyCase.status: target.value, **{getattr(LegacyCase, k): v for k, v in changes.items()}}
    if target not in rules.LIVE:
        values[LegacyCase.closed_at] = now()
    moved = await LegacyCase.update(values).where(
        (LegacyCase.id == case_id) & (LegacyCase.status == CaseStatus(current).value)).returning(LegacyCase.id)
    if not moved:
        raise InvalidState("this case changed meanwhile; reload it")
    return target


# ---------------------------------------------------------------- opening


async def legacy_rules_status(owner_ids: list[uuid.UUID]) -> dict[uuid.UUID, CaseStatus]:
    """Each owner's most relevant legacy case status: a live one, else a completed one."""
    if not owner_ids:
        return {}
    out: dict[uuid.UUID, CaseStatus] = {}
    relevant = ", ".join(f"'{s.value}'" for s in sorted(rules.LIVE | {CaseStatus.COMPLETED}))  # enum values, not input
    for row in await where_in(f"SELECT owner, status FROM legacy_case WHERE status IN ({relevant}) AND owner IN ({{}})",
                              owner_ids):
        status = CaseStatus(row["status"])
        if row["owner"] not in out or status in rules.LIVE:
            out[row["owner"]] = status
    return out


async def open_for_carrier_deaths(pairs: list[tuple[uuid.UUID, uuid.UUID]], moment: dt.datetime
                                  ) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """Inside the carrier batch's transaction: a case per reported death, or the release case linked to
    the owner's live case. Returns the (owner, case) pairs opened."""
    if not pairs:
        return []
    owner_ids = [o for o, _ in pairs]
    days = {r["id"]: r["veto_days"] for r in await Owner.select(Owner.id, Owner.veto_days).where(Owner.id.is_in(owner_ids))}
    live = {r["owner"]: r for r in await LegacyCase.select(LegacyCase.id, LegacyCase.owner, LegacyCase.release_case).where(
        LegacyCase.owner.is_in(owner_ids) & LegacyCase.status.is_in([s.value for s in rules.LIVE]))}
    opened = []
    for owner_id, release_case in pairs:
        if owner_id in live:
            if live[owner_id]["release_case"] is None:
                await LegacyCase.update({LegacyCase.release_case: release_case}).where(
                    LegacyCase.id == live[owner_id]["id"])
            continue
        case_id = uuid.uuid4()
        await LegacyCase.insert(LegacyCase(
            id=case_id, owner=owner_id, release_case=release_case, source="carrier_event",
            status=CaseStatus.CHALLENGE.value, opened_at=moment,
            veto_ends_at=rules.veto_window_end(moment, days.get(owner_id, rules.DEFAULT_VETO_DAYS))))
        live[owner_id] = {"id": case_id, "release_case": release_case}
        opened.append((owner_id, case_id))
    return opened


async def _claimant_heir(account_id: uuid.UUID, phone_number: str | None, heir_id: object | None) -> dict:
    query = Heir.select(Heir.id, Heir.owner, Heir.name, Heir.relationship).where(
        (Heir.account == account_id) & (Heir.status == HeirStatus.CONFIRMED.value))
    if heir_id is not None:
        query = query.where(Heir.id == _uuid(heir_id, "heir"))
    elif phone_number:
        owner = await accounts.owner_of(normalize(phone_number, get_settings().default_region))
        if owner is None:
            raise AccessDenied(NOT_AN_HEIR)  # the same answer as for a number whose owner did not name you
        query = query.where(Heir.owner == owner["id"])
    else:
        raise InvalidRequest("name the owner: phone_number (or heir_id from your designations)", field="phone_number")
    heir = await query.first()
    if heir is None:
        raise AccessDenied(NOT_AN_HEIR)
    return heir


async def open_claim(account_id: uuid.UUID, *, phone_number: str | None = None, heir_id: object | None = None,
                     note: str = "") -> dict:
    """An heir or executor reports the owner's death: the veto window starts and the owner is alerted."""
    if not isinstance(note, str) or len(note) > rules.MAX_CLAIM_NOTE:
        raise InvalidRequest(f"the note is at most {rules.MAX_CLAIM_NOTE} characters", field="note")
    heir = await _claimant_heir(account_id, phone_number, heir_id)
    moment = now()
    async with write_transaction():
        live = await LegacyCase.select(LegacyCase.id, LegacyCase.status, LegacyCase.claimant).where(
            (LegacyCase.owner == heir["owner"]) & LegacyCase.status.is_in([s.value for s in rules.LIVE])).first()
        if live is not None:
            if live["claimant"] is not None or CaseStatus(live["status"]) not in rules.UNDECIDED:
                raise Conflict(f"a case about this owner is already open ({live['id']}); follow it on your page")
            case_id = live["id"]  # opened by the carrier: the heir's claim joins it
            await LegacyCase.update({LegacyCase.claimant: account_id, LegacyCase.claim_note: note.strip()}).where(
                LegacyCase.id == case_id)
        else:
            days = (await Owner.select(Owner.veto_days).where(Owner.id == heir["owner"]).first())["veto_days"]
            case_id = uuid.uuid4()
            await LegacyCase.insert(LegacyCase(
                id=case_id, owner=heir["owner"], source="claim", status=CaseStatus.CHALLENGE.value, opened_at=moment,
                claimant=account_id, claim_note=note.strip(), veto_ends_at=rules.veto_window_end(moment, days)))
        await audit.record("legacy:claim", actor=f"account:{account_id}", subject=f"legacy:{case_id}",
                           owner_id=heir["owner"], detail={"heir": str(heir["id"]), "joined": live is not None})
    from app.services import legacy_alerts

    await legacy_alerts.send_due(case_id)
    return await claim_view(Principal(None, uuid.uuid4(), account_id=account_id), case_id)


# ---------------------------------------------------------------- reading a case


_CASE_COLUMNS = (LegacyCase.id, LegacyCase.owner, LegacyCase.status, LegacyCase.source, LegacyCase.opened_at,
                 LegacyCase.veto_ends_at, LegacyCase.claimant, LegacyCase.decided_at, LegacyCase.decision_reason,
                 LegacyCase.access_until, LegacyCase.closed_at, LegacyCase.claim_note, LegacyCase.release_case,
                 LegacyCase.owner.tenure.number.e164.as_alias("e164"))


async def _case(case_id: object) -> dict:
    row = await LegacyCase.select(*_CASE_COLUMNS).where(LegacyCase.id == _uuid(case_id)).first()
    if row is None:
        raise NotFound("no such case")
    return row


async def _is_heir_of(account_id: uuid.UUID, owner_id: uuid.UUID, statuses=(HeirStatus.CONFIRMED,)) -> bool:
    return await Heir.exists().where((Heir.account == account_id) & (Heir.owner == owner_id)
                                     & Heir.status.is_in([s.value for s in statuses]))


async def _evidence_list(case_id: uuid.UUID) -> list[dict]:
    return await Evidence.select(Evidence.id, Evidence.kind, Evidence.media_type, Evidence.size, Evidence.sha256,
                                 Evidence.created_at).where(Evidence.case == case_id).order_by(Evidence.created_at)


async def claim_view(principal: Principal, case_id: object) -> dict:
    """The case as its claimant, a confirmed heir of that owner, or the owner sees it; 404 for anyone else."""
    case = await _case(case_id)
    if principal.is_owner:
        allowed = case["owner"] == principal.owner_id
    elif principal.account_id is not None:
        allowed = case["claimant"] == principal.account_id or await _is_heir_of(principal.account_id, case["owner"])
    else:
        allowed = False
    if not allowed:
        raise NotFound("no such case")
    return _public_case(case, await _evidence_list(case["id"]))


def _public_case(case: dict, evidence: list[dict]) -> dict:
    return {"id": case["id"], "status": case["status"], "source": case["source"], "owner_number": mask(case["e164"]),
            "opened_at": case["opened_at"], "veto_ends_at": case["veto_ends_at"], "decided_at": case["decided_at"],
            "decision_reason": case["decision_reason"] or None, "access_until": case["access_until"],
            "closed_at": case["closed_at"], "evidence": evidence}


async def owner_cases(owner_id: uuid.UUID) -> list[dict]:
    rows = await LegacyCase.select(*_CASE_COLUMNS).where(LegacyCase.owner == owner_id).order_by(
        LegacyCase.opened_at, ascending=False)
    return [_public_case(r, await _evidence_list(r["id"])) for r in rows]


# ---------------------------------------------------------------- evidence


async def add_evidence(account_id: uuid.UUID, case_id: object, kind: object, data: bytes) -> dict:
    """Check, clean and store a document encrypted under its own key; only the claimant may add one."""
    case = await _case(case_id)
    if case["claimant"] != account_id:
        raise NotFound("no such case")
    if CaseStatus(case["status"]) not in rules.UNDECIDED:
        raise InvalidState("this case has been decided; evidence can no longer be added")
    kind = evidence_rules.kind(kind)
    cleaned = await asyncio.to_thread(evidence_rules.clean, data)  # decoding images is CPU work
    evidence_id = uuid.uuid4()
    file_key = AESGCM.generate_key(bit_length=256)
    sealed = seal(get_settings().keyring, f"evidence:{evidence_id}", file_key)
    nonce = os.urandom(12)
    content = nonce + AESGCM(file_key).encrypt(nonce, cleaned.content, f"heirline:evidence:{evidence_id}".encode())
    digest = hashlib.sha256(cleaned.content).hexdigest()
    async with write_transaction():
        if await Evidence.count().where(Evidence.case == case["id"]) >= MAX_EVIDENCE_PER_CASE:
            raise InvalidState(f"a case holds at most {MAX_EVIDENCE_PER_CASE} documents")
        await Evidence.insert(Evidence(
            id=evidence_id, case=case["id"], uploaded_by=account_id, kind=kind, media_type=cleaned.media_type,
            size=len(cleaned.content), sha256=digest, file_key=sealed.blob, kek_id=sealed.kek_id, content_ct=content))
        await audit.record("legacy:evidence", actor=f"account:{account_id}", subject=f"legacy:{case['id']}",
                           owner_id=case["owner"], detail={"evidence": str(evidence_id), "kind": kind,
                                                           "type": cleaned.media_type, "sha256": digest})
    return (await Evidence.select(Evidence.id, Evidence.kind, Evidence.media_type, Evidence.size, Evidence.sha256,
                                  Evidence.created_at).where(Evidence.id == evidence_id).first())


# ---------------------------------------------------------------- the owner's veto


async def veto_by_owner(owner_id: uuid.UUID, case_id: object) -> dict:
    case = await _case(case_id)
    if case["owner"] != owner_id:
        raise NotFound("no such case")
    await _veto(case, actor=f"owner:{owner_id}", how="session")
    return await claim_view(Principal(owner_id, uuid.uuid4()), case["id"])


def _split_link(value: str) -> tuple[uuid.UUID, str]:
    link_id, _, secret = (value or "").partition(".")
    try:
        return uuid.UUID(link_id), secret
    except ValueError:
        raise NotFound("this link is not valid") from None


def veto_link_secret(link_id: uuid.UUID, secret: str) -> str:
    return keyed_hash(get_settings().secret_key, "veto", str(link_id), secret)


async def veto_link(value: str) -> dict:
    """What the "I am alive" page shows before the click: the case and whether the link still works."""
    link_id, secret = _split_link(value)
    row = await VetoLink.select().where(VetoLink.id == link_id).first()
    if row is None or row["secret_hash"] != veto_link_secret(link_id, secret):
        raise NotFound("this link is not valid")
    case = await _case(row["case"])
    usable = row["used_at"] is None and row["expires_at"] > now() and CaseStatus(case["status"]) in rules.UNDECIDED
    return {"case": _public_case(case, []), "usable": usable}


async def veto_by_link(value: str) -> dict:
    """One click from an alert: single use, expiring with the window, bound to one case."""
    link_id, secret = _split_link(value)
    row = await VetoLink.select().where(VetoLink.id == link_id).first()
    if row is None or row["secret_hash"] != veto_link_secret(link_id, secret):
        raise NotFound("this link is not valid")
    if row["used_at"] is not None or row["expires_at"] <= now():
        raise InvalidState("this link was used or has expired; log in to cancel the claim")
    case = await _case(row["case"])
    await _veto(case, actor=f"owner:{case['owner']}", how="link", link_id=link_id)
    return _public_case(await _case(case["id"]), [])


async def _veto(case: dict, *, actor: str, how: str, link_id: uuid.UUID | None = None) -> None:
    async with write_transaction():
        if link_id is not None:
            used = await VetoLink.update({VetoLink.used_at: now()}).where(
                (VetoLink.id == link_id) & VetoLink.used_at.is_null()).returning(VetoLink.id)
            if not used:
                raise InvalidState("this link was used already")
        await _cas(case["id"], case["status"], CaseEvent.VETO)
        await VetoLink.update({VetoLink.used_at: now()}).where(
            (VetoLink.case == case["id"]) & VetoLink.used_at.is_null())
        await _settle_held(case["owner"], approve=False)
        await audit.record("legacy:veto", actor=actor, subject=f"legacy:{case['id']}", owner_id=case["owner"],
                           detail={"how": how})
        await _tell_claimant(case, "claim_vetoed")


async def _tell_claimant(case: dict, letter: str, **values: object) -> None:
    """The claimant's letter, kept in the caller's transaction (it commits with the decision it tells of)."""
    if case["claimant"] is None:
        return
    account = await Account.select(Account.email, Account.locale).where(Account.id == case["claimant"]).first()
    await notifier().keep([compose(letter, account["locale"], account["email"], number=mask(case["e164"]),
                                   **values)])


async def set_veto_days(owner_id: uuid.UUID, days: object) -> dict:
    value = rules.veto_days(days)
    async with write_transaction():
        await Owner.update({Owner.veto_days: value}).where(Owner.id == owner_id)
        await audit.record("legacy:veto_window", actor=f"owner:{owner_id}", owner_id=owner_id, detail={"days": value})
    return await legacy_settings(owner_id)


async def legacy_settings(owner_id: uuid.UUID) -> dict:
    row = await Owner.select(Owner.veto_days).where(Owner.id == owner_id).first()
    return {"veto_window_days": row["veto_days"], "presets": list(rules.VETO_PRESETS)}


# ---------------------------------------------------------------- review


async def _not_a_party(reviewer: Principal, case: dict) -> None:
    """A reviewer never decides a case they are part of: their own claim, or an owner who named them."""
    if not reviewer.is_reviewer:
        raise AccessDenied("this needs a reviewer's account")
    if case["claimant"] == reviewer.account_id or await _is_heir_of(
            reviewer.account_id, case["owner"], statuses=tuple(HeirStatus)):
        raise AccessDenied("you are a party to this case: another reviewer must decide it")


async def review_queue(reviewer: Principal) -> list[dict]:
    rows = await LegacyCase.select(*_CASE_COLUMNS).where(
        LegacyCase.status.is_in([s.value for s in rules.UNDECIDED])).order_by(LegacyCase.veto_ends_at)
    out = []
    for row in rows:
        item = _public_case(row, await _evidence_list(row["id"]))
        item["party"] = row["claimant"] == reviewer.account_id or await _is_heir_of(
            reviewer.account_id, row["owner"], statuses=tuple(HeirStatus))
        out.append(item)
    return out


async def review_case(reviewer: Principal, case_id: object) -> dict:
    case = await _case(case_id)
    if not reviewer.is_reviewer:
        raise AccessDenied("this needs a reviewer's account")
    out = _public_case(case, await _evidence_list(case["id"]))
    out["claim_note"] = case["claim_note"] or None
    claimant = None
    if case["claimant"] is not None:
        heir = await Heir.select(Heir.name, Heir.relationship, Heir.is_executor, Heir.account.email.as_alias("email")).where(
            (Heir.account == case["claimant"]) & (Heir.owner == case["owner"])).first()
        claimant = heir
    out["claimant"] = claimant
    plan = await Binding.select(Binding.disposition).where(Binding.owner == case["owner"])
    out["plan"] = {d: sum(1 for b in plan if b["disposition"] == d) for d in sorted({b["disposition"] for b in plan})}
    return out


async def evidence_file(reviewer: Principal, case_id: object, evidence_id: object) -> tuple[str, bytes, str]:
    """(media type, bytes, download name) for a reviewer; every view is logged."""
    case = await _case(case_id)
    await _not_a_party(reviewer, case)
    row = await Evidence.select().where((Evidence.id == _uuid(evidence_id, "document"))
                                        & (Evidence.case == case["id"])).first()
    if row is None:
        raise NotFound("no such document")
    if row["kek_id"] == "destroyed":
        raise NotFound("this document was destroyed under the retention schedule; its hash remains")
    key = unseal(get_settings().keyring, f"evidence:{row['id']}", WrappedKey(row["kek_id"], bytes(row["file_key"])))
    blob = bytes(row["content_ct"])
    content = AESGCM(key).decrypt(blob[:12], blob[12:], f"heirline:evidence:{row['id']}".encode())
    async with write_transaction():
        await audit.record("evidence:view", actor=f"account:{reviewer.account_id}", subject=f"legacy:{case['id']}",
                           owner_id=case["owner"], detail={"evidence": str(row["id"])})
    name = f"evidence-{str(row['id'])[:8]}.{evidence_rules.EXTENSIONS[row['media_type']]}"
    return row["media_type"], content, name


async def decide(reviewer: Principal, case_id: object, decision: str, reason: object,
                 evidence_verified: bool = False) -> dict:
    case = await _case(case_id)
    await _not_a_party(reviewer, case)
    if decision not in ("approve", "reject"):
        raise InvalidRequest("decision is approve or reject", field="decision")
    text = rules.check_reason(reason, required=decision == "reject")
    moment = now()
    heirs_to_tell: list[dict] = []
    async with write_transaction():
        if decision == "reject":
            await _cas(case["id"], case["status"], CaseEvent.REJECT, decided_by=reviewer.account_id, decided_at=moment,
                       decision_reason=text)
            await _settle_held(case["owner"], approve=False)
        else:
            rules.transition(case["status"], CaseEvent.APPROVE)  # 409 before anything else when too early
            rules.check_approval(await Evidence.count().where(Evidence.case == case["id"]), evidence_verified)
            until = moment + dt.timedelta(days=rules.ACCESS_DAYS)
            await _cas(case["id"], case["status"], CaseEvent.APPROVE, decided_by=reviewer.account_id,
                       decided_at=moment, decision_reason=text, access_until=until)
            heirs_to_tell = await _grant(case, until)
            await _settle_held(case["owner"], approve=True)
        await audit.record(f"legacy:{decision}", actor=f"account:{reviewer.account_id}", subject=f"legacy:{case['id']}",
                           owner_id=case["owner"], detail={"reason": text[:200], "grants": len(heirs_to_tell)})
        if decision == "reject":
            await _tell_claimant(case, "claim_rejected", reason=text)
        else:
            until_text = (moment + dt.timedelta(days=rules.ACCESS_DAYS)).strftime("%Y-%m-%d %H:%M")
            await notifier().keep([compose("handover_ready", h["locale"], h["email"], number=mask(case["e164"]),
                                           until=until_text, link=link("/heir")) for h in heirs_to_tell])
    return await review_case(reviewer, case["id"])


async def _plan(owner_id: uuid.UUID) -> tuple[list[dict], list[dict], dict]:
    bindings = await Binding.select(Binding.id, Binding.heir, Binding.disposition).where(Binding.owner == owner_id)
    heirs = await Heir.select(Heir.id, Heir.status, Heir.rank, Heir.account, Heir.is_executor).where(
        Heir.owner == owner_id)
    return bindings, heirs, rules.effective_heirs(bindings, heirs)


async def _grant(case: dict, until: dt.datetime) -> list[dict]:
    """Each heir receives exactly the bindings left to them (after fallback); the executor too."""
    _, heirs, receives = await _plan(case["owner"])
    by_heir: dict[uuid.UUID, list[uuid.UUID]] = {}
    for binding_id, heir_id in receives.items():
        by_heir.setdefault(heir_id, []).append(binding_id)
    for heir in heirs:
        if heir["is_executor"] and heir["status"] == HeirStatus.CONFIRMED.value:
            by_heir.setdefault(heir["id"], [])
    account_of = {h["id"]: h["account"] for h in heirs}
    told = []
    for heir_id, binding_ids in by_heir.items():
        grant_id = uuid.uuid4()
        await HandoverGrant.insert(HandoverGrant(id=grant_id, case=case["id"], heir=heir_id,
                                                 account=account_of[heir_id], expires_at=until))
        if binding_ids:
            await HandoverItem.insert(*[HandoverItem(grant=grant_id, binding=b) for b in binding_ids])
        told.append(account_of[heir_id])
    return await Account.select(Account.email, Account.locale).where(Account.id.is_in(told)) if told else []


async def _settle_held(owner_id: uuid.UUID, *, approve: bool) -> None:
    """The tasks that waited for the decision: on approval, asked for as planned (to the heir who
    receives the binding after fallback); otherwise, an unbind like any other cancellation."""
    owner = await Owner.select(Owner.tenure).where(Owner.id == owner_id).first()
    held = await ReleaseTask.select(ReleaseTask.id, ReleaseTask.binding, ReleaseTask.action).where(
        (ReleaseTask.status == TaskStatus.HELD.value) & (ReleaseTask.case.tenure == owner["tenure"])
        & (ReleaseTask.case.status == ReleaseStatus.OPEN.value))
    if not held:
        return
    receives = (await _plan(owner_id))[2] if approve else {}
    moment = now()
    for task in held:
        heir = receives.get(task["binding"])
        action = task["action"] if approve and (task["action"] != "handover" or heir) else "unbind"
        changes = {ReleaseTask.status: TaskStatus.PENDING.value, ReleaseTask.action: action,
                   ReleaseTask.updated_at: moment}
        if approve and heir:
            changes[ReleaseTask.heir] = heir
        await ReleaseTask.update(changes).where(ReleaseTask.id == task["id"])
    await notices.write_for_tasks([t["id"] for t in held])


# ---------------------------------------------------------------- what heirs receive


async def _live_grants(account_id: uuid.UUID, moment: dt.datetime) -> list[dict]:
    return await HandoverGrant.select(
        HandoverGrant.id, HandoverGrant.case, HandoverGrant.expires_at, HandoverGrant.case.owner.as_alias("owner"),
        HandoverGrant.case.owner.tenure.number.e164.as_alias("e164")).where(
        (HandoverGrant.account == account_id) & (HandoverGrant.expires_at > moment)  # done accounts stay visible
        & HandoverGrant.case.status.is_in([CaseStatus.EXECUTING.value, CaseStatus.COMPLETED.value]))


_ITEM_COLUMNS = (HandoverItem.id, HandoverItem.grant, HandoverItem.done_at, HandoverItem.binding,
                 HandoverItem.binding.binding_types, HandoverItem.binding.disposition,
                 HandoverItem.binding.account_hint_ct, HandoverItem.binding.instructions_ct,
                 HandoverItem.binding.platform.slug.as_alias("platform_slug"),
                 HandoverItem.binding.platform.name.as_alias("platform_name"),
                 HandoverItem.binding.platform.name_zh.as_alias("platform_name_zh"))


async def _item_out(row: dict, owner_id: uuid.UUID) -> dict:
    cipher = await accounts.cipher_for(owner_id)
    bid = str(row["binding"])
    return {"id": row["id"], "platform": {"slug": row["platform_slug"], "name": row["platform_name"],
                                          "name_zh": row["platform_name_zh"]},
            "binding_types": row["binding.binding_types"].split(","), "disposition": row["binding.disposition"],
            "account_hint": cipher.decrypt(row["binding.account_hint_ct"], "binding", "account_hint", bid),
            "instructions": cipher.decrypt(row["binding.instructions_ct"], "binding", "instructions", bid),
            "done_at": row["done_at"]}


async def handovers(account_id: uuid.UUID) -> list[dict]:
    """Every live grant of this heir with exactly their accounts and instructions; each view is logged."""
    moment = now()
    out = []
    for grant in await _live_grants(account_id, moment):
        rows = await HandoverItem.select(*_ITEM_COLUMNS).where(HandoverItem.grant == grant["id"])
        out.append({"case_id": grant["case"], "owner_number": mask(grant["e164"]), "access_until": grant["expires_at"],
                    "accounts": [await _item_out(r, grant["owner"]) for r in rows]})
        async with write_transaction():
            await audit.record("handover:view", actor=f"account:{account_id}", subject=f"legacy:{grant['case']}",
                               owner_id=grant["owner"], detail={"items": len(rows)})
    return out


async def _own_item(account_id: uuid.UUID, item_id: object) -> tuple[dict, dict]:
    grants = {g["id"]: g for g in await _live_grants(account_id, now())}
    row = await HandoverItem.select(*_ITEM_COLUMNS).where(HandoverItem.id == _uuid(item_id, "account")).first()
    if row is None or row["grant"] not in grants:
        raise NotFound("no such account")
    return row, grants[row["grant"]]


async def handover_item(account_id: uuid.UUID, item_id: object) -> dict:
    row, grant = await _own_item(account_id, item_id)
    async with write_transaction():
        await audit.record("handover:view", actor=f"account:{account_id}", subject=f"legacy:{grant['case']}",
                           owner_id=grant["owner"], detail={"item": str(row["id"])})
    return await _item_out(row, grant["owner"])


async def mark_done(account_id: uuid.UUID, item_id: object) -> dict:
    """The heir reports one account handled; the case completes when every account of every heir is."""
    row, grant = await _own_item(account_id, item_id)
    async with write_transaction():
        await HandoverItem.update({HandoverItem.done_at: now()}).where(
            (HandoverItem.id == row["id"]) & HandoverItem.done_at.is_null())
        await audit.record("handover:done", actor=f"account:{account_id}", subject=f"legacy:{grant['case']}",
                           owner_id=grant["owner"], detail={"item": str(row["id"])})
        open_items = await HandoverItem.count().where(
            (HandoverItem.grant.case == grant["case"]) & HandoverItem.done_at.is_null())
        status = (await LegacyCase.select(LegacyCase.status).where(LegacyCase.id == grant["case"]).first())["status"]
        if open_items == 0 and status == CaseStatus.EXECUTING.value:
            await _cas(grant["case"], CaseStatus.EXECUTING, CaseEvent.ALL_DONE)
            await audit.record("legacy:complete", actor="system", subject=f"legacy:{grant['case']}",
                               owner_id=grant["owner"], detail={"why": "all accounts handled"})
    fresh = await HandoverItem.select(*_ITEM_COLUMNS).where(HandoverItem.id == row["id"]).first()
    return await _item_out(fresh, grant["owner"])


# ---------------------------------------------------------------- timers (the worker, never a request)


async def run_timers(moment: dt.datetime | None = None) -> dict[str, int]:
    """Alerts, window ends, review timeouts, access ends and lapsed invitations; idempotent."""
    from app.services import legacy_alerts

    moment = moment or now()
    counts = {"invitations_lapsed": await heir_service.expire_invitations(moment), "alerts": 0,
              "to_review": 0, "expired": 0, "completed": 0}
    for case in await LegacyCase.select(LegacyCase.id).where(
            (LegacyCase.status == CaseStatus.CHALLENGE.value)).limit(500):
        counts["alerts"] += await legacy_alerts.send_due(case["id"], moment)
    for case in await LegacyCase.select(*_CASE_COLUMNS).where(
            (LegacyCase.status == CaseStatus.CHALLENGE.value) & (LegacyCase.veto_ends_at <= moment)).limit(500):
        counts["to_review"] += await _timer_move(case, CaseEvent.WINDOW_END, "legacy:window_end",
                                                 then=_tell_reviewers)
    review_deadline = moment - dt.timedelta(days=rules.REVIEW_DAYS)
    for case in await LegacyCase.select(*_CASE_COLUMNS).where(
            (LegacyCase.status == CaseStatus.EVIDENCE_REVIEW.value) & (LegacyCase.veto_ends_at <= review_deadline)
    ).limit(500):
        counts["expired"] += await _timer_move(case, CaseEvent.REVIEW_TIMEOUT, "legacy:expire", settle=True)
    for case in await LegacyCase.select(*_CASE_COLUMNS).where(
            (LegacyCase.status == CaseStatus.EXECUTING.value) & (LegacyCase.access_until <= moment)).limit(500):
        counts["completed"] += await _timer_move(case, CaseEvent.ACCESS_END, "legacy:complete")
    return counts


async def _timer_move(case: dict, event: CaseEvent, action: str, settle: bool = False,
                      then: Callable[[dict], Awaitable[None]] | None = None) -> int:
    """Move a case on the worker's clock; ``then`` (its letters) runs in the same transaction."""
    try:
        async with write_transaction():
            await _cas(case["id"], case["status"], event)
            if settle:
                await _settle_held(case["owner"], approve=False)
            if event is CaseEvent.ACCESS_END:  # the heirs' access ends with the case, whatever the clock says
                await HandoverGrant.update({HandoverGrant.expires_at: now()}).where(HandoverGrant.case == case["id"])
            await audit.record(action, actor="worker", subject=f"legacy:{case['id']}", owner_id=case["owner"])
            if then is not None:
                await then(case)
    except InvalidState:  # a person or another worker moved it first
        return 0
    return 1


async def _tell_reviewers(case: dict) -> None:
    """Every active reviewer is told a claim's veto window has ended and it waits for review."""
    reviewers = await Account.select(Account.email, Account.locale).where(
        Account.is_reviewer.eq(True) & (Account.status == "active"))
    await notifier().keep([compose("claim_review", r["locale"], r["email"], number=mask(case["e164"]),
                                   link=link(f"/review/{case['id']}")) for r in reviewers])
