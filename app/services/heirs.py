"""Heir designation: invitation, acceptance, the owner's confirmation, revocation and lapse.

``invited -> accepted -> confirmed``; the owner may revoke at any time; an invitation nobody answers
lapses (a worker timer) and what was left to that heir falls back to the next confirmed heir.
Only the SHA-256 of an invitation token is stored; a used or renewed link stops working.
"""

from __future__ import annotations

import datetime as dt
import uuid

from app import audit
from app.clock import now
from app.crypto.secrets import hash_password, new_token, token_hash, verify_password
from app.domain import legacy as rules
from app.domain.legacy import HeirStatus
from app.domain.numbers import mask
from app.errors import AuthenticationFailed, InvalidState, NotFound
from app.notify import notifier
from app.notify.letters import compose, link
from app.services import accounts, ratelimit
from app.storage.engine import write_transaction
from app.storage.tables import Account, Heir, LegacyCase, Owner

INVALID_LINK = "this invitation link is not valid any more: ask the person who invited you for a new one"


async def _owner_view(owner_id: uuid.UUID) -> dict:
    return await Owner.select(Owner.id, Owner.locale, Owner.tenure.number.e164.as_alias("e164")).where(
        Owner.id == owner_id).first()


async def send_invitation(owner_id: uuid.UUID, heir_id: uuid.UUID) -> str:
    """A new invitation link (earlier ones stop working), by e-mail and to the heir's number if given;
    returns the link's token (for the demo loader: it is never shown to the owner)."""
    token = new_token()
    moment = now()
    async with write_transaction():
        heir = await Heir.select().where((Heir.id == heir_id) & (Heir.owner == owner_id)).first()
        if heir is None or heir["status"] not in (HeirStatus.INVITED.value, HeirStatus.LAPSED.value):
            raise InvalidState("only an heir who has not accepted yet can be invited again")
        await Heir.update({Heir.invite_hash: token_hash(token), Heir.status: HeirStatus.INVITED.value,
                           Heir.invite_expires_at: moment + dt.timedelta(days=rules.INVITATION_DAYS)}).where(
            Heir.id == heir_id)
        await audit.record("heir:invite", actor=f"owner:{owner_id}", subject=f"heir:{heir_id}", owner_id=owner_id)
        # the invitation's messages commit with its link: a link nobody was sent is never the live one
        owner = await _owner_view(owner_id)
        locale = owner["locale"]
        role = ("遗嘱执行人" if locale == "zh" else "executor") if heir["is_executor"] else ("继承人" if locale == "zh" else "an heir")
        values = dict(owner=mask(owner["e164"]), name=heir["name"], role=role, days=rules.INVITATION_DAYS,
                      link=link(f"/invitations/{token}"))
        messages = [compose("heir_invitation", locale, heir["email"], **values)]
        if heir["phone_e164"]:
            messages.append(compose("heir_invitation", locale, heir["phone_e164"], channel="sms", **values))
        await notifier().keep(messages)
    return token


async def _live_invitation(token: str) -> dict:
    if not isinstance(token, str) or not 16 <= len(token) <= 128:
        raise NotFound(INVALID_LINK)
    heir = await Heir.select(Heir.id, Heir.owner, Heir.name, Heir.email, Heir.relationship, Heir.is_executor,
                             Heir.status, Heir.invite_expires_at, Heir.owner.tenure.number.e164.as_alias("e164")).where(
        Heir.invite_hash == token_hash(token)).first()
    if heir is None or heir["status"] != HeirStatus.INVITED.value or heir["invite_expires_at"] <= now():
        raise NotFound(INVALID_LINK)
    return heir


async def invitation(token: str) -> dict:
    """What the invitation page shows: who invites (masked number), to whom, in what role."""
    heir = await _live_invitation(token)
    has_account = await Account.exists().where(Account.email == heir["email"])
    return {"heir_name": heir["name"], "email": heir["email"], "relationship": heir["relationship"],
            "is_executor": heir["is_executor"], "owner_number": mask(heir["e164"]),
            "expires_at": heir["invite_expires_at"], "has_account": has_account}


async def accept(token: str, password: str, *, client: str, locale: str = "zh", user_agent: str = "") -> str:
    """Accept with a new password (a new account) or the password of the account already holding this
    e-mail. The link proves the e-mail; returns a session token for the heir's account."""
    heir = await _live_invitation(token)
    await ratelimit.hit((ratelimit.LOGIN_PER_NUMBER, heir["email"]), (ratelimit.LOGIN_PER_CLIENT, client))
    existing = await accounts.account_by_email(heir["email"])
    if existing is not None:
        if not isinstance(password, str) or not await verify_password(password, existing["password_hash"]):
            raise AuthenticationFailed("this e-mail has an account already: enter its password")
        new_hash = None
    else:
        accounts.check_password(password, email=heir["email"])
        new_hash = await hash_password(password)
    async with write_transaction():
        current = await Heir.select(Heir.status, Heir.invite_hash).where(Heir.id == heir["id"]).first()
        if current["status"] != HeirStatus.INVITED.value or current["invite_hash"] != token_hash(token):
            raise NotFound(INVALID_LINK)  # used or renewed meanwhile
        account_id = existing["id"] if existing else await accounts.create_account(
            heir["email"], password, locale=locale, password_hash=new_hash)
        await Heir.update({Heir.account: account_id, Heir.status: HeirStatus.ACCEPTED.value, Heir.invite_hash: None,
                           Heir.accepted_at: now()}).where(Heir.id == heir["id"])
        await audit.record("heir:accept", actor=f"account:{account_id}", subject=f"heir:{heir['id']}",
                           owner_id=heir["owner"])
        session = await accounts.open_account_session(account_id, client=client, user_agent=user_agent)
        await _tell_owner(heir["owner"], "heir_accepted", name=heir["name"])
    return session


