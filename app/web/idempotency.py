"""ASGI middleware applying ``Idempotency-Key`` to the JSON API's POSTs.

Credential-issuing calls (sign-up and login) are left out: their answers hold a session token,
which must never be stored, and retrying them simply issues a new token.
"""

from __future__ import annotations

import hashlib
import json

from litestar.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import HeirlineError
from app.services import idempotency
from app.domain.evidence import MAX_REQUEST_BYTES
from app.settings import get_settings

EXCLUDED = {"/v1/owners", "/v1/sessions"}  # answers that carry a session token are never stored
EXCLUDED_SUFFIXES = (":batch", "/accept")  # bulk files are idempotent row by row; /accept answers a token
UPLOAD_SUFFIX = "/evidence"
MAX_KEY = 255


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


async def _send_problem(send: Send, status: int, detail: str, err: str, retry_after: int | None = None) -> None:
    body = json.dumps({"type": "about:blank", "title": "Conflict" if status == 409 else "Invalid request",
                       "status": status, "detail": detail, "err": err}).encode()
    headers = [(b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode())]
    if retry_after:
        headers.append((b"retry-after", str(retry_after).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def idempotency_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        key = _header(scope, b"idempotency-key") if scope["type"] == "http" else None
        path = scope.get("path", "")
        if (key is None or scope.get("method") != "POST" or not path.startswith("/v1/") or path in EXCLUDED
                or path.endswith(EXCLUDED_SUFFIXES)):
            await app(scope, receive, send)
            return
        if not key or len(key) > MAX_KEY:
            await _send_problem(send, 400, f"Idempotency-Key must be 1 to {MAX_KEY} characters", "invalid_request")
            return

        limit = MAX_REQUEST_BYTES if path.endswith(UPLOAD_SUFFIX) else get_settings().max_body_bytes
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > limit or not message.get("more_body"):
                break
        if size > limit:
            await _send_problem(send, 413, "Request body too large", "invalid_request")
            return
        body = b"".join(chunks)

        client = _header(scope, b"authorization") or (scope.get("client") or ("anonymous",))[0]
        key_hash = hashlib.sha256(f"{client}\x1f{key}".encode()).hexdigest()
        fingerprint = hashlib.sha256(f"{scope['method']} {path}?{scope.get('query_string', b'').decode()}".encode()
                                     + b"\n" + body).hexdigest()
        try:
            stored = await idempotency.begin(key_hash, fingerprint)
        except HeirlineError as exc:
            await _send_problem(send, exc.status, exc.detail, exc.err, exc.retry_after)
            return
        if stored is not None:
            await send({"type": "http.response.start", "status": stored.status, "headers": [
                (b"content-type", stored.content_type.encode()), (b"content-length", str(len(stored.body)).encode()),
                (b"idempotent-replayed", b"true")]})
            await send({"type": "http.response.body", "body": stored.body})
            return

        replayed = False

        async def replay_receive() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        status = 500
        content_type = ""
        answer: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal status, content_type
            if message["type"] == "http.response.start":
                status = message["status"]
                for name, value in message.get("headers", []):
                    if name.lower() == b"content-type":
                        content_type = value.decode("latin-1")
            elif message["type"] == "http.response.body":
                answer.append(message.get("body", b""))
            await send(message)

        try:
            await app(scope, replay_receive, capture)
        finally:
            if status >= 500 or status == 429:
                await idempotency.abandon(key_hash)
            else:
                await idempotency.finish(key_hash, idempotency.StoredAnswer(status, content_type, b"".join(answer)))

    return middleware
