"""Owners: sign-up, login with password and code, sessions, and the owner's data key."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass

from app import audit
from app.clock import now
from app.crypto.envelope import FieldCipher, WrappedKey, new_data_key, unwrap_data_key
from app.crypto.secrets import (
    burn_password_check,
    hash_password,
    new_token,
    token_hash,
    verify_password,
)
from app.domain.numbers import Number, mask, normalize
from app.domain.passwords import check_password
from app.errors import AuthenticationFailed, Conflict, InvalidCode, InvalidRequest, NotFound, StepUpRequired
from app.services import codes, ratelimit
from app.settings import get_settings
from app.storage.engine import write_transaction
from app.storage.tables import Account, ContactChannel, Owner, OwnerSession, PhoneNumber, Tenure

EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s.]{2,63}$")
LOGIN_FAILED = "phone number, password or code is wrong"
ACCOUNT_LOGIN_FAILED = "e-mail, password or code is wrong"


def check_email(value: object) -> str:
    if not isinstance(value, str) or not EMAIL_RE.match(value.strip()):
        raise InvalidRequest("enter a valid e-mail address", field="email")
    return value.strip().lower()


@dataclass(frozen=True)
class Principal:
    """Who is calling and the session that proves it: an owner (by number) or an account (by e-mail:
    an heir, an executor or a reviewer)."""

    owner_id: uuid.UUID | None
    session_id: uuid.UUID
    e164: str = ""
    account_id: uuid.UUID | None = None
    email: str = ""
    is_reviewer: bool = False
    tenure_id: uuid.UUID | None = None  # a new holder's session: bound to the number and its current tenure

    @property
    def is_owner(self) -> bool:
        return self.owner_id is not None

    @property
    def kind(self) -> str:
        if self.owner_id is not None:
            return "owner"
        return "account" if self.account_id is not None else "new_holder"


async def current_tenure(number: Number, *, create: bool) -> dict | None:
    """The open tenure of a number (inside a write transaction when ``create``)."""
    phone = await PhoneNumber.select().where(PhoneNumber.e164 == number.e164).first()
    if phone is None:
        if not create:
            return None
        phone_id = uuid.uuid4()
        await PhoneNumber.insert(PhoneNumber(id=phone_id, e164=number.e164, region=number.region))
        phone = {"id": phone_id}
    tenure = await Tenure.select().where(Tenure.number == phone["id"]).order_by(
        Tenure.seq, ascending=False
    ).first()
    if tenure is not None and tenure["ended_at"] is None:
        return tenure
    if not create:
        return None
    row = Tenure(id=uuid.uuid4(), number=phone["id"], seq=(tenure["seq"] + 1) if tenure else 1)
    await Tenure.insert(row)
    return {"id": row.id, "seq": row.seq, "status": row.status, "ended_at": None}


async def owner_of(number: Number) -> dict | None:
    tenure = await current_tenure(number, create=False)
    if tenure is None:
        return None
    return await Owner.select().where(
        (Owner.tenure == tenure["id"]) & (Owner.status == "active")
    ).first()


async def sign_up(
    phone_number: str, code: str, password: str, email: str, *, client: str, locale: str = "zh",
    user_agent: str = "",
) -> tuple[uuid.UUID, str]:
    """Prove the number with a `signup` code and create its owner; returns (owner_id, session token)."""
    number = normalize(phone_number, get_settings().default_region)
    email = check_email(email)
    check_password(password, phone_e164=number.e164, email=email)
    if not await codes.redeem(number.e164, codes.Purpose.SIGNUP, code):
        raise InvalidCode("the code is wrong, expired or already used; ask for a new one", field="code")
    password_hash = await hash_password(password)  # slow: never inside the writer lock
    async with write_transaction():
        owner_id = await register_owner(number, password, email, locale=locale, password_hash=password_hash)
        token = await _open_session(owner_id, client=client, user_agent=user_agent)
    return owner_id, token


async def register_owner(number: Number, password: str, email: str, *, locale: str = "zh",
                         password_hash: str | None = None) -> uuid.UUID:
    """Create the owner of the number's current tenure (the caller has proved the number)."""
    check_password(password, phone_e164=number.e164, email=email)
    password_hash = password_hash or await hash_password(password)
    owner_id = uuid.uuid4()
    _, wrapped = new_data_key(get_settings().keyring, str(owner_id))
    async with write_transaction():
        tenure = await current_tenure(number, create=True)
        if await Owner.exists().where(Owner.tenure == tenure["id"]):
            raise Conflict("this number already has an account: log in instead")
        await Owner.insert(
            Owner(
                id=owner_id, tenure=tenure["id"], password_hash=password_hash,
                data_key=wrapped.blob, kek_id=wrapped.kek_id, locale=locale,
            )
        )
        await ContactChannel.insert(ContactChannel(owner=owner_id, kind="email", address=check_email(email)))
        await audit.record(
            "owner:signup", actor=f"owner:{owner_id}", subject=mask(number.e164), owner_id=owner_id,
            detail={"tenure_seq": tenure["seq"]},
        )
    return owner_id


