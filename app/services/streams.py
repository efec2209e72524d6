"""Platforms as clients and their Shared Signals streams (SSF 1.0 stream management)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from app import audit
from app.clock import now
from app.crypto.envelope import WrappedKey, seal, unseal
from app.delivery.guard import check_url
from app.domain import notices as rules
from app.domain.numbers import mask, normalize
from app.errors import AuthenticationFailed, Conflict, InvalidRequest, NotFound
from app.services import clients
from app.settings import get_settings
from app.storage.engine import write_transaction
from app.storage.tables import Notice, Platform, Stream, StreamSubject

STATUSES = ("enabled", "paused", "disabled")
RECEIVER_FIELDS = {"events_requested", "delivery", "description", "signing_alg"}


@dataclass(frozen=True)
class PlatformCredentials:
    id: uuid.UUID
    api_token: str
    stream_id: str | None = None
    webhook_secret: str | None = None


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:64] or uuid.uuid4().hex[:12]


async def add_platform(name: str, *, push_url: str | None = None, webhook_url: str | None = None,
                       poll: bool = False, all_subjects: bool = False) -> PlatformCredentials:
    """A platform client: its catalog entry (an existing one of that name is reused), a token, maybe a stream."""
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidRequest("a platform name of 1 to 100 characters is required", field="name")
    if sum(bool(x) for x in (push_url, webhook_url, poll)) > 1:
        raise InvalidRequest("choose one of --push-url, --webhook-url and --poll")
    delivery = None
    if push_url:
        delivery = {"method": rules.PUSH, "endpoint_url": await check_url(push_url)}
    elif webhook_url:
        delivery = {"method": rules.WEBHOOKS, "endpoint_url": await check_url(webhook_url)}
    elif poll:
        delivery = {"method": rules.POLL}
    async with write_transaction():
        row = await Platform.select(Platform.id).where((Platform.name == name) | (Platform.slug == _slug(name))).first()
        if row is None:
            platform_id = uuid.uuid4()
            await Platform.insert(Platform(id=platform_id, slug=_slug(name), name=name, name_zh=name, region="INTL",
                                           category="other"))
        else:
            platform_id = row["id"]
        await Platform.update({Platform.default_subjects: "ALL" if all_subjects else "NONE"}).where(
            Platform.id == platform_id)
        token = await clients.issue("platform", platform_id)
        await audit.record("platform:client:add", actor="operator", subject=f"platform:{platform_id}",
                           detail={"name": name, "default_subjects": "ALL" if all_subjects else "NONE"})
        stream_id = secret = None
        if delivery:
            platform = await Platform.select().where(Platform.id == platform_id).first()
            config = await _create(platform, {"delivery": delivery})
            stream_id = config["stream_id"]
            secret = config["delivery"].get("webhook_secret")
    return PlatformCredentials(platform_id, token, stream_id, secret)


async def platform_by_token(token: str | None) -> dict:
    platform_id = await clients.resolve(token, "platform")
    if platform_id is None:
        raise AuthenticationFailed("send a platform API token: Authorization: Bearer hl_platform_...")
    return await Platform.select().where(Platform.id == platform_id).first()


# ---------------------------------------------------------------- configuration objects

def _events_delivered(requested: list[str]) -> list[str]:
    supported = rules.events_supported(get_settings().issuer)
    return [e for e in supported if e in requested] if requested else supported


def config(stream: dict, platform: dict) -> dict:
    issuer = get_settings().issuer
    requested = json.loads(stream["events_requested"])
    delivery: dict[str, Any] = {"method": stream["delivery_method"]}
    if stream["delivery_method"] == rules.POLL:
        delivery["endpoint_url"] = f"{issuer}/ssf/poll/{stream['stream_id']}"
    else:
        delivery["endpoint_url"] = stream["endpoint_url"]
    return {
        "stream_id": stream["stream_id"], "iss": issuer, "aud": str(platform["id"]),
        "events_supported": rules.events_supported(issuer), "events_requested": requested,
        "events_delivered": _events_delivered(requested), "delivery": delivery,
        "description": stream["description"], "signing_alg": stream["signing_alg"],
        "default_subjects": platform["default_subjects"], "min_verification_interval": 10,
    }


async def _validated(body: Any, *, partial: bool) -> dict:
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object")
    unknown = set(body) - RECEIVER_FIELDS - {"stream_id"} - {"iss", "aud", "events_supported", "events_delivered",
                                                              "min_verification_interval", "default_subjects"}
    if unknown:
        raise InvalidRequest(f"unknown stream properties: {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {}
    if "events_requested" in body or not partial:
        requested = body.get("events_requested", [])
        if not isinstance(requested, list) or not all(isinstance(e, str) and len(e) < 300 for e in requested):
            raise InvalidRequest("events_requested is a list of event-type URIs", field="events_requested")
        values["events_requested"] = json.dumps(requested[:20])
    if "description" in body or not partial:
        description = body.get("description") or ""
        if not isinstance(description, str) or len(description) > 200:
            raise InvalidRequest("description is a string of at most 200 characters", field="description")
        values["description"] = description
    if "signing_alg" in body or not partial:
        alg = body.get("signing_alg") or "RS256"
        if alg not in ("RS256", "ES256"):
            raise InvalidRequest("signing_alg is RS256 or ES256", field="signing_alg")
        values["signing_alg"] = alg
    if "delivery" in body or not partial:
        delivery = body.get("delivery") or {"method": rules.POLL}
        if not isinstance(delivery, dict) or delivery.get("method") not in rules.METHODS:
            raise InvalidRequest(f"delivery.method is one of {', '.join(rules.METHODS)}", field="delivery")
        values["delivery_method"] = delivery["method"]
        values["endpoint_url"] = ""
        if delivery["method"] in (rules.PUSH, rules.WEBHOOKS):
            values["endpoint_url"] = await check_url(delivery.get("endpoint_url", ""))
        values["authorization_header"] = delivery.get("authorization_header")
        if values["authorization_header"] is not None and (
                not isinstance(values["authorization_header"], str) or len(values["authorization_header"]) > 1000):
            raise InvalidRequest("authorization_header is a string", field="delivery")
    return values


def _sealed_columns(stream_uuid: uuid.UUID, values: dict) -> dict:
    keyring = get_settings().keyring
    columns = {k: v for k, v in values.items() if k != "authorization_header"}
    if "delivery_method" in values:
        header = values.get("authorization_header")
        if header:
            sealed = seal(keyring, f"stream:{stream_uuid}:authorization", header.encode())
            columns.update(authorization_ct=sealed.blob, authorization_kid=sealed.kek_id)
        else:
            columns.update(authorization_ct=None, authorization_kid="")
    return columns


async def _create(platform: dict, body: Any) -> dict:
    values = await _validated(body, partial=False)
    if await Stream.exists().where(Stream.platform == platform["id"]):
        raise Conflict("this platform already has a stream: update or delete it")
    stream_uuid = uuid.uuid4()
    columns = _sealed_columns(stream_uuid, values)
    secret_text = None
    if values["delivery_method"] == rules.WEBHOOKS:
        raw = secrets.token_bytes(32)
        secret_text = "whsec_" + base64.b64encode(raw).decode()
        sealed = seal(get_settings().keyring, f"stream:{stream_uuid}:webhook-secret", raw)
        columns.update(webhook_secret_ct=sealed.blob, webhook_secret_kid=sealed.kek_id)
    await Stream.insert(Stream(id=stream_uuid, stream_id=uuid.uuid4().hex, platform=platform["id"], **columns))
    await audit.record("stream:create", actor=f"platform:{platform['id']}", subject=f"stream:{stream_uuid}",
                       detail={"method": values["delivery_method"]})
    stream = await Stream.select().where(Stream.id == stream_uuid).first()
    result = config(stream, platform)
    if secret_text:
        result["delivery"]["webhook_secret"] = secret_text  # shown once
    return result


async def create(platform: dict, body: Any) -> dict:
    async with write_transaction():
        return await _create(platform, body)


async def _stream(platform: dict, stream_id: Any) -> dict:
    if not isinstance(stream_id, str) or not stream_id:
        raise InvalidRequest("stream_id is required", field="stream_id")
    row = await Stream.select().where((Stream.stream_id == stream_id) & (Stream.platform == platform["id"])).first()
    if row is None:
        raise NotFound("no such stream")
    return row


async def read(platform: dict, stream_id: str | None) -> dict | list[dict]:
    if stream_id is None:
        return [config(s, platform) for s in await Stream.select().where(Stream.platform == platform["id"])]
    return config(await _stream(platform, stream_id), platform)


async def update(platform: dict, body: Any, *, replace: bool) -> dict:
    values = await _validated(body, partial=not replace)
    async with write_transaction():
        stream = await _stream(platform, body.get("stream_id"))
        columns = _sealed_columns(stream["id"], values)
        columns["updated_at"] = now()
        await Stream.update({getattr(Stream, k): v for k, v in columns.items()}).where(Stream.id == stream["id"])
        method = values.get("delivery_method", stream["delivery_method"])
        if method != stream["delivery_method"]:  # what waited for a poll is now ours to send, or the reverse
            await Notice.update({Notice.next_attempt_at: rules.first_attempt(method, columns["updated_at"])}).where(
                (Notice.stream == stream["id"]) & (Notice.status == "pending"))
        await audit.record("stream:update", actor=f"platform:{platform['id']}", subject=f"stream:{stream['id']}",
                           detail={"fields": sorted(values)})
    return config(await _stream(platform, body.get("stream_id")), platform)


async def delete(platform: dict, stream_id: str | None) -> None:
    async with write_transaction():
        stream = await _stream(platform, stream_id)
        # undelivered notices die with the stream; their tasks stay pending for the operator to see
        await Notice.update({Notice.status: "dead", Notice.last_error: "stream deleted"}).where(
            (Notice.stream == stream["id"]) & Notice.status.is_in(["pending", "sending"]))
        # the row stays (notices refer to it) but is detached, so the platform may create a new stream
        await Stream.update({Stream.status: "disabled", Stream.status_reason: "deleted by the receiver",
                             Stream.platform: None}).where(Stream.id == stream["id"])
        await audit.record("stream:delete", actor=f"platform:{platform['id']}", subject=f"stream:{stream['id']}")


async def status(platform: dict, stream_id: str | None) -> dict:
    stream = await _stream(platform, stream_id)
    body = {"stream_id": stream["stream_id"], "status": stream["status"]}
    if stream["status_reason"]:
        body["reason"] = stream["status_reason"]
    return body


async def set_status(platform: dict, body: Any) -> dict:
    if not isinstance(body, dict) or body.get("status") not in STATUSES:
        raise InvalidRequest(f"status is one of {', '.join(STATUSES)}", field="status")
    reason = body.get("reason") or ""
    if not isinstance(reason, str) or len(reason) > 200:
        raise InvalidRequest("reason is a string of at most 200 characters", field="reason")
    async with write_transaction():
        stream = await _stream(platform, body.get("stream_id"))
        await Stream.update({Stream.status: body["status"], Stream.status_reason: reason,
                             Stream.updated_at: now()}).where(Stream.id == stream["id"])
        await audit.record("stream:status", actor=f"platform:{platform['id']}", subject=f"stream:{stream['id']}",
                           detail={"status": body["status"]})
    return await status(platform, body.get("stream_id"))


def _subject_number(subject: Any) -> str:
    if not isinstance(subject, dict) or subject.get("format") not in ("phone_number", "phone"):
        raise InvalidRequest('subject must be {"format": "phone_number", "phone_number": "+..."}', field="subject")
    return normalize(subject.get("phone_number"), get_settings().default_region).e164


async def add_subject(platform: dict, body: Any) -> None:
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object")
    e164 = _subject_number(body.get("subject"))
    async with write_transaction():
        stream = await _stream(platform, body.get("stream_id"))
        if not await StreamSubject.exists().where((StreamSubject.stream == stream["id"]) & (StreamSubject.e164 == e164)):
            await StreamSubject.insert(StreamSubject(stream=stream["id"], e164=e164))
            await audit.record("stream:subject:add", actor=f"platform:{platform['id']}", subject=mask(e164))


async def remove_subject(platform: dict, body: Any) -> None:
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object")
    e164 = _subject_number(body.get("subject"))
    async with write_transaction():
        stream = await _stream(platform, body.get("stream_id"))
        await StreamSubject.delete().where((StreamSubject.stream == stream["id"]) & (StreamSubject.e164 == e164))
        await audit.record("stream:subject:remove", actor=f"platform:{platform['id']}", subject=mask(e164))


async def verify(platform: dict, body: Any) -> None:
    """Queue the SSF verification event for the stream (sent asynchronously, as the spec allows)."""
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object")
    state = body.get("state")
    if state is not None and (not isinstance(state, str) or len(state) > 500):
        raise InvalidRequest("state is a string of at most 500 characters", field="state")
    async with write_transaction():
        stream = await _stream(platform, body.get("stream_id"))
        jti = uuid.uuid4()
        moment = now()
        claims = rules.claims(issuer=get_settings().issuer, jti=jti.hex, aud=str(platform["id"]), iat=moment,
                              sub_id={"format": "opaque", "id": stream["stream_id"]}, event=rules.VERIFICATION,
                              payload={"state": state} if state else {})
        await Notice.insert(Notice(id=jti, stream=stream["id"], event=rules.VERIFICATION, claims=json.dumps(claims),
                                   deadline=moment + dt.timedelta(days=1)))


def webhook_secret(stream: dict) -> bytes:
    return unseal(get_settings().keyring, f"stream:{stream['id']}:webhook-secret",
                  WrappedKey(stream["webhook_secret_kid"], bytes(stream["webhook_secret_ct"])))


def authorization_header(stream: dict) -> str | None:
    if stream["authorization_ct"] is None:
        return None
    return unseal(get_settings().keyring, f"stream:{stream['id']}:authorization",
                  WrappedKey(stream["authorization_kid"], bytes(stream["authorization_ct"]))).decode()
