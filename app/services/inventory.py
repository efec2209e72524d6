"""The owner's inventory (bindings), heirs and contact channels.

Every read and write is scoped to the calling owner: an id that belongs to someone else is
indistinguishable from one that does not exist (404), and nothing is changed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from app import audit
from app.clock import now
from app.crypto.envelope import FieldCipher
from app.domain import inventory as rules
from app.domain.numbers import normalize
from app.errors import Conflict, InvalidRequest, InvalidState, NotFound
from app.services import heirs
from app.services.accounts import check_email, cipher_for
from app.settings import get_settings
from app.storage.engine import write_transaction
from app.storage.tables import AuditEvent, Binding, ContactChannel, Heir, Owner, Platform, ReleaseCase, ReleaseTask

UNSET: Any = object()


def _uuid(value: object, field: str) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except (ValueError, TypeError):
        raise InvalidRequest(f"{field} is not a valid id", field=field) from None


# ---------------------------------------------------------------- platforms (catalog)

async def list_platforms() -> list[dict]:
    return await Platform.select(
        Platform.id, Platform.slug, Platform.name, Platform.name_zh, Platform.region, Platform.category
    ).order_by(Platform.region).order_by(Platform.name)


async def _platform(platform_id: object) -> dict:
    pid = _uuid(platform_id, "platform_id")
    row = await Platform.select(Platform.id, Platform.slug, Platform.name, Platform.name_zh).where(
        Platform.id == pid
    ).first()
    if row is None:
        raise InvalidRequest("unknown platform: pick one from GET /v1/platforms", field="platform_id")
    return row


# ---------------------------------------------------------------- bindings

@dataclass
class BindingInput:
    platform_id: Any = UNSET
    binding_types: Any = UNSET
    account_hint: Any = UNSET
    disposition: Any = UNSET
    heir_id: Any = UNSET
    instructions: Any = UNSET


def _binding_out(row: dict, cipher: FieldCipher) -> dict:
    bid = str(row["id"])
    return {
        "id": row["id"],
        "platform_id": row["platform"],
        "platform": {"id": row["platform"], "slug": row["platform.slug"], "name": row["platform.name"],
                     "name_zh": row["platform.name_zh"]},
        "binding_types": row["binding_types"].split(","),
        "account_hint": cipher.decrypt(row["account_hint_ct"], "binding", "account_hint", bid),
        "disposition": row["disposition"],
        "heir_id": row["heir"],
        "instructions": cipher.decrypt(row["instructions_ct"], "binding", "instructions", bid),
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


_BINDING_COLUMNS = (
    Binding.id, Binding.platform, Binding.platform.slug, Binding.platform.name, Binding.platform.name_zh,
    Binding.binding_types, Binding.account_hint_ct, Binding.disposition, Binding.heir,
    Binding.instructions_ct, Binding.created_at, Binding.updated_at,
)


async def list_bindings(owner_id: uuid.UUID) -> list[dict]:
    cipher = await cipher_for(owner_id)
    rows = await Binding.select(*_BINDING_COLUMNS).where(Binding.owner == owner_id).order_by(Binding.created_at)
    return [_binding_out(r, cipher) for r in rows]


async def get_binding(owner_id: uuid.UUID, binding_id: object) -> dict:
    bid = _uuid(binding_id, "id")
    row = await Binding.select(*_BINDING_COLUMNS).where(
        (Binding.id == bid) & (Binding.owner == owner_id)
    ).first()
    if row is None:
        raise NotFound("no such binding")
    return _binding_out(row, await cipher_for(owner_id))


async def _check_heir(owner_id: uuid.UUID, heir_id: object | None) -> uuid.UUID | None:
    if heir_id is None:
        return None
    hid = _uuid(heir_id, "heir_id")
    if not await Heir.exists().where((Heir.id == hid) & (Heir.owner == owner_id) & (Heir.status != "revoked")):
        raise InvalidRequest("no such heir: add the heir first", field="heir_id")
    return hid


async def add_binding(owner_id: uuid.UUID, data: BindingInput) -> dict:
    if data.platform_id is UNSET or data.binding_types is UNSET or data.disposition is UNSET:
        raise InvalidRequest("platform_id, binding_types and disposition are required")
    platform = await _platform(data.platform_id)
    types = rules.binding_types(data.binding_types)
    disposition = rules.disposition(data.disposition)
    heir_id = None if data.heir_id is UNSET else data.heir_id
    rules.check_heir_for_disposition(disposition, heir_id)
    hint = rules.check_text(None if data.account_hint is UNSET else data.account_hint, rules.MAX_HINT, "account_hint")
    instructions = rules.check_text(
        None if data.instructions is UNSET else data.instructions, rules.MAX_INSTRUCTIONS, "instructions"
    )
    cipher = await cipher_for(owner_id)
    bid = uuid.uuid4()
    async with write_transaction():
        heir = await _check_heir(owner_id, heir_id)
        await Binding.insert(
            Binding(
                id=bid, owner=owner_id, platform=platform["id"], binding_types=",".join(types),
                account_hint_ct=cipher.encrypt(hint, "binding", "account_hint", str(bid)),
                disposition=disposition.value, heir=heir,
                instructions_ct=cipher.encrypt(instructions, "binding", "instructions", str(bid)),
            )
        )
        await audit.record("binding:create", actor=f"owner:{owner_id}", subject=f"binding:{bid}",
                           owner_id=owner_id,
                           detail={"platform": platform["slug"], "disposition": disposition.value})
    return await get_binding(owner_id, bid)


async def edit_binding(owner_id: uuid.UUID, binding_id: object, data: BindingInput) -> dict:
    current = await get_binding(owner_id, binding_id)  # 404 for someone else's id
    bid = current["id"]
    changes: dict = {}
    if data.platform_id is not UNSET:
        changes[Binding.platform] = (await _platform(data.platform_id))["id"]
    if data.binding_types is not UNSET:
        changes[Binding.binding_types] = ",".join(rules.binding_types(data.binding_types))
    disposition = rules.disposition(data.disposition if data.disposition is not UNSET else current["disposition"])
    heir_id = current["heir_id"] if data.heir_id is UNSET else data.heir_id
    rules.check_heir_for_disposition(disposition, heir_id)
    changes[Binding.disposition] = disposition.value
    cipher = await cipher_for(owner_id)
    if data.account_hint is not UNSET:
        hint = rules.check_text(data.account_hint, rules.MAX_HINT, "account_hint")
        changes[Binding.account_hint_ct] = cipher.encrypt(hint, "binding", "account_hint", str(bid))
    if data.instructions is not UNSET:
        text = rules.check_text(data.instructions, rules.MAX_INSTRUCTIONS, "instructions")
        changes[Binding.instructions_ct] = cipher.encrypt(text, "binding", "instructions", str(bid))
    async with write_transaction():
        changes[Binding.heir] = await _check_heir(owner_id, heir_id)
        changes[Binding.updated_at] = now()
        await Binding.update(changes).where((Binding.id == bid) & (Binding.owner == owner_id))
        await audit.record("binding:update", actor=f"owner:{owner_id}", subject=f"binding:{bid}",
                           owner_id=owner_id, detail={"fields": sorted(c._meta.name for c in changes)})
    return await get_binding(owner_id, bid)


async def remove_binding(owner_id: uuid.UUID, binding_id: object) -> None:
    bid = _uuid(binding_id, "id")
    async with write_transaction():
        if not await Binding.exists().where((Binding.id == bid) & (Binding.owner == owner_id)):
            raise NotFound("no such binding")
        await Binding.delete().where((Binding.id == bid) & (Binding.owner == owner_id))
        await audit.record("binding:delete", actor=f"owner:{owner_id}", subject=f"binding:{bid}",
                           owner_id=owner_id)


# ---------------------------------------------------------------- heirs

_HEIR_COLUMNS = (Heir.id, Heir.name, Heir.email, Heir.phone_e164, Heir.relationship, Heir.is_executor,
                 Heir.rank, Heir.status, Heir.invite_expires_at, Heir.accepted_at, Heir.confirmed_at, Heir.created_at)


def _heir_out(row: dict) -> dict:
    out = dict(row)
    out["phone_number"] = out.pop("phone_e164")
    return out


async def list_heirs(owner_id: uuid.UUID) -> list[dict]:
    rows = await Heir.select(*_HEIR_COLUMNS).where(
        (Heir.owner == owner_id) & (Heir.status != "revoked")
    ).order_by(Heir.rank).order_by(Heir.created_at)
    return [_heir_out(r) for r in rows]


async def add_heir(owner_id: uuid.UUID, name: str, email: str, relationship: str,
                   phone_number: str | None = None, is_executor: bool = False) -> dict:
    name = rules.check_text(name, 100, "name")
    if not name:
        raise InvalidRequest("the heir's name is required", field="name")
    relationship = rules.check_text(relationship, 50, "relationship") or ""
    email = check_email(email)
    phone = normalize(phone_number, get_settings().default_region).e164 if phone_number else None
    hid = uuid.uuid4()
    async with write_transaction():
        rank = await Heir.count().where((Heir.owner == owner_id) & (Heir.status != "revoked")) + 1
        if is_executor:
            await Heir.update({Heir.is_executor: False}).where(Heir.owner == owner_id)  # one executor
        await Heir.insert(Heir(id=hid, owner=owner_id, name=name, email=email, phone_e164=phone,
                               relationship=relationship, is_executor=is_executor, rank=rank))
        await audit.record("heir:add", actor=f"owner:{owner_id}", subject=f"heir:{hid}", owner_id=owner_id,
                           detail={"executor": is_executor, "rank": rank})
    await heirs.send_invitation(owner_id, hid)
    row = await Heir.select(*_HEIR_COLUMNS).where(Heir.id == hid).first()
    return _heir_out(row)


async def remove_heir(owner_id: uuid.UUID, heir_id: object) -> None:
    """Revoke, at any time: bindings left to this heir fall back to the next confirmed heir."""
    await heirs.revoke(owner_id, heir_id)


# ---------------------------------------------------------------- contact channels

async def list_contacts(owner_id: uuid.UUID) -> list[dict]:
    return await ContactChannel.select(
        ContactChannel.id, ContactChannel.kind, ContactChannel.address, ContactChannel.created_at
    ).where(ContactChannel.owner == owner_id).order_by(ContactChannel.created_at)


async def add_contact(owner_id: uuid.UUID, own_e164: str, kind: str, address: str) -> dict:
    if kind == "email":
        address = check_email(address)
    elif kind == "phone":
        address = normalize(address, get_settings().default_region).e164
        if address == own_e164:
            raise InvalidRequest("a second channel must not be the registered number itself", field="address")
    else:
        raise InvalidRequest("kind is email or phone", field="kind")
    cid = uuid.uuid4()
    async with write_transaction():
        if await ContactChannel.exists().where(
            (ContactChannel.owner == owner_id) & (ContactChannel.address == address)
        ):
            raise Conflict("you already have this contact channel")
        await ContactChannel.insert(ContactChannel(id=cid, owner=owner_id, kind=kind, address=address))
        await audit.record("contact:add", actor=f"owner:{owner_id}", subject=f"contact:{cid}",
                           owner_id=owner_id, detail={"kind": kind})
    return (await ContactChannel.select(
        ContactChannel.id, ContactChannel.kind, ContactChannel.address, ContactChannel.created_at
    ).where(ContactChannel.id == cid).first())


async def remove_contact(owner_id: uuid.UUID, contact_id: object) -> None:
    cid = _uuid(contact_id, "id")
    async with write_transaction():
        if not await ContactChannel.exists().where((ContactChannel.id == cid) & (ContactChannel.owner == owner_id)):
            raise NotFound("no such contact channel")
        if await ContactChannel.count().where(ContactChannel.owner == owner_id) <= 1:
            raise InvalidState("keep at least one channel besides the number: add another before removing this one")
        await ContactChannel.delete().where((ContactChannel.id == cid) & (ContactChannel.owner == owner_id))
        await audit.record("contact:remove", actor=f"owner:{owner_id}", subject=f"contact:{cid}",
                           owner_id=owner_id)


# ---------------------------------------------------------------- the owner's own audit trail

async def audit_trail(owner_id: uuid.UUID, limit: int = 200) -> list[dict]:
    return await AuditEvent.select(
        AuditEvent.seq, AuditEvent.at, AuditEvent.action, AuditEvent.actor, AuditEvent.subject
    ).where(AuditEvent.owner_id == owner_id).order_by(AuditEvent.seq, ascending=False).limit(limit)


# ---------------------------------------------------------------- the number's state, as its owner sees it

async def number_status(owner_id: uuid.UUID) -> dict:
    """The owner's tenure status and the release case of that tenure, with each task."""
    owner = await Owner.select(Owner.tenure, Owner.tenure.status, Owner.tenure.number.e164).where(
        Owner.id == owner_id).first()
    case = await ReleaseCase.select(
        ReleaseCase.id, ReleaseCase.status, ReleaseCase.reason, ReleaseCase.disconnected_at,
        ReleaseCase.earliest_clear_at, ReleaseCase.notify_at,
    ).where(ReleaseCase.tenure == owner["tenure"]).order_by(ReleaseCase.opened_at, ascending=False).first()
    if case is not None:
        case["tasks"] = await ReleaseTask.select(
            ReleaseTask.id, ReleaseTask.action, ReleaseTask.status, ReleaseTask.updated_at,
            ReleaseTask.platform.name.as_alias("platform_name"), ReleaseTask.platform.name_zh.as_alias("platform_name_zh"),
            ReleaseTask.heir.name.as_alias("heir_name"),
        ).where(ReleaseTask.case == case["id"]).order_by(ReleaseTask.created_at)
    return {"phone_number": owner["tenure.number.e164"], "status": owner["tenure.status"], "case": case}
