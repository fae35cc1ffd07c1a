"""Several web processes on one port, each listening on a socket of its own (SO_REUSEPORT).

`adapter serve` with `ADAPTER_WEB_WORKERS` above 1 runs `WebProcesses`. Why not uvicorn's
own `workers=N`: there every process accepts from one shared socket, and whichever wakes
first takes a whole burst of new connections. 32 kept-alive connections opened at once
were split 24/8 and 30/2 in our runs, so one process queued three times the requests of the
other, and the p99 of every caller followed the busy one. With a listening socket per
process, the kernel spreads new connections over them by a hash of their addresses (18/14
in the same run; see docs/benchmarks.md). gunicorn's arbiter with the uvicorn worker class
also shares one socket: side by side on one store it served 3-68 % fewer requests per
second, and had the worse p99 in five of six workloads (docs/benchmarks.md, "Our web
processes against gunicorn").

The parent only supervises (and, in `adapter serve`, migrates and pushes): a web process
that dies is replaced; one that fails to start stops the service, since the next would fail
alike. A web process's event loop beats a heartbeat every second into memory shared with
the parent; one that has not beaten for `hang_seconds` (its loop blocked, or the process
stopped) is killed and replaced, as its connections would otherwise wait forever. SIGTERM
or SIGINT stops each web process gracefully (in-flight requests finish), then the parent.
A parent that dies without stopping them (SIGKILL) takes them along within seconds
(`adapter.commands.parent_watch`), so no orphan keeps the port.
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
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Protocol

from adapter.commands.parent_watch import end_with_parent
from adapter.errors import PortInUse

log = logging.getLogger(__name__)

APP_FACTORY = "adapter.api.app:web_process_app"
STARTUP_FAILURE = 3  # a web process's exit code when its app or socket never started
STOP_SECONDS = 30.0  # how long a stopping web process may take before it is killed
RESTART_PAUSE_SECONDS = 1.0
BACKLOG = 2048
STARTUP_SECONDS = 120.0  # how long a web process may take to start before its first beat


@dataclass(frozen=True)
class Listen:
    host: str
    port: int
    log_level: str


def listening_socket(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    """A TCP socket bound to `host`:`port` and listening (`reuse_port`: shared with the
    other web processes, each accepting its own share of connections)."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        sock.listen(BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock


def check_port_free(host: str, port: int) -> None:
    """Raise `PortInUse` when another program listens on `host`:`port`.

    Sockets sharing a port with SO_REUSEPORT must all ask for it, so a plain bind fails
    whenever anything listens there: without this check, a second service of the same user
    on the same port would silently share the first one's connections.
    """
    try:
        listening_socket(host, port, reuse_port=False).close()
    except OSError as exc:
        raise PortInUse(f"cannot listen on {host}:{port}: {exc.strerror}") from exc


def web_process(listen: Listen, heartbeat: Heartbeat, parent_pid: int) -> None:
    """One web process (the target of a spawned child): its own socket, the app, uvicorn.
    Once serving, its event loop writes `time.monotonic()` (one clock for every process of
    the machine) into `heartbeat` every second. It ends when `parent_pid` does."""
    end_with_parent(parent_pid)  # first: an orphan must not take the port
    import uvicorn  # deferred: the parent has no use for the server stack

    from adapter.commands.http_protocol import CoalescingHttpTools

    async def beat() -> None:
        heartbeat.value = time.monotonic()

    sock = listening_socket(listen.host, listen.port, reuse_port=True)
    config = uvicorn.Config(
        APP_FACTORY,
        factory=True,
        http=CoalescingHttpTools,
        log_level=listen.log_level,
        access_log=False,
        backlog=BACKLOG,
        # uvicorn's main loop, on the event loop, calls this when more than `timeout_notify`
        # seconds have passed, checked once a second: 0 makes it every second.
        callback_notify=beat,
        timeout_notify=0,
    )
    server = uvicorn.Server(config)
    server.run(sockets=[sock])
    if not server.started:
        sys.exit(STARTUP_FAILURE)


class Heartbeat(Protocol):
    value: float


@dataclass
class WebProcess:
    process: BaseProcess
    heartbeat: Heartbeat
    started: float
    """`time.monotonic()` when the process was spawned."""

    def silent_for(self, now: float) -> float | None:
        """Seconds since its last beat, or None while it is still allowed to be starting."""
        last = self.heartbeat.value
        if last == 0.0:
            waited = now - self.started
            return waited if waited > STARTUP_SECONDS else None
        return now - last


class WebProcesses:
    """Starts `count` web processes and keeps them running until SIGTERM or SIGINT."""

    def __init__(self, listen: Listen, count: int, *, hang_seconds: float) -> None:
        self.listen = listen
        self.count = count
        self.hang_seconds = hang_seconds
        self._context = multiprocessing.get_context("spawn")
        self._stop = threading.Event()

    def run(self) -> int:
        """Serve until told to stop: 0, or 1 when a web process failed to start."""
        check_port_free(self.listen.host, self.listen.port)
        handlers = {sig: signal.signal(sig, self._on_signal) for sig in STOP_SIGNALS}
        processes = [self._start() for _ in range(self.count)]
        failed = False
        try:
            while not self._stop.wait(0.5):
                for index, web in enumerate(processes):
                    process = web.process
                    if process.is_alive():
                        self._kill_if_hung(web)
                        continue
                    if process.exitcode == STARTUP_FAILURE:
                        log.error("a web process failed to start: stopping the service")
                        failed = True
                        self._stop.set()
                        break
                    log.warning(
                        "web process %s ended (exit code %s); starting another",
                        process.pid,
                        process.exitcode,
                    )
                    time.sleep(RESTART_PAUSE_SECONDS)
                    processes[index] = self._start()
        finally:
            stop_all([web.process for web in processes])
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
        return 1 if failed else 0

    def stop(self) -> None:
        self._stop.set()

    def _start(self) -> WebProcess:
        heartbeat = self._context.RawValue("d", 0.0)
        process = self._context.Process(
            target=web_process, args=(self.listen, heartbeat, os.getpid()), name="web"
        )
        started = time.monotonic()
        process.start()
        return WebProcess(process, heartbeat, started)

    def _kill_if_hung(self, web: WebProcess) -> None:
        """SIGKILL a web process silent for too long (SIGTERM needs the loop it lacks); the
        supervising loop then replaces it like any that died."""
        silent = web.silent_for(time.monotonic())
        if silent is None or silent <= self.hang_seconds:
            return
        log.error(
            "web process %s: its event loop has not run for %.0f s; killing it",
            web.process.pid,
            silent,
        )
        web.process.kill()
        web.process.join(STOP_SECONDS)

    def _on_signal(self, _signal: int, _frame: FrameType | None) -> None:
        self._stop.set()


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def stop_all(processes: list[BaseProcess]) -> None:
    """SIGTERM each live process (uvicorn finishes in-flight requests), kill stragglers."""
    for process in processes:
        if process.is_alive():
            process.terminate()
    deadline = time.monotonic() + STOP_SECONDS
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            log.warning("web process %s did not stop in %.0f s: killed", process.pid, STOP_SECONDS)
            process.kill()
            process.join()
