"""The owner's alerts during a veto window: on opening, midway and one day before the end.

Every alert goes to every channel the owner gave besides the number itself (which may already be in
a stranger's hands), and carries a fresh one-click "I am alive" link: single use, expiring with the
window, stored only as a keyed hash. The count of alerts sent moves by compare-and-set, so two
workers never send the same alert twice.
"""

from __future__ import annotations

import datetime as dt
import uuid

from app import audit
from app.clock import now
from app.crypto.secrets import new_token
from app.domain import legacy as rules
from app.domain.legacy import CaseStatus
from app.domain.numbers import mask
from app.notify import notifier
from app.notify.letters import compose, link
from app.services import accounts
from app.services.legacy import veto_link_secret
from app.storage.engine import write_transaction
from app.storage.tables import Heir, LegacyCase, Owner, VetoLink


async def send_due(case_id: uuid.UUID, moment: dt.datetime | None = None) -> int:
    """Send the alert that is due for this case, if any; returns 1 when one went out."""
    moment = moment or now()
    case = await LegacyCase.select(LegacyCase.id, LegacyCase.owner, LegacyCase.status, LegacyCase.opened_at,
                                   LegacyCase.veto_ends_at, LegacyCase.alerts_sent, LegacyCase.claimant,
                                   LegacyCase.source).where(LegacyCase.id == case_id).first()
    if case is None or case["status"] != CaseStatus.CHALLENGE.value or case["veto_ends_at"] <= moment:
        return 0
    due = sum(1 for t in rules.alert_times(case["opened_at"], case["veto_ends_at"]) if t <= moment)
    if due <= case["alerts_sent"]:
        return 0
    link_id, secret = uuid.uuid4(), new_token()
    owner = await Owner.select(Owner.locale, Owner.tenure.number.e164.as_alias("e164")).where(
        Owner.id == case["owner"]).first()
    locale = owner["locale"]
    if case["claimant"] is not None:
        heir = await Heir.select(Heir.name, Heir.relationship).where(
            (Heir.account == case["claimant"]) & (Heir.owner == case["owner"])).first()
        claimant = f"{heir['name']}, {heir['relationship']}".rstrip(", ") if heir else "?"
    else:
        claimant = "您的运营商" if locale == "zh" else "your carrier"
    values = dict(claimant=claimant, number=mask(owner["e164"]), link=link(f"/veto/{link_id}.{secret}"),
                  ends=case["veto_ends_at"].strftime("%Y-%m-%d %H:%M"))
    messages = [compose("claim_alert", locale, c["address"], channel="email" if c["kind"] == "email" else "sms",
                        **values) for c in await accounts.contacts_of(case["owner"])]
    async with write_transaction():  # the alert counts as sent only with its messages in the outbox
        moved = await LegacyCase.update({LegacyCase.alerts_sent: due}).where(
            (LegacyCase.id == case_id) & (LegacyCase.alerts_sent == case["alerts_sent"])
            & (LegacyCase.status == CaseStatus.CHALLENGE.value)).returning(LegacyCase.id)
        if not moved:
            return 0
        await VetoLink.insert(VetoLink(id=link_id, case=case_id, secret_hash=veto_link_secret(link_id, secret),
                                       expires_at=case["veto_ends_at"]))
        await audit.record("legacy:alert", actor="system", subject=f"legacy:{case_id}", owner_id=case["owner"],
                           detail={"alert": due})
        await notifier().keep(messages)
    return 1