async def check_password_step(phone_number: str, password: str, *, client: str) -> tuple[uuid.UUID, Number]:
    """First factor. Counts against the number's and the client's login limits."""
    number = normalize(phone_number, get_settings().default_region)
    await ratelimit.hit((ratelimit.LOGIN_PER_NUMBER, number.e164), (ratelimit.LOGIN_PER_CLIENT, client))
    owner = await owner_of(number)
    if owner is None:
        await burn_password_check(password if isinstance(password, str) else "")
        raise AuthenticationFailed(LOGIN_FAILED)
    if not isinstance(password, str) or not await verify_password(password, owner["password_hash"]):
        async with write_transaction():
            await audit.record("session:login:failure", actor=f"client:{client}",
                               subject=mask(number.e164), owner_id=owner["id"], detail={"factor": "password"})
        raise AuthenticationFailed(LOGIN_FAILED)
    return owner["id"], number


async def complete_login(owner_id: uuid.UUID, number: Number, code: str, *, client: str,
                         user_agent: str = "", replaces: str | None = None) -> str:
    """Second factor: the `login` code sent to the number. Returns a fresh session token."""
    if not await codes.redeem(number.e164, codes.Purpose.LOGIN, code):
        async with write_transaction():
            await audit.record("session:login:failure", actor=f"client:{client}",
                               subject=mask(number.e164), owner_id=owner_id, detail={"factor": "code"})
        raise AuthenticationFailed(LOGIN_FAILED)
    async with write_transaction():
        if replaces:
            await _revoke(replaces)
        token = await _open_session(owner_id, client=client, user_agent=user_agent)
        await audit.record("session:login:success", actor=f"owner:{owner_id}",
                           subject=mask(number.e164), owner_id=owner_id)
    return token


async def log_in(phone_number: str, password: str, code: str, *, client: str, user_agent: str = "") -> str:
    owner_id, number = await check_password_step(phone_number, password, client=client)
    return await complete_login(owner_id, number, code, client=client, user_agent=user_agent)


async def _open_session(owner_id: uuid.UUID | None, *, client: str, user_agent: str,
                        account_id: uuid.UUID | None = None, tenure_id: uuid.UUID | None = None) -> str:
    """A new session; one opened with both factors (an owner's or account's login) counts as a step-up."""
    token = new_token()
    await OwnerSession.insert(
        OwnerSession(
            token_hash=token_hash(token), owner=owner_id, account=account_id, tenure=tenure_id,
            stepped_up_at=None if tenure_id else now(),
            expires_at=now() + dt.timedelta(hours=get_settings().session_ttl_hours),
            client=client[:64], user_agent=user_agent[:200],
        )
    )
    return token


async def _revoke(token: str) -> dict | None:
    row = await OwnerSession.select(OwnerSession.id, OwnerSession.owner, OwnerSession.account).where(
        (OwnerSession.token_hash == token_hash(token)) & OwnerSession.revoked_at.is_null()
    ).first()
    if row is None:
        return None
    await OwnerSession.update({OwnerSession.revoked_at: now()}).where(OwnerSession.id == row["id"])
    return row


async def log_out(token: str) -> None:
    async with write_transaction():
        row = await _revoke(token)
        if row is not None and row["owner"] is not None:
            await audit.record("session:logout", actor=f"owner:{row['owner']}", owner_id=row["owner"])
        elif row is not None:
            await audit.record("session:logout", actor=f"account:{row['account']}")


async def resolve_session(token: str | None) -> Principal | None:
    if not token or len(token) > 128:
        return None
    row = await OwnerSession.select(
        OwnerSession.id, OwnerSession.owner, OwnerSession.expires_at, OwnerSession.revoked_at,
        OwnerSession.owner.status, OwnerSession.owner.tenure.number.e164,
        OwnerSession.account, OwnerSession.account.status, OwnerSession.account.email,
        OwnerSession.account.is_reviewer, OwnerSession.tenure, OwnerSession.tenure.ended_at,
        OwnerSession.tenure.number.e164.as_alias("tenure_e164"),
    ).where(OwnerSession.token_hash == token_hash(token)).first()
    if row is None or row["revoked_at"] is not None or row["expires_at"] <= now():
        return None
    if row["owner"] is not None:
        if row["owner.status"] != "active":
            return None
        return Principal(row["owner"], row["id"], row["owner.tenure.number.e164"])
    if row["tenure"] is not None:  # a new holder: only while that tenure is the number's current one
        if row["tenure.ended_at"] is not None:
            return None
        return Principal(None, row["id"], row["tenure_e164"], tenure_id=row["tenure"])
    if row["account"] is None or row["account.status"] != "active":
        return None
    return Principal(None, row["id"], account_id=row["account"], email=row["account.email"],
                     is_reviewer=bool(row["account.is_reviewer"]))


