"""`heirline worker`: timers, and push delivery of notices (RFC 8935 and Standard Webhooks).

Each delivery is its own task with a timeout and a per-endpoint limit, so a slow or dead endpoint
only ever holds its own slots, and once they have gone unanswered for a second none of the worker's
capacity. Notices are claimed with a lease (PostgreSQL: FOR UPDATE SKIP LOCKED),
so several workers share the work, and a worker killed mid-delivery loses nothing: its lease expires
and the notice is claimed again.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
from piccolo.columns.combination import WhereRaw
from standardwebhooks import Webhook

from app import audit
from app.clock import now
from app.delivery.guard import AddressRefused, GuardedResolver, refuse_literal
from app.domain import notices as rules
from app.crypto import sets
from app.notify import notifier
from app.services import legacy, notices, retention, streams
from app.settings import get_settings
from app.storage.engine import is_sqlite, refresh_statistics_if_stale, statements_on_the_loop, write_transaction
from app.storage.tables import Notice, Stream

log = logging.getLogger("heirline.worker")

LEASE = dt.timedelta(seconds=get_settings().delivery_lease_seconds)  # a crashed worker's claims free up after it
TIMEOUT_SECONDS = 10
PURGE_EVERY = 3600  # seconds between retention purges
PER_ENDPOINT = 4  # deliveries in flight to one host
CLAIMED_PER_STREAM = 2 * PER_ENDPOINT  # those, and as many signed and ready to go when one returns
# seconds after which a delivery still unanswered no longer counts against the worker's capacity (an
# endpoint answers in milliseconds or hangs): a hanging endpoint's claims, up to CLAIMED_PER_STREAM a
# stream, do not take the healthy endpoints' share; at most another ``capacity`` of them are held
STALLED_AFTER = 1.0
SIGN_BATCH = 16
MAX_RESPONSE_BYTES = 64 * 1024
PUSHED = (rules.PUSH, rules.WEBHOOKS)


async def claim(limit: int, busy: dict | None = None) -> list[dict]:
    """Take up to ``limit`` due push notices for this worker, under a lease; each comes with its stream.

    ``busy`` counts the notices each stream has claimed and not yet finished: a stream at its limit gets
    nothing more, so a slow endpoint cannot fill the worker with notices waiting for it.
    """
    moment = now()
    busy = busy or {}
    full = [stream for stream, count in busy.items() if count >= CLAIMED_PER_STREAM]
    # two conditions, two queries: each walks the (status, next_attempt_at) index from its start and
    # stops at its limit, so a claim costs the same whatever the number of notices already delivered (one
    # query with OR, joined to the stream, read every notice of every stream and sorted them: 70 ms a claim
    # at 100,000 notices)
    due = ((Notice.status == "sending") & (Notice.lease_until < moment),  # another worker's lease ran out
           (Notice.status == "pending") & (Notice.next_attempt_at <= moment))
    async with write_transaction():
        rows = []
        for condition in due:
            query = Notice.select(Notice.id, Notice.stream).where(condition & _of_push_streams()).order_by(
                Notice.next_attempt_at).limit(limit * 4)
            if full:
                query = query.where(Notice.stream.not_in(full))
            if not is_sqlite():
                query = query.lock_rows("UPDATE", skip_locked=True, of=(Notice,))
            rows += await query
        taken: dict = {}
        ids = []
        for row in rows:
            if busy.get(row["stream"], 0) + taken.get(row["stream"], 0) < CLAIMED_PER_STREAM:
                taken[row["stream"]] = taken.get(row["stream"], 0) + 1
                ids.append(row["id"])
                if len(ids) == limit:
                    break
        if not ids:
            return []
        claimed = await Notice.update({Notice.status: "sending", Notice.lease_until: moment + LEASE,
                                       Notice.attempts: Notice.attempts + 1}).where(Notice.id.is_in(ids)).returning(
            *Notice.all_columns())
        order = {notice_id: place for place, notice_id in enumerate(ids)}
        claimed.sort(key=lambda notice: order[notice["id"]])  # lapsed first, then by due time (PostgreSQL's
        # RETURNING keeps no order)
        # on the same connection: on SQLite outside a transaction, Piccolo would open (and close) a new
        # connection, with its own thread, for this read
        by_id = {r["id"]: r for r in await Stream.select().where(
            Stream.id.is_in(list({n["stream"] for n in claimed})))}
    for notice in claimed:
        notice["stream_row"] = by_id[notice["stream"]]
    return claimed


def _of_push_streams() -> WhereRaw:
    """Notices of enabled push streams, as a filter rather than a join: as a join, PostgreSQL planned from
    the stream table (small, and seldom analyzed) and read and sorted every pending notice per claim."""
    streams = 'SELECT id FROM ssf_stream WHERE status = {} AND delivery_method IN ({}, {})'
    if is_sqlite():
        return WhereRaw(f'"notice"."stream" IN ({streams})', "enabled", *PUSHED)
    return WhereRaw(f'"notice"."stream" = ANY(ARRAY({streams}))', "enabled", *PUSHED)


def _start_signing(claimed: list[dict]) -> None:
    """Start signing the SETs of claimed push notices that have none yet, in small batches in threads.

    Each such notice gets its batch's future and its place in it (``signing``): its delivery waits for
    that batch only, while deliveries already signed go on. The token is kept with the notice so that a
    retry sends the same bytes.
    """
    waiting: dict[str, list[dict]] = {}
    for notice in claimed:
        if notice["stream_row"]["delivery_method"] == rules.PUSH and not notice["token"]:
            waiting.setdefault(notice["stream_row"]["signing_alg"], []).append(notice)
    for alg, group in waiting.items():
        for start in range(0, len(group), SIGN_BATCH):
            batch = group[start:start + SIGN_BATCH]
            signing = asyncio.ensure_future(sets.sign_many([json.loads(n["claims"]) for n in batch], alg))
            for place, notice in enumerate(batch):
                notice["signing"] = (signing, place)


class Outcome:
    DELIVERED, REJECTED, GONE, RETRY, REFUSED = "delivered", "rejected", "gone", "retry", "refused"


def classify(method: str, status: int, body: bytes) -> tuple[str, str]:
    """What an endpoint's answer means for the notice."""
    if method == rules.PUSH and status == 202 or method == rules.WEBHOOKS and 200 <= status < 300:
        return Outcome.DELIVERED, ""
    if status == 410:
        return Outcome.GONE, "410 Gone: the endpoint asked to stop"
    if method == rules.PUSH and status == 400:
        try:
            answer = json.loads(body or b"{}")
            err = answer.get("err") if isinstance(answer, dict) else None
        except ValueError:
            err = None
        if isinstance(err, str):
            return Outcome.REJECTED, f"{err}: {str(answer.get('description', ''))[:200]}"
    return Outcome.RETRY, f"HTTP {status}"


