"""Real local HTTP receivers for outbound notices, each with a behaviour."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    """An HTTP server on 127.0.0.1 in its own thread. ``behaviour`` decides each answer:

    ``ok`` 202 · ``ok200`` 200 · ``flaky`` 500 then 202 · ``hang`` sleeps · ``reject`` 400 {"err"} · ``gone`` 410.
    """

    def __init__(self, behaviour: str = "ok", hang_seconds: float = 5.0):
        self.behaviour = behaviour
        self.hang_seconds = hang_seconds
        self.requests: list[tuple[dict, bytes]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with receiver.lock:
                    receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                    count = len(receiver.requests)
                status, answer = receiver.answer(count)
                if status is None:
                    return
                self.send_response(status)
                if answer:
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(answer)))
                self.end_headers()
                if answer:
                    self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def answer(self, count: int) -> tuple[int | None, bytes]:
        if self.behaviour == "ok":
            return 202, b""
        if self.behaviour == "ok200":
            return 200, b""
        if self.behaviour == "slow":  # a platform that takes a moment: crashes land mid-delivery
            time.sleep(0.05)
            return 202, b""
        if self.behaviour == "flaky":
            return (500, b"") if count == 1 else (202, b"")
        if self.behaviour == "hang":
            time.sleep(self.hang_seconds)
            return 202, b""
        if self.behaviour == "reject":
            return 400, json.dumps({"err": "invalid_audience", "description": "not for us"}).encode()
        if self.behaviour == "gone":
            return 410, b""
        raise AssertionError(self.behaviour)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/events"

    def __enter__(self) -> "Receiver":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def bodies(self) -> list[bytes]:
        with self.lock:
            return [body for _, body in self.requests]
