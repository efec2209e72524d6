"""Echo ``x-correlator`` and add security headers to every answer."""

from __future__ import annotations

from litestar.datastructures import MutableScopeHeaders
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


def headers_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        correlator = None
        for name, value in scope.get("headers", []):
            if name == b"x-correlator":
                correlator = value.decode("latin-1")[:200]
                break
        path = scope.get("path", "")

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableScopeHeaders.from_message(message)
                if correlator is not None:
                    headers["x-correlator"] = correlator
                for key, value in SECURITY_HEADERS.items():
                    if path.startswith("/schema") and key == "content-security-policy":
                        continue  # the interactive docs load their own scripts
                    headers.setdefault(key, value)
            await send(message)

        await app(scope, receive, send_wrapper)

    return middleware