class Deliverer:
    def __init__(self) -> None:
        self.session: aiohttp.ClientSession | None = None
        self.limits: dict[str, asyncio.Semaphore] = {}

    async def __aenter__(self) -> "Deliverer":
        connector = aiohttp.TCPConnector(resolver=GuardedResolver(), limit=200, ttl_dns_cache=60)
        self.session = aiohttp.ClientSession(connector=connector,
                                             timeout=aiohttp.ClientTimeout(total=TIMEOUT_SECONDS))
        return self

    async def __aexit__(self, *exc) -> None:
        await self.session.close()

    async def deliver(self, notice: dict) -> "Result":
        """Send one notice; the answer is recorded later, together with others (see record_results)."""
        stream = notice["stream_row"]
        host = urlsplit(stream["endpoint_url"]).netloc
        limit = self.limits.setdefault(host, asyncio.Semaphore(PER_ENDPOINT))
        result = Result(notice, stream)
        if "signing" in notice:  # signed for this attempt: kept with the outcome unless delivered
            signing, place = notice.pop("signing")
            result.token, result.kid = (await signing)[place]
            notice["token"] = result.token
        async with limit:
            try:
                result.outcome, result.detail = await self._send(notice, stream)
            except AddressRefused as exc:
                result.outcome, result.detail = Outcome.REFUSED, str(exc)
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                result.outcome, result.detail = Outcome.RETRY, f"{type(exc).__name__}: {exc}"[:300]
        return result

    async def _send(self, notice: dict, stream: dict) -> tuple[str, str]:
        refuse_literal(stream["endpoint_url"])
        if stream["delivery_method"] == rules.PUSH:
            token = notice["token"]  # signed when claimed, once; kept if it has to be sent again
            headers = {"Content-Type": "application/secevent+jwt", "Accept": "application/json"}
            authorization = streams.authorization_header(stream)
            if authorization:
                headers["Authorization"] = authorization
            body = token.encode()
        else:
            body, headers = webhook_message(notice, stream)
        async with self.session.post(stream["endpoint_url"], data=body, headers=headers,
                                     allow_redirects=False) as response:
            answer = await response.content.read(MAX_RESPONSE_BYTES)
            return classify(stream["delivery_method"], response.status, answer)


