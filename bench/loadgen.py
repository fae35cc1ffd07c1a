"""A small HTTP/1.1 load generator: N kept-alive connections issuing GETs for a while.

Written on asyncio streams rather than an HTTP library so that the client spends as little
CPU as it can per request: on a 2-core machine the load generator shares the cores with the
server it measures, and it does so equally for every server compared in one run.

`run_load(url_base, paths, headers, connections, seconds)` returns a `LoadResult`: the
requests completed, the rate, the latency percentiles, and the count of non-2xx answers
(which a benchmark must report, since fast errors are no achievement).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float
    failures: int
    latencies: tuple[float, ...]
    """Seconds per request, sorted."""

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def percentile(self, p: float) -> float:
        """The latency below which `p` percent of the requests finished, in milliseconds."""
        if not self.latencies:
            return float("nan")
        index = min(len(self.latencies) - 1, round(p / 100 * (len(self.latencies) - 1)))
        return 1000 * self.latencies[index]

    def line(self, name: str) -> str:
        return (
            f"{name:34} {self.rate:8.0f} req/s  p50 {self.percentile(50):7.1f} ms  "
            f"p99 {self.percentile(99):7.1f} ms  ({self.requests} requests, "
            f"{self.failures} failed)"
        )


class HttpConnection:
    """One kept-alive HTTP/1.1 connection; reads Content-Length and chunked bodies."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, host: str, port: int) -> HttpConnection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def get(self, target: bytes, head: bytes) -> tuple[int, bytes]:
        self.writer.write(b"GET " + target + b" HTTP/1.1\r\n" + head + b"\r\n")
        header_block = await self.reader.readuntil(b"\r\n\r\n")
        lines = header_block.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        fields = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            fields[name.strip().lower()] = value.strip()
        if fields.get(b"transfer-encoding", b"").lower() == b"chunked":
            body = await self._chunked()
        else:
            body = await self.reader.readexactly(int(fields.get(b"content-length", b"0")))
        return status, body

    async def _chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self.reader.readuntil(b"\r\n")  # no trailers from the servers we test
                return b"".join(parts)
            parts.append(await self.reader.readexactly(size))
            await self.reader.readexactly(2)

    def close(self) -> None:
        self.writer.close()


def request_head(base: str, headers: dict[str, str]) -> bytes:
    host = urlsplit(base).netloc
    lines = [f"Host: {host}"] + [f"{k}: {v}" for k, v in headers.items()]
    return "".join(f"{line}\r\n" for line in lines).encode()


async def _load(
    base: str,
    paths: Sequence[str],
    headers: dict[str, str],
    connections: int,
    seconds: float,
    warmup: float,
) -> LoadResult:
    parts = urlsplit(base)
    prefix = parts.path.rstrip("/")
    targets = itertools.cycle([(prefix + "/" + p.lstrip("/")).encode() for p in paths])
    head = request_head(base, headers)
    latencies: list[float] = []
    failures = 0
    start = time.perf_counter()
    measure_from = start + warmup
    stop_at = measure_from + seconds

    async def client() -> None:
        nonlocal failures
        conn = await HttpConnection.open(parts.hostname or "127.0.0.1", parts.port or 80)
        try:
            while (now := time.perf_counter()) < stop_at:
                status, _ = await conn.get(next(targets), head)
                done = time.perf_counter()
                if now >= measure_from:
                    latencies.append(done - now)
                    failures += not 200 <= status < 300
        finally:
            conn.close()

    await asyncio.gather(*(client() for _ in range(connections)))
    return LoadResult(len(latencies), seconds, failures, tuple(sorted(latencies)))


def run_load(
    base: str,
    paths: Iterable[str],
    headers: dict[str, str],
    *,
    connections: int = 32,
    seconds: float = 15.0,
    warmup: float = 3.0,
) -> LoadResult:
    """GET `paths` (cycled) under `base` on `connections` connections for `seconds`, after
    `warmup` seconds whose requests are not counted."""
    return asyncio.run(_load(base, list(paths), headers, connections, seconds, warmup))