async def cipher_for(owner_id: uuid.UUID) -> FieldCipher:
    """The owner's field cipher, from their wrapped data key."""
    row = await Owner.select(Owner.data_key, Owner.kek_id).where(Owner.id == owner_id).first()
    if row is None or row["data_key"] is None:
        raise AuthenticationFailed("this account's data key is gone")
    key = unwrap_data_key(get_settings().keyring, str(owner_id), WrappedKey(row["kek_id"], bytes(row["data_key"])))
    return FieldCipher(str(owner_id), key)


# ---------------------------------------------------------------- accounts: heirs, executors, reviewers

async def create_account(email: str, password: str, *, locale: str = "zh", reviewer: bool = False,
                         password_hash: str | None = None) -> uuid.UUID:
    """A new account for a person proved to hold ``email`` (call inside a write transaction)."""
    email = check_email(email)
    check_password(password, phone_e164="", email=email)
    if await Account.exists().where(Account.email == email):
        raise Conflict("an account with this e-mail exists already: log in instead")
    account_id = uuid.uuid4()
    await Account.insert(Account(id=account_id, email=email, locale=locale, is_reviewer=reviewer,
                                 password_hash=password_hash or await hash_password(password)))
    await audit.record("account:create", actor=f"account:{account_id}", subject=f"account:{account_id}",
                       detail={"reviewer": reviewer})
    return account_id


async def account_by_id(account_id: uuid.UUID) -> dict | None:
    return await Account.select().where((Account.id == account_id) & (Account.status == "active")).first()


async def account_by_email(email: str) -> dict | None:
    return await Account.select().where((Account.email == email.strip().lower()) & (Account.status == "active")).first()


async def check_account_password(email: str, password: str, *, client: str) -> dict:
    """First factor for an account; the same answer whether the e-mail is known or not."""
    email = check_email(email)
    await ratelimit.hit((ratelimit.LOGIN_PER_NUMBER, email), (ratelimit.LOGIN_PER_CLIENT, client))
    account = await account_by_email(email)
    if account is None:
        await burn_password_check(password if isinstance(password, str) else "")
        raise AuthenticationFailed(ACCOUNT_LOGIN_FAILED)
    if not isinstance(password, str) or not await verify_password(password, account["password_hash"]):
        async with write_transaction():
            await audit.record("session:login:failure", actor=f"client:{client}", subject=f"account:{account['id']}",
                               detail={"factor": "password"})
        raise AuthenticationFailed(ACCOUNT_LOGIN_FAILED)
    return account


async def complete_account_login(account: dict, code: str, *, client: str, user_agent: str = "",
                                 replaces: str | None = None) -> str:
    """Second factor: the `login` code sent to the account's e-mail."""
    if not await codes.redeem(account["email"], codes.Purpose.LOGIN, code):
        async with write_transaction():
            await audit.record("session:login:failure", actor=f"client:{client}",
                               subject=f"account:{account['id']}", detail={"factor": "code"})
        raise AuthenticationFailed(ACCOUNT_LOGIN_FAILED)
    async with write_transaction():
        if replaces:
            await _revoke(replaces)
        token = await _open_session(None, account_id=account["id"], client=client, user_agent=user_agent)
        await audit.record("session:login:success", actor=f"account:{account['id']}",
                           subject=f"account:{account['id']}")
    return token


async def log_in_account(email: str, password: str, code: str, *, client: str, user_agent: str = "") -> str:
    account = await check_account_password(email, password, client=client)
    return await complete_account_login(account, code, client=client, user_agent=user_agent)


async def open_account_session(account_id: uuid.UUID, *, client: str, user_agent: str = "") -> str:
    """A session for an account that has just proved itself another way (an invitation link)."""
    return await _open_session(None, account_id=account_id, client=client, user_agent=user_agent)


async def contacts_of(owner_id: uuid.UUID) -> list[dict]:
    """The owner's channels besides the number (e-mail, second numbers): where alerts go."""
    return await ContactChannel.select(ContactChannel.kind, ContactChannel.address).where(
        ContactChannel.owner == owner_id)


async def send_account_code(email: str, *, client: str, locale: str = "zh") -> None:
    """A `login` code to an account's e-mail; nothing is sent (and nothing said) for an unknown one."""
    email = check_email(email)
    account = await account_by_email(email)
    if account is None:
        await ratelimit.hit((ratelimit.OTP_PER_CLIENT, client))
        return
    await codes.send_email_code(email, codes.Purpose.LOGIN, client=client, locale=account["locale"] or locale)