def webhook_message(notice: dict, stream: dict) -> tuple[bytes, dict]:
    """The same notice as a Standard Webhooks message, `v1`-signed with the stream's secret."""
    claims = json.loads(notice["claims"])
    [(event, payload)] = claims["events"].items()
    moment = now()
    data = {**payload, **({"phone_number": claims["sub_id"]["phone_number"]} if "phone_number" in claims["sub_id"]
                          else {"stream_id": claims["sub_id"].get("id")})}
    body = json.dumps({"type": rules.webhook_type(get_settings().issuer, event),
                       "timestamp": moment.isoformat().replace("+00:00", "Z"), "data": data},
                      ensure_ascii=False).encode()
    msg_id = f"msg_{uuid.UUID(str(notice['id'])).hex}"
    signature = Webhook(streams.webhook_secret(stream)).sign(msg_id, moment, body.decode())
    return body, {"content-type": "application/json", "webhook-id": msg_id,
                  "webhook-timestamp": str(int(moment.timestamp())), "webhook-signature": signature}


@dataclass
class Result:
    notice: dict
    stream: dict
    outcome: str = Outcome.RETRY
    detail: str = ""
    token: str | None = None  # a SET signed for this attempt
    kid: str = ""


async def record_results(results: list[Result]) -> None:
    """Write what the endpoints answered, for many deliveries in one transaction."""
    if not results:
        return
    moment = now()
    delivered = [r.notice["id"] for r in results if r.outcome == Outcome.DELIVERED]
    others = [r for r in results if r.outcome != Outcome.DELIVERED]
    async with write_transaction():
        # only notices still "sending" are ours: otherwise the lease ran out and another worker took them
        if delivered:
            await notices.mark_delivered(Notice.id.is_in(delivered) & (Notice.status == "sending"))
        still_ours = {r["id"] for r in await Notice.select(Notice.id).where(
            Notice.id.is_in([r.notice["id"] for r in others]) & (Notice.status == "sending"))} if others else set()
        for result in others:
            notice, stream, detail = result.notice, result.stream, result.detail[:300]
            if notice["id"] not in still_ours:
                continue
            signed = {Notice.token: result.token, Notice.kid: result.kid} if result.token else {}
            if result.outcome == Outcome.GONE:
                await Stream.update({Stream.status: "disabled", Stream.status_reason: detail}).where(
                    Stream.id == stream["id"])
                await Notice.update({Notice.status: "dead", Notice.last_error: detail}).where(
                    (Notice.stream == stream["id"]) & Notice.status.is_in(["pending", "sending"]))
                await audit.record("stream:disabled", actor="worker", subject=f"stream:{stream['id']}",
                                   detail={"reason": detail})
            elif result.outcome in (Outcome.REJECTED, Outcome.REFUSED):
                await Notice.update({Notice.status: "failed", Notice.last_error: detail, Notice.lease_until: None,
                                     **signed}).where(Notice.id == notice["id"])
            else:
                retry_at = rules.next_attempt(notice["attempts"], moment, notice["deadline"])
                if retry_at is None:
                    await Notice.update({Notice.status: "dead", Notice.last_error: f"deadline passed; last: {detail}"[:300],
                                         Notice.lease_until: None, **signed}).where(Notice.id == notice["id"])
                    await audit.record("notice:dead", actor="worker", subject=f"notice:{notice['id']}",
                                       detail={"error": detail[:200]})
                else:
                    await Notice.update({Notice.status: "pending", Notice.next_attempt_at: retry_at,
                                         Notice.last_error: detail, Notice.lease_until: None, **signed}).where(
                        Notice.id == notice["id"])


