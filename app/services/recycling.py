"""Recycling checks for platforms, callers, carriers and new holders, with quotas and a query log.

Answers come from :mod:`app.domain.recycling`; this module loads the history of the numbers asked
about in a handful of queries, charges the asker's daily quota, and logs every answer per client
(who asked what, when) for accountability.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from app import audit
from app.clock import now
from app.domain import recycling as rules
from app.domain.numbers import normalize
from app.domain.recycling import CamaraError, History
from app.domain.release import CaseStatus
from app.errors import InvalidNumber, InvalidRequest, QuotaExceeded
from app.services import ratelimit
from app.settings import get_settings
from app.storage.engine import insert_rows, write_transaction
from app.storage.tables import Caller, Carrier, ClientUsage, PhoneNumber, RecyclingQuery, ReleaseCase, Tenure

REQUESTS_PER_MINUTE = ratelimit.Limit("recycling:client", 60, 60)


@dataclass(frozen=True)
class Asker:
    kind: str  # carrier | platform | caller | new_holder
    id: uuid.UUID


async def _histories(e164s: list[str]) -> dict[str, History]:
    numbers = {r["id"]: r for r in await PhoneNumber.select(
        PhoneNumber.id, PhoneNumber.e164, PhoneNumber.carrier, PhoneNumber.carrier.data_since.as_alias("data_since"),
    ).where(PhoneNumber.e164.is_in(e164s))} if e164s else {}
    changes: dict[uuid.UUID, list[dt.date]] = {}
    first_seen: dict[uuid.UUID, dt.date] = {}
    disconnections: dict[uuid.UUID, list[dt.date]] = {}
    if numbers:
        for row in await Tenure.select(Tenure.number, Tenure.seq, Tenure.started_at).where(
                Tenure.number.is_in(list(numbers))):
            day = row["started_at"].date()
            first_seen[row["number"]] = min(day, first_seen.get(row["number"], day))
            if row["seq"] > 1:
                changes.setdefault(row["number"], []).append(day)
        for row in await ReleaseCase.select(ReleaseCase.number, ReleaseCase.disconnected_at).where(
                ReleaseCase.number.is_in(list(numbers)) & (ReleaseCase.status != CaseStatus.CANCELLED.value)):
            disconnections.setdefault(row["number"], []).append(row["disconnected_at"].date())
    out = {}
    for number_id, row in numbers.items():
        if row["carrier"] is None:  # registered here by an owner only: answers like an unknown number
            continue
        known = row["data_since"].date() if row["data_since"] else first_seen.get(number_id)
        out[row["e164"]] = History(known, tuple(sorted(changes.get(number_id, []))),
                                   tuple(sorted(disconnections.get(number_id, []))))
    return out


async def _window_start() -> dt.date | None:
    rows = await Carrier.select(Carrier.data_since).order_by(Carrier.data_since).limit(1)
    return rows[0]["data_since"].date() if rows and rows[0]["data_since"] else None


async def _charge(asker: Asker, queries: int) -> None:
    """One request against the per-minute limit, ``queries`` against the daily quota (429 when spent)."""
    await ratelimit.hit((REQUESTS_PER_MINUTE, f"{asker.kind}:{asker.id}"))
    quota = get_settings().recycling_daily_quota
    if asker.kind == "caller":
        row = await Caller.select(Caller.daily_quota).where(Caller.id == asker.id).first()
        quota = row["daily_quota"] if row else 0
    day = now().date()
    async with write_transaction():
        usage = await ClientUsage.select(ClientUsage.id, ClientUsage.queries).where(
            (ClientUsage.client_id == asker.id) & (ClientUsage.day == day)).first()
        used = usage["queries"] if usage else 0
        if used + queries > quota:
            raise QuotaExceeded(f"the daily quota of {quota} numbers is spent ({used} used); it renews at midnight UTC",
                              retry_after=int((dt.datetime.combine(day + dt.timedelta(days=1), dt.time(),
                                                                   dt.timezone.utc) - now()).total_seconds()) + 1)
        if usage:
            await ClientUsage.update({ClientUsage.queries: used + queries}).where(ClientUsage.id == usage["id"])
        else:
            await ClientUsage.insert(ClientUsage(client_kind=asker.kind, client_id=asker.id, day=day, queries=queries))


async def _log(asker: Asker, api: str, rows: list[tuple[str, dt.date, str]]) -> None:
    moment = now()
    async with write_transaction():
        await insert_rows(RecyclingQuery, [dict(id=uuid.uuid4(), client_kind=asker.kind, client_id=asker.id, api=api,
                                                e164=e164, asked_date=day, answer=answer, asked_at=moment)
                                           for e164, day, answer in rows])
        await audit.record(f"recycling:{api}", actor=f"{asker.kind}:{asker.id}", detail={"numbers": len(rows)})


async def reassigned(asker: Asker, queries: object) -> list[dict]:
    """FCC RND style: up to 1,000 ``{"phone_number","since"}`` -> ``yes`` / ``no`` / ``no_data``."""
    if not isinstance(queries, list) or not 1 <= len(queries) <= rules.MAX_QUERIES:
        raise InvalidRequest(f"queries is a list of 1 to {rules.MAX_QUERIES} items", field="queries")
    today = now().date()
    parsed = []
    for index, query in enumerate(queries):
        if not isinstance(query, dict) or set(query) - {"phone_number", "since"}:
            raise InvalidRequest(f'queries[{index}] is {{"phone_number", "since"}}', field=f"queries[{index}]")
        try:
            number = normalize(query.get("phone_number"), get_settings().default_region)
        except InvalidNumber as exc:
            raise InvalidRequest(f"queries[{index}].phone_number: {exc.detail}", field=f"queries[{index}]") from None
        parsed.append((number.e164, rules.parse_date(query.get("since"), f"queries[{index}].since", today)))
    await _charge(asker, len(parsed))
    histories = await _histories(sorted({e for e, _ in parsed}))
    start = await _window_start()
    answers = [(e164, since, rules.reassigned_answer(histories.get(e164, History(None)), since, start).value)
               for e164, since in parsed]
    await _log(asker, "reassigned", answers)
    return [{"phone_number": e164, "since": since, "result": answer} for e164, since, answer in answers]


async def camara(asker: Asker, body: object, *, bound_e164: str | None) -> bool:
    """CAMARA Number Recycling v0.2 ``check``. ``bound_e164`` is the number of a 3-legged token (a new
    holder's session), which must not name the number again."""
    if not isinstance(body, dict):
        raise CamaraError(400, "INVALID_ARGUMENT", "the body must be a JSON object")
    unknown = set(body) - {"phoneNumber", "specifiedDate"}
    if unknown:
        raise CamaraError(400, "INVALID_ARGUMENT", f"unknown property {sorted(unknown)[0]!r}")
    specified = rules.parse_date(body.get("specifiedDate"), "specifiedDate", now().date(), camara=True)
    phone = body.get("phoneNumber")
    if bound_e164 is not None:
        if phone is not None:
            raise CamaraError(422, "UNNECESSARY_IDENTIFIER", "the phone number is already identified by the access token")
        e164 = bound_e164
    else:
        if phone is None:
            raise CamaraError(422, "MISSING_IDENTIFIER", "the phone number cannot be identified: send phoneNumber")
        if not isinstance(phone, str) or not rules.CAMARA_PHONE.match(phone):
            raise CamaraError(400, "INVALID_ARGUMENT", "phoneNumber must be E.164 with a leading +")
        e164 = phone
    await _charge(asker, 1)
    history = (await _histories([e164])).get(e164, History(None))
    try:
        recycled = rules.recycled_since(history, specified)
    except CamaraError as exc:
        await _log(asker, "camara", [(e164, specified, exc.camara_code)])
        raise
    await _log(asker, "camara", [(e164, specified, "true" if recycled else "false")])
    return recycled


async def add_caller(name: str, daily_quota: int = 10000) -> tuple[uuid.UUID, str]:
    """A caller client and its API token (shown once)."""
    from app.errors import Conflict
    from app.services import clients

    name = name.strip() if isinstance(name, str) else ""
    if not name or len(name) > 100:
        raise InvalidRequest("a caller name of 1 to 100 characters is required", field="name")
    if not isinstance(daily_quota, int) or not 1 <= daily_quota <= 10_000_000:
        raise InvalidRequest("the daily quota is 1 to 10,000,000 numbers", field="daily_quota")
    caller_id = uuid.uuid4()
    async with write_transaction():
        if await Caller.exists().where(Caller.name == name):
            raise Conflict(f"a caller named {name!r} already exists")
        await Caller.insert(Caller(id=caller_id, name=name, daily_quota=daily_quota))
        token = await clients.issue("caller", caller_id)
        await audit.record("caller:add", actor="operator", subject=f"caller:{caller_id}",
                           detail={"name": name, "daily_quota": daily_quota})
    return caller_id, token
