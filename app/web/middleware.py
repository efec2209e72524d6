"""Echo ``x-correlator`` and add security headers to every answer."""

from __future__ import annotations

from litestar.types import ASGIApp, Message, Receive, Scope, Send

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "content-security-policy": (
        "default-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
        "form-action 'self'; base-uri 'none'; object-src 'none'"
    ),
}
_ENCODED = [(name.encode(), value.encode()) for name, value in SECURITY_HEADERS.items()]
_ENCODED_FOR_DOCS = [(name, value) for name, value in _ENCODED if name != b"content-security-policy"]


def headers_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        correlator = None
        for name, value in scope.get("headers", []):
            if name == b"x-correlator":
                correlator = value[:200]
                break
        extra = _ENCODED_FOR_DOCS if scope.get("path", "").startswith("/schema") else _ENCODED  # the docs load their own scripts

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(name, value) for name, value in message.get("headers", ()) if name.lower() != b"x-correlator"]
                present = {name.lower() for name, _ in headers}
                headers += [header for header in extra if header[0] not in present]
                if correlator is not None:
                    headers.append((b"x-correlator", correlator))
                message["headers"] = headers
            await send(message)

        await app(scope, receive, send_wrapper)

    return middleware