async def add_reviewer(email: str) -> tuple[uuid.UUID, str | None]:
    """Operator staff who decide legacy cases. A new account gets a generated password (printed once);
    an existing account (e.g. someone's heir) becomes a reviewer and keeps its password."""
    email = check_email(email)
    existing = await Account.select(Account.id).where(Account.email == email).first()
    async with write_transaction():
        if existing is not None:
            await Account.update({Account.is_reviewer: True}).where(Account.id == existing["id"])
            await audit.record("account:reviewer", actor="operator", subject=f"account:{existing['id']}")
            return existing["id"], None
        password = new_token(18)
        account_id = await create_account(email, password, reviewer=True)
    return account_id, password


async def new_holder_session(phone_number: str, code: str, *, client: str, user_agent: str = "") -> str:
    """Whoever holds the number now proves it with a `new_holder` code (no password): a session bound
    to the number and its current tenure, which shows counts only, never a previous holder's data."""
    number = normalize(phone_number, get_settings().default_region)
    await ratelimit.hit((ratelimit.LOGIN_PER_NUMBER, number.e164), (ratelimit.LOGIN_PER_CLIENT, client))
    if not await codes.redeem(number.e164, codes.Purpose.NEW_HOLDER, code):
        raise AuthenticationFailed("the code is wrong, expired or already used; ask for a new one")
    async with write_transaction():
        tenure = await current_tenure(number, create=True)
        token = await _open_session(None, tenure_id=tenure["id"], client=client, user_agent=user_agent)
        await audit.record("session:new_holder", actor=f"tenure:{tenure['id']}", subject=mask(number.e164))
    return token


STEP_UP_MINUTES = 15
STEP_UP_HINT = ("confirm it is you first: ask for a `step_up` code (POST /v1/otp) and send it with your password "
                "to POST /v1/me/step-up")


async def require_step_up(principal: Principal) -> None:
    """Changes to contacts, heirs and the veto window need a proof by password and code within the last
    15 minutes (a fresh login counts), so that a stolen session alone cannot redirect a legacy plan."""
    row = await OwnerSession.select(OwnerSession.stepped_up_at).where(OwnerSession.id == principal.session_id).first()
    if row is None or row["stepped_up_at"] is None or now() - row["stepped_up_at"] > dt.timedelta(minutes=STEP_UP_MINUTES):
        raise StepUpRequired(STEP_UP_HINT)


async def step_up(principal: Principal, password: object, code: object, *, client: str) -> None:
    await ratelimit.hit((ratelimit.LOGIN_PER_NUMBER, principal.e164), (ratelimit.LOGIN_PER_CLIENT, client))
    row = await Owner.select(Owner.password_hash).where(Owner.id == principal.owner_id).first()
    if not isinstance(password, str) or not await verify_password(password, row["password_hash"]):
        raise AuthenticationFailed("the password or code is wrong")
    if not await codes.redeem(principal.e164, codes.Purpose.STEP_UP, code):
        raise AuthenticationFailed("the password or code is wrong")
    async with write_transaction():
        await OwnerSession.update({OwnerSession.stepped_up_at: now()}).where(OwnerSession.id == principal.session_id)
        await audit.record("session:step_up", actor=f"owner:{principal.owner_id}", owner_id=principal.owner_id)


async def disable(identifier: str) -> str:
    """Operator: disable an owner (by number) or an account (by e-mail); every session of it ends at once."""
    moment = now()
    async with write_transaction():
        if "@" in identifier:
            account = await Account.select(Account.id).where(Account.email == check_email(identifier)).first()
            if account is None:
                raise NotFound("no account with this e-mail")
            await Account.update({Account.status: "disabled"}).where(Account.id == account["id"])
            await OwnerSession.update({OwnerSession.revoked_at: moment}).where(
                (OwnerSession.account == account["id"]) & OwnerSession.revoked_at.is_null())
            subject = f"account:{account['id']}"
            await audit.record("account:disable", actor="operator", subject=subject)
            return subject
        owner = await owner_of(normalize(identifier, get_settings().default_region))
        if owner is None:
            raise NotFound("no owner holds this number")
        await Owner.update({Owner.status: "disabled"}).where(Owner.id == owner["id"])
        await OwnerSession.update({OwnerSession.revoked_at: moment}).where(
            (OwnerSession.owner == owner["id"]) & OwnerSession.revoked_at.is_null())
        await audit.record("owner:disable", actor="operator", subject=mask(normalize(identifier, get_settings().default_region).e164),
                           owner_id=owner["id"])
        return f"owner:{owner['id']}"