async def _owners_heir(owner_id: uuid.UUID, heir_id: object) -> dict:
    try:
        hid = heir_id if isinstance(heir_id, uuid.UUID) else uuid.UUID(str(heir_id))
    except ValueError:
        raise NotFound("no such heir") from None
    heir = await Heir.select().where((Heir.id == hid) & (Heir.owner == owner_id)
                                     & (Heir.status != HeirStatus.REVOKED.value)).first()
    if heir is None:
        raise NotFound("no such heir")
    return heir


async def confirm(owner_id: uuid.UUID, heir_id: object) -> None:
    """The owner confirms an heir who accepted: only confirmed heirs can claim or receive anything."""
    heir = await _owners_heir(owner_id, heir_id)
    if heir["status"] != HeirStatus.ACCEPTED.value:
        raise InvalidState("only an heir who accepted the invitation can be confirmed")
    async with write_transaction():
        updated = await Heir.update({Heir.status: HeirStatus.CONFIRMED.value, Heir.confirmed_at: now()}).where(
            (Heir.id == heir["id"]) & (Heir.status == HeirStatus.ACCEPTED.value)).returning(Heir.id)
        if not updated:
            raise InvalidState("this heir changed meanwhile; reload")
        await audit.record("heir:confirm", actor=f"owner:{owner_id}", subject=f"heir:{heir['id']}", owner_id=owner_id)


async def resend(owner_id: uuid.UUID, heir_id: object) -> None:
    heir = await _owners_heir(owner_id, heir_id)
    await send_invitation(owner_id, heir["id"])


async def revoke(owner_id: uuid.UUID, heir_id: object) -> None:
    """At any time, whatever the state: the heir can no longer claim or receive anything, and what was
    left to them falls back to the next confirmed heir."""
    heir = await _owners_heir(owner_id, heir_id)
    async with write_transaction():
        await Heir.update({Heir.status: HeirStatus.REVOKED.value, Heir.invite_hash: None,
                           Heir.is_executor: False}).where((Heir.id == heir["id"]) & (Heir.owner == owner_id))
        await audit.record("heir:revoke", actor=f"owner:{owner_id}", subject=f"heir:{heir['id']}", owner_id=owner_id)


async def expire_invitations(moment: dt.datetime) -> int:
    """Worker timer: invitations nobody answered lapse; the owner is told the plan falls back."""
    async with write_transaction():
        lapsed = await Heir.update({Heir.status: HeirStatus.LAPSED.value, Heir.invite_hash: None}).where(
            (Heir.status == HeirStatus.INVITED.value) & (Heir.invite_expires_at <= moment)
        ).returning(Heir.id, Heir.owner, Heir.name)
        for row in lapsed:
            await audit.record("heir:lapse", actor="worker", subject=f"heir:{row['id']}", owner_id=row["owner"])
            await _tell_owner(row["owner"], "heir_lapsed", name=row["name"])
    return len(lapsed)


async def _tell_owner(owner_id: uuid.UUID, letter: str, name: str) -> None:
    """A letter about one of the owner's heirs to each of the owner's e-mail contacts, kept in the
    caller's transaction: it commits with the change it tells of, or neither does."""
    owner = await _owner_view(owner_id)
    await notifier().keep([compose(letter, owner["locale"], contact["address"], name=name, link=link("/inventory#heirs"))
                           for contact in await accounts.contacts_of(owner_id) if contact["kind"] == "email"])


async def designations(account_id: uuid.UUID) -> list[dict]:
    """Whose heir this account is: masked numbers only, with the live case if there is one."""
    rows = await Heir.select(Heir.id, Heir.owner, Heir.relationship, Heir.is_executor, Heir.status,
                             Heir.owner.tenure.number.e164.as_alias("e164")).where(
        (Heir.account == account_id) & (Heir.status != HeirStatus.REVOKED.value))
    cases = {r["owner"]: r for r in await LegacyCase.select(LegacyCase.id, LegacyCase.owner, LegacyCase.status).where(
        LegacyCase.owner.is_in([r["owner"] for r in rows] or [uuid.uuid4()])
        & LegacyCase.status.is_in([s.value for s in rules.LIVE]))}
    return [{"heir_id": r["id"], "owner_number": mask(r["e164"]),
             "relationship": r["relationship"], "is_executor": r["is_executor"], "status": r["status"],
             "case_id": cases[r["owner"]]["id"] if r["owner"] in cases else None,
             "case_status": cases[r["owner"]]["status"] if r["owner"] in cases else None} for r in rows]
