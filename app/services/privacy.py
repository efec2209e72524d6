"""An owner's own data: a machine-readable export, and deletion that shreds the data key.

Deletion removes the bindings, heirs, contact channels and sessions, and destroys the wrapped data key,
so the ciphertexts left in legal records and in backups can no longer be opened (backups: once the KEK
that wrapped that copy of the key is retired by ``heirline keys rotate``). The owner row remains as a
tombstone for the audit log and legal records that refer to it.
"""

from __future__ import annotations

import uuid

from app import audit
from app.clock import now
from app.crypto.secrets import verify_password
from app.errors import AuthenticationFailed, Conflict
from app.services import inventory, legacy
from app.services.accounts import contacts_of
from app.storage.engine import write_transaction
from app.storage.tables import Binding, ContactChannel, HandoverGrant, Heir, LegacyCase, Owner, OwnerSession

FORMAT = "heirline-owner-export/1"


async def export(owner_id: uuid.UUID) -> dict:
    """Everything Heirline holds about the owner, decrypted for them (logged)."""
    owner = await Owner.select(Owner.id, Owner.created_at, Owner.locale, Owner.veto_days,
                               Owner.tenure.number.e164.as_alias("phone_number"),
                               Owner.tenure.started_at.as_alias("tenure_started_at")).where(Owner.id == owner_id).first()
    data = {
        "format": FORMAT, "exported_at": now(), "owner": owner,
        "contacts": await inventory.list_contacts(owner_id),
        "heirs": await inventory.list_heirs(owner_id),
        "bindings": await inventory.list_bindings(owner_id),
        "number": await inventory.number_status(owner_id),
        "legacy_cases": await legacy.owner_cases(owner_id),
        "audit": await inventory.audit_trail(owner_id, limit=10_000),
    }
    async with write_transaction():
        await audit.record("owner:export", actor=f"owner:{owner_id}", owner_id=owner_id)
    return data


async def delete(owner_id: uuid.UUID, password: object) -> None:
    """Delete the account after the password is given again; the data key is shredded."""
    row = await Owner.select(Owner.password_hash).where(Owner.id == owner_id).first()
    if not isinstance(password, str) or not await verify_password(password, row["password_hash"]):
        raise AuthenticationFailed("enter your password to delete your account")
    async with write_transaction():
        if await HandoverGrant.exists().where(HandoverGrant.case.owner == owner_id):
            raise Conflict("an approved legacy case still releases these accounts to heirs; it must end first")
        contacts = len(await contacts_of(owner_id))
        await LegacyCase.update({LegacyCase.status: "vetoed", LegacyCase.closed_at: now()}).where(
            (LegacyCase.owner == owner_id) & LegacyCase.status.is_in(["challenge", "evidence_review"]))
        await Binding.delete().where(Binding.owner == owner_id)
        await Heir.delete().where(Heir.owner == owner_id)
        await ContactChannel.delete().where(ContactChannel.owner == owner_id)
        await OwnerSession.delete().where(OwnerSession.owner == owner_id)
        await Owner.update({Owner.data_key: None, Owner.status: "deleted", Owner.password_hash: ""}).where(
            Owner.id == owner_id)
        await audit.record("owner:delete", actor=f"owner:{owner_id}", owner_id=owner_id,
                           detail={"contacts": contacts, "data_key": "shredded"})