async def send_messages(stop: asyncio.Event, every: float = 1.0) -> None:
    """Until ``stop`` is set: the outbox's messages for the configured transports (SMTP, the SMS gateway),
    as they fall due, beside the deliveries (a slow mail server holds up no notice)."""
    router = notifier()
    while router.by_channel and not stop.is_set():
        try:
            attempted = await router.deliver_due()
        except Exception:  # the next round retries; the messages stay in the outbox
            log.exception("sending messages failed")
            attempted = 0
        if not attempted:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=every)


async def run(stop: asyncio.Event, capacity: int = 64, idle: float = 0.5) -> None:
    """Deliver until ``stop`` is set; also runs the timers that write notices when they fall due, and
    sends the outbox's messages."""
    sender = asyncio.create_task(send_messages(stop))
    try:
        await _deliver(stop, capacity, idle)
    finally:
        stop.set()
        await sender


async def _deliver(stop: asyncio.Event, capacity: int, idle: float) -> None:
    inflight: set[asyncio.Task] = set()
    busy: dict = {}  # deliveries in flight per stream
    streams_of: dict[asyncio.Task, tuple[object, float]] = {}  # each delivery's stream, and when it was claimed
    last_timers = last_purge = 0.0
    loop = asyncio.get_running_loop()
    async with Deliverer() as deliverer:
        while not stop.is_set():
            try:
                if loop.time() - last_timers > 5:
                    last_timers = loop.time()
                    await notices.write_due()
                    await legacy.run_timers()
                    await refresh_statistics_if_stale("notice")  # claims walk its index only if planned to
                if loop.time() - last_purge > PURGE_EVERY:
                    last_purge = loop.time()
                    await retention.purge()
                stalled = sum(1 for task in inflight if loop.time() - streams_of[task][1] > STALLED_AFTER)
                room = capacity - len(inflight) + min(stalled, capacity)
                if room >= max(1, capacity // 8) or not inflight:  # claim in batches, not one by one
                    with statements_on_the_loop():  # (SQLite: a few short statements while deliveries wait)
                        batch = await claim(room, busy)
                    _start_signing(batch)
                    for notice in batch:
                        busy[notice["stream"]] = busy.get(notice["stream"], 0) + 1
                        task = asyncio.create_task(deliverer.deliver(notice))
                        streams_of[task] = (notice["stream"], loop.time())
                        inflight.add(task)
            except Exception:  # a failing round must not stop the worker; the next round retries
                log.exception("worker round failed")
            if inflight:
                done, inflight = await asyncio.wait(inflight, timeout=idle, return_when=asyncio.FIRST_COMPLETED)
                if done:  # let answers arriving together be recorded together
                    await asyncio.sleep(0.005)
                    done |= {task for task in inflight if task.done()}
                    inflight -= done
                finished = []
                for task in done:
                    stream, _ = streams_of.pop(task)
                    busy[stream] -= 1
                    if not busy[stream]:
                        del busy[stream]
                    if task.exception():  # its lease runs out and the notice is claimed again
                        log.error("delivery failed: %s", task.exception())
                    else:
                        finished.append(task.result())
                try:
                    with statements_on_the_loop():
                        await record_results(finished)
                except Exception:  # unrecorded deliveries are retried when their lease runs out
                    log.exception("recording %d deliveries failed", len(finished))
            else:
                try:
                    await asyncio.wait_for(stop.wait(), timeout=idle)
                except asyncio.TimeoutError:
                    pass
        if inflight:
            done, _ = await asyncio.wait(inflight, timeout=TIMEOUT_SECONDS + 1)
            await record_results([t.result() for t in done if not t.exception()])


async def run_until_idle(max_rounds: int = 200) -> None:
    """Deliver everything due now and return (for tests and one-shot runs)."""
    async with Deliverer() as deliverer:
        await notices.write_due()
        await legacy.run_timers()
        await retention.purge()
        await notifier().deliver_due()
        for _ in range(max_rounds):
            batch = await claim(64)
            if not batch:
                return
            _start_signing(batch)
            await record_results(list(await asyncio.gather(*(deliverer.deliver(n) for n in batch))))
