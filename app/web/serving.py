"""`heirline serve`: uvicorn, and with several workers a listening socket of each worker's own.

uvicorn's workers share one listening socket, and whichever wakes first accepts every connection
waiting: a client that opens a few keep-alive connections at once (a carrier's batch client, a proxy's
pool, a load generator) often has them all on one worker while the other idles. Measured: four and
sixteen connections of clearance batches, all on one of two workers, half the machine unused. On Linux
each worker here binds its own socket to the port with ``SO_REUSEPORT``, and the kernel spreads new
connections across the workers by their addresses. The parent starts the workers, starts another when
one dies, and on SIGTERM or SIGINT stops them all (each finishes the requests it has); a worker whose
parent dies stops on its own.

``SO_REUSEPORT`` would let a second Heirline started by the same user on the same port share it; the
parent refuses to start when something already answers on the port.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time

import uvicorn

log = logging.getLogger("uvicorn.error")
APP = "app.asgi:create_app"
STARTUP_FAILURE = 3  # uvicorn's exit status when a server could not start


def serve(host: str, port: int, workers: int, log_level: str) -> None:
    options = dict(factory=True, host=host, port=port, workers=workers, proxy_headers=True, log_level=log_level)
    if workers == 1 or port == 0 or not reuse_port_spreads():  # port 0: each worker would pick a port of its own
        uvicorn.run(APP, **options)
        return
    sys.exit(Workers(uvicorn.Config(APP, **options), workers).run())


def reuse_port_spreads() -> bool:
    """Whether the kernel spreads connections across sockets sharing a port (Linux; other systems
    accept the option but hand every connection to one socket)."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def listener(host: str, port: int) -> socket.socket:
    """A socket bound to the port in its ``SO_REUSEPORT`` group (uvicorn makes it listen)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


class _Server(uvicorn.Server):
    """uvicorn's server, telling the parent once it listens."""

    def __init__(self, config: uvicorn.Config, ready) -> None:
        super().__init__(config)
        self.ready = ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self.ready.set()


def _answers(host: str, port: int) -> bool:
    """Whether something accepts connections on the port (on every address: at the loopback one)."""
    target = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    try:
        with socket.create_connection((target, port), timeout=1):
            return True
    except OSError:
        return False


def _worker(config: uvicorn.Config, ready, parent: int) -> None:
    """A worker process: its own socket, then uvicorn's server on it, until it is told to stop or its
    parent is gone."""
    config.configure_logging()
    server = _Server(config, ready)
    threading.Thread(target=_stop_with_parent, args=(server, parent), name="parent-watch", daemon=True).start()
    server.run(sockets=[listener(config.host, config.port)])


def _stop_with_parent(server: uvicorn.Server, parent: int, every: float = 0.5) -> None:
    """Stop the worker (finishing the requests it has) once its parent has died without stopping it (killed,
    or out of memory): a worker left behind would go on answering, with the old code, on a port that a
    new ``heirline serve`` then refuses to share."""
    while os.getppid() == parent:
        time.sleep(every)
    log.warning("the server's parent process %d is gone; worker %d stopping", parent, os.getpid())
    server.should_exit = True


class Workers:
    """The parent: starts ``count`` workers, replaces one that dies, stops them all when told to."""

    def __init__(self, config: uvicorn.Config, count: int):
        self.config, self.count = config, count
        self.context = multiprocessing.get_context("spawn")  # a fresh interpreter, as uvicorn's workers
        self.stopping = threading.Event()

    def run(self) -> int:
        self.config.configure_logging()
        host, port = self.config.host, self.config.port
        if _answers(host, port):  # another server (a Heirline too) already listens there: do not share it
            log.error("cannot listen on %s:%d: a server is already listening there", host, port)
            return STARTUP_FAILURE
        try:
            listener(host, port).close()  # a port another program holds without SO_REUSEPORT fails here
        except OSError as exc:
            log.error("cannot listen on %s:%d: %s", host, port, exc)
            return STARTUP_FAILURE
        for name in ("SIGTERM", "SIGINT", "SIGHUP"):
            signal.signal(getattr(signal, name), lambda *_: self.stopping.set())
        workers = [self._start() for _ in range(self.count)]
        log.info("Heirline running on http://%s:%d with %d workers, each on its own socket (Press CTRL+C to quit)",
                 self.config.host, self.config.port, self.count)
        status = 0
        while not self.stopping.wait(0.5):
            for index, (process, ready) in enumerate(workers):
                if process.is_alive():
                    continue
                if not ready.is_set():  # the application could not start: another worker would not either
                    log.error("worker %s exited with status %s before it served; stopping", process.pid,
                              process.exitcode)
                    self.stopping.set()
                    status = STARTUP_FAILURE
                    break
                log.warning("worker %s exited with status %s; starting another", process.pid, process.exitcode)
                workers[index] = self._start()
        self._stop([process for process, _ in workers])
        return status

    def _start(self) -> tuple[multiprocessing.process.BaseProcess, object]:
        ready = self.context.Event()
        process = self.context.Process(target=_worker, args=(self.config, ready, os.getpid()), name="heirline-worker")
        process.start()
        return process, ready

    def _stop(self, processes: list[multiprocessing.process.BaseProcess]) -> None:
        for process in processes:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)  # uvicorn finishes the requests in flight
        deadline = time.monotonic() + (self.config.timeout_graceful_shutdown or 30) + 5
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                log.warning("worker %s did not stop in time; killing it", process.pid)
                process.kill()
                process.join()
