"""`heirline serve --workers 2` as a user runs it: each worker listens on a socket of its own, so
connections opened together are spread across the workers (with one shared socket, the first worker
to wake took them all); a worker that dies is replaced; SIGTERM stops them all; a port another program
holds, or an application that cannot start, stops the command with an error."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support import free_port

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; SO_REUSEPORT spreads on Linux")

LISTEN, ESTABLISHED = "0A", "01"


def tcp_inodes(port: int, state: str) -> set[str]:
    """Inodes of the TCP sockets whose local port is ``port``, in ``state`` (from /proc/net/tcp)."""
    inodes = set()
    for row in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = row.split()
        if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == state:
            inodes.add(fields[9])
    return inodes


def socket_inodes(pid: int) -> set[str]:
    """The sockets process ``pid`` holds; none once it is gone (a worker just killed can be reaped
    between listing the server's children and reading its descriptors)."""
    inodes = set()
    try:
        descriptors = list(Path(f"/proc/{pid}/fd").iterdir())
    except (FileNotFoundError, ProcessLookupError):
        return inodes
    for fd in descriptors:
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    return inodes


def workers_of(pid: int) -> list[int]:
    """The server's worker processes (those holding a socket listening on its port are the workers)."""
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(child) for child in children]


class Served:
    def __init__(self, env: dict, log: Path, workers: int = 2):
        self.port, self.log = free_port(), log
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--port", str(self.port), "--workers", str(workers)],
            env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT)
        self.base = f"http://127.0.0.1:{self.port}"

    def listening(self) -> dict[int, set[str]]:
        """Each worker's sockets that listen on the port."""
        listeners = tcp_inodes(self.port, LISTEN)
        return {worker: socket_inodes(worker) & listeners for worker in workers_of(self.process.pid)
                if socket_inodes(worker) & listeners}

    def wait_for(self, workers: int, timeout: float = 60) -> dict[int, set[str]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()
            listening = self.listening()
            if len(listening) == workers:
                try:
                    if httpx.get(self.base + "/readyz", timeout=2).status_code == 200:
                        return listening
                except httpx.HTTPError:
                    pass
            time.sleep(0.2)
        raise AssertionError(f"{workers} workers did not come up:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)


@pytest.fixture
def served(cli_env, tmp_path):
    server = Served(cli_env, tmp_path / "server.log")
    yield server
    if server.process.poll() is None:
        workers = workers_of(server.process.pid)  # before the parent goes: then they are no longer its children
        server.process.kill()
        for worker in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker, signal.SIGKILL)
        server.process.wait()


def test_each_worker_listens_on_its_own_socket_and_connections_opened_together_are_spread(served):
    listening = served.wait_for(2)
    first, second = listening.values()
    assert len(first) == 1 and len(second) == 1 and first != second  # not one socket shared by both

    connections = [socket.create_connection(("127.0.0.1", served.port)) for _ in range(32)]
    try:
        for conn in connections:  # every connection answered, so each is accepted by some worker
            conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
        for conn in connections:
            assert conn.recv(4096).startswith(b"HTTP/1.1 200")
        accepted = tcp_inodes(served.port, ESTABLISHED)
        held = {worker: len(socket_inodes(worker) & accepted) for worker in listening}
        assert sum(held.values()) == 32
        assert all(count > 0 for count in held.values()), held  # 32 on one of two: 1 in 2**31
    finally:
        for conn in connections:
            conn.close()
    assert served.stop() == 0
    assert workers_of(served.process.pid) == []


def test_a_worker_that_dies_is_replaced_and_sigterm_stops_all(served):
    listening = served.wait_for(2)
    victim = next(iter(listening))
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while victim in served.listening() or len(served.listening()) < 2:
        assert time.monotonic() < deadline, served.log.read_text()[-3000:]
        time.sleep(0.2)
    assert httpx.get(served.base + "/healthz", timeout=5).status_code == 200
    workers = list(served.listening())
    assert served.stop() == 0
    for worker in workers:
        assert not Path(f"/proc/{worker}").exists() or "zombie" in Path(f"/proc/{worker}/status").read_text()
    assert "starting another" in served.log.read_text()


def test_workers_stop_when_their_parent_is_killed(served):
    listening = served.wait_for(2)
    served.process.kill()  # no SIGTERM for the workers: the parent dies as the OOM killer would kill it
    served.process.wait()
    try:
        deadline = time.monotonic() + 30
        while any(Path(f"/proc/{worker}").exists() and "zombie" not in Path(f"/proc/{worker}/status").read_text()
                  for worker in listening):
            assert time.monotonic() < deadline, f"workers outlived their parent:\n{served.log.read_text()[-3000:]}"
            time.sleep(0.2)
        assert not tcp_inodes(served.port, LISTEN)  # the port is free for the next server
        assert "parent process" in served.log.read_text() and "is gone" in served.log.read_text()
    finally:
        for worker in listening:
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker, signal.SIGKILL)


def test_a_port_another_program_holds_fails_at_once(cli_env, tmp_path):
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--workers", "2"],
                              env=cli_env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 3
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr


def test_a_second_server_on_the_same_port_does_not_start(served, cli_env):
    served.wait_for(2)
    done = subprocess.run([sys.executable, "-m", "app.cli", "serve", "--port", str(served.port), "--workers", "2"],
                          env=cli_env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 3
    assert "a server is already listening there" in done.stderr
    assert len(served.listening()) == 2  # still only the first server's workers


def test_an_application_that_cannot_start_stops_the_command(cli_env, tmp_path):
    env = {**cli_env, "HEIRLINE_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere",
           "HEIRLINE_DB_POOL_SIZE": "2"}  # the pool is opened at start-up, and nothing listens there
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "app.cli", "serve", "--port", str(free_port()), "--workers", "2"],
                          env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 3, done.stderr[-3000:]
    assert "before it served; stopping" in done.stderr
    assert time.monotonic() - started < 120
