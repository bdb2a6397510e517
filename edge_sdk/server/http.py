"""A small HTTP/JSON query endpoint (stdlib asyncio only), bound to loopback.

Routes (all answers are JSON; errors are ``{"error": "..."}`` with a 4xx/5xx status)::

    GET  /health                                   -> {"ok": true, ...server status}
    GET  /frames?device=cam1&limit=20              -> {"frames": [...]}, newest first
    GET  /search?device=cam1&frame=42&k=5[&kind=]  -> {"hits": [...]}, by stored frame
    POST /search  {"vector": [...], "kind": "f16", "k": 5}  -> {"hits": [...]}

Requests are bounded (8 KiB of head, 256 KiB of body, 10 s to arrive) and the server
refuses to bind anything but a loopback address: it has no authentication of its own.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
from typing import Callable, Optional
from urllib.parse import parse_qs, urlsplit

import numpy as np

from ..errors import EdgeSDKError
from .query import NotFoundError, QueryService

MAX_HEAD = 8 * 1024
MAX_BODY = 256 * 1024
REQUEST_TIMEOUT = 10.0
_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Payload Too Large",
    500: "Internal Server Error",
}


class HttpError(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status


def require_loopback(host: str) -> None:
    """ValueError unless ``host`` is a loopback address (or 'localhost')."""
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise ValueError(f"HTTP query endpoint: expected a loopback address, found {host!r}")


class HttpEndpoint:
    """Serves :class:`QueryService` over HTTP/1.1 (one request per connection)."""

    def __init__(
        self, queries: QueryService, status: Callable[[], dict], host: str = "127.0.0.1", port: int = 0
    ) -> None:
        require_loopback(host)
        self.queries, self.status_fn, self.host, self.port = queries, status, host, port
        self._server: Optional[asyncio.AbstractServer] = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port, limit=MAX_HEAD)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            try:  # 3.12+ waits for open connections here; ours end within REQUEST_TIMEOUT anyway
                await asyncio.wait_for(self._server.wait_closed(), REQUEST_TIMEOUT)
            except asyncio.TimeoutError:
                pass

    @property
    def address(self) -> tuple[str, int]:
        return self._server.sockets[0].getsockname()[:2]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            status, payload = await asyncio.wait_for(self._respond(reader), REQUEST_TIMEOUT)
        except asyncio.TimeoutError:
            status, payload = 400, {"error": "request timed out"}
        body = json.dumps(payload).encode()
        head = f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        try:
            writer.write(head.encode() + body)
            await writer.drain()
            writer.close()
        except (ConnectionError, OSError):
            pass

    async def _respond(self, reader: asyncio.StreamReader) -> tuple[int, dict]:
        try:
            method, target, headers = await _read_head(reader)
            body = await _read_body(reader, headers)
            loop = asyncio.get_running_loop()
            return 200, await loop.run_in_executor(None, self._route, method, target, body)
        except HttpError as exc:
            return exc.status, {"error": str(exc)}
        except NotFoundError as exc:
            return 404, {"error": str(exc)}
        except (EdgeSDKError, ValueError, KeyError, TypeError) as exc:
            return 400, {"error": f"{type(exc).__name__}: {exc}"}

    def _route(self, method: str, target: str, body: bytes) -> dict:
        url = urlsplit(target)
        q = {k: v[-1] for k, v in parse_qs(url.query).items()}
        k = int(q.get("k", 5))
        if url.path == "/health" and method == "GET":
            return {"ok": True, **self.status_fn(), **self.queries.stats()}
        if url.path == "/frames" and method == "GET":
            return {"frames": self.queries.recent_frames(q.get("device"), int(q.get("limit", 20)))}
        if url.path == "/search" and method == "GET":
            hits = self.queries.search_frame(q["device"], int(q["frame"]), k, q.get("kind"))
            return {"hits": [h.to_json() for h in hits]}
        if url.path == "/search" and method == "POST":
            req = json.loads(body or b"{}")
            vec = np.asarray(req["vector"], np.float64)
            hits = self.queries.search_vector(vec, str(req.get("kind", "f16")), int(req.get("k", k)))
            return {"hits": [h.to_json() for h in hits]}
        if url.path in ("/health", "/frames", "/search"):
            raise HttpError(405, f"method {method} not allowed on {url.path}")
        raise HttpError(404, f"no route {url.path}: expected /health, /frames or /search")


async def _read_head(reader: asyncio.StreamReader) -> tuple[str, str, dict]:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.LimitOverrunError, ValueError):
        raise HttpError(413, f"request head over {MAX_HEAD} bytes") from None
    except asyncio.IncompleteReadError:
        raise HttpError(400, "incomplete request") from None
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise HttpError(400, f"bad request line {lines[0][:80]!r}")
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    return parts[0], parts[1], headers


async def _read_body(reader: asyncio.StreamReader, headers: dict) -> bytes:
    try:
        n = int(headers.get("content-length", "0"))
    except ValueError:
        raise HttpError(400, "bad Content-Length") from None
    if n < 0 or n > MAX_BODY:
        raise HttpError(413, f"body: expected <= {MAX_BODY} bytes, found {n}")
    try:
        return await reader.readexactly(n) if n else b""
    except asyncio.IncompleteReadError:
        raise HttpError(400, "incomplete body") from None
