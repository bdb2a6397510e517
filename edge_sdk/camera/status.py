"""Live status of the camera app: fps, bytes per frame, latency, queue depth.

On a terminal the status is one line redrawn in place (a progress display); otherwise
(logs, CI) a plain line is printed every ``interval`` seconds.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from typing import Optional, TextIO


def _pct(values, q: float) -> Optional[float]:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, int(q * (len(s) - 1) + 0.5))]


class LiveStatus:
    """Collects per-frame figures and renders them (see module docstring)."""

    def __init__(
        self,
        total: Optional[int] = None,
        stream: Optional[TextIO] = None,
        interval: float = 0.5,
        enabled: bool = True,
    ) -> None:
        self.total = total
        self.stream = stream or sys.stderr
        self.interval, self.enabled = interval, enabled
        self.frames = 0
        self.bytes = 0
        self.started = time.monotonic()
        self._done_at: deque = deque(maxlen=30)
        self._bytes: deque = deque(maxlen=30)
        self.infer_s: deque = deque(maxlen=1000)
        self.e2e_s: deque = deque(maxlen=1000)
        self.queue_depth = 0
        self.connected: Optional[bool] = None
        self._last_render = 0.0
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def frame_done(self, nbytes: int, infer_s: float) -> None:
        self.frames += 1
        self.bytes += nbytes
        self._done_at.append(time.monotonic())
        self._bytes.append(nbytes)
        self.infer_s.append(infer_s)

    def acked(self, capture_to_ack_s: float) -> None:
        self.e2e_s.append(capture_to_ack_s)

    def fps(self) -> float:
        if len(self._done_at) < 2:
            return 0.0
        span = self._done_at[-1] - self._done_at[0]
        return (len(self._done_at) - 1) / span if span > 0 else 0.0

    def snapshot(self) -> dict:
        e2e, inf = _pct(self.e2e_s, 0.5), _pct(self.infer_s, 0.5)
        return {
            "frames": self.frames,
            "fps": round(self.fps(), 2),
            "bytes_per_frame": round(sum(self._bytes) / len(self._bytes)) if self._bytes else 0,
            "infer_ms_p50": round(1000 * inf, 2) if inf is not None else None,
            "latency_ms_p50": round(1000 * e2e, 1) if e2e is not None else None,
            "latency_ms_p99": round(1000 * _pct(self.e2e_s, 0.99), 1) if self.e2e_s else None,
            "queue_depth": self.queue_depth,
            "connected": self.connected,
        }

    def line(self) -> str:
        s = self.snapshot()
        done = f"{s['frames']}/{self.total}" if self.total else str(s["frames"])
        lat = f"{s['latency_ms_p50']:.0f} ms" if s["latency_ms_p50"] is not None else "-"
        link = {True: "online", False: "OFFLINE", None: "local"}[s["connected"]]
        return f"frames {done}  {s['fps']:.1f} fps  {s['bytes_per_frame']} B/frame  infer {s['infer_ms_p50'] or 0:.1f} ms  latency {lat}  queue {s['queue_depth']}  {link}"

    def tick(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last_render < self.interval:
            return
        self._last_render = now
        if self._tty:
            self.stream.write("\r\x1b[2K" + self.line())
        else:
            self.stream.write(self.line() + "\n")
        self.stream.flush()

    def close(self) -> None:
        self.tick(force=True)
        if self.enabled and self._tty:
            self.stream.write("\n")
            self.stream.flush()
