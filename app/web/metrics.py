"""`GET /metrics` in Prometheus format, and the middleware that counts requests by route template."""

from __future__ import annotations

import time

from litestar import MediaType, Response, get
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from app.services import metrics


def metrics_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await app(scope, receive, send_wrapper)
        finally:
            route = scope.get("path_template") or "unmatched"
            metrics.record(scope.get("method", "GET"), route, status, time.perf_counter() - started)

    return middleware


@get("/metrics", include_in_schema=False, media_type=MediaType.TEXT)
async def prometheus() -> Response[str]:
    return Response(await metrics.exposition(), media_type="text/plain; version=0.0.4; charset=utf-8")
