"""The camera app: capture -> chip -> compact result messages -> server.

Modes (each message carries the frame id and the capture timestamp in its envelope):

* ``classify`` — CLASSIFICATION with the top-k class indices and scores of the
  network output (and names when the firmware metadata has ``labels``);
* ``retrieve`` — DESCRIPTOR: the output L2-normalised and encoded as f16, i8 or packed
  sign bits, plus a small thumbnail (U8_IMAGE) so search results can be shown;
* ``compress`` — FRAME_BEGIN, one LATENT_PATCH per patch from a :class:`PatchEncoder`
  (raw pixels until the learned codec lands), FRAME_END.

The network input comes from the low-resolution stream when the source has one
(picamera2), else from the main image, resized to the engine's input shape.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional, Protocol

import numpy as np
from PIL import Image

from ..client import DeviceClient, Outgoing
from ..errors import InputError
from ..transport import limits
from ..transport.descriptor import DESCRIPTOR_KINDS, encode_descriptor
from ..transport.protocol import Message, MsgType, encode
from .encoders import PatchEncoder, RawPatchEncoder
from .engine import Engine, fit_to_input
from .sources import CapturedFrame, FrameSource
from .status import LiveStatus

MODES = ("classify", "retrieve", "compress")


@dataclass
class AppConfig:
    mode: str = "retrieve"
    frames: Optional[int] = None
    descriptor: str = "f16"
    topk: int = 5
    thumbnail: int = 48
    max_side: int = 640

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InputError(f"mode: expected one of {MODES}, found {self.mode!r}")
        if self.descriptor not in DESCRIPTOR_KINDS:
            raise InputError(f"descriptor: expected one of {DESCRIPTOR_KINDS}, found {self.descriptor!r}")
        if not 0 <= self.thumbnail <= limits.MAX_THUMB_SIDE:
            raise InputError(f"thumbnail: expected 0..{limits.MAX_THUMB_SIDE}, found {self.thumbnail}")


class Sink(Protocol):
    """Where the app's messages go: the device client, or nowhere (local mode)."""

    def new_frame_id(self) -> int: ...

    async def send(self, items: list[Outgoing], capture_ns: int) -> int: ...

    def queue_depth(self) -> int: ...

    def connected(self) -> Optional[bool]: ...


class LocalSink:
    """No server: messages are encoded (for honest byte counts) and dropped."""

    def __init__(self) -> None:
        self._next = 1
        self.sent = 0

    def new_frame_id(self) -> int:
        self._next += 1
        return self._next - 1

    async def send(self, items: list[Outgoing], capture_ns: int) -> int:
        self.sent += len(items)
        return sum(len(encode(Message(i.type, "local", 1, i.frame, i.ts, i.body))) for i in items)

    def queue_depth(self) -> int:
        return 0

    def connected(self) -> Optional[bool]:
        return None


class ClientSink:
    """Through a :class:`DeviceClient`; reports capture-to-ack latency to the status."""

    def __init__(self, client: DeviceClient, status: LiveStatus) -> None:
        self.client, self.status = client, status
        self._capture_of: dict[int, int] = {}
        client.on_ack = self._on_ack

    def _on_ack(self, seq: int, _latency: float) -> None:
        captured = self._capture_of.pop(seq, None)
        if captured is not None:
            self.status.acked((time.time_ns() - captured) / 1e9)

    def new_frame_id(self) -> int:
        return self.client.new_frame_id()

    async def send(self, items: list[Outgoing], capture_ns: int) -> int:
        before = self.client.stats.bytes_spooled
        seqs = await self.client.send_batch(items)
        self._capture_of[seqs[-1]] = capture_ns  # the frame is delivered when its last message is acked
        return self.client.stats.bytes_spooled - before

    def queue_depth(self) -> int:
        return self.client.pending()

    def connected(self) -> Optional[bool]:
        return self.client.connected


class CameraApp:
    """Runs one mode over a source (see module docstring)."""

    def __init__(
        self,
        engine: Engine,
        sink: Sink,
        config: AppConfig,
        status: Optional[LiveStatus] = None,
        encoder: Optional[PatchEncoder] = None,
    ) -> None:
        self.engine, self.sink, self.cfg = engine, sink, config
        self.status = status or LiveStatus(config.frames, enabled=False)
        self.encoder = encoder or RawPatchEncoder()
        self.last_results: list = []

    def build(self, frame: CapturedFrame, frame_id: int) -> tuple[list[Outgoing], float]:
        """The messages for one frame and the inference time (s)."""
        ts = frame.ts_ns
        if self.cfg.mode == "compress":
            return self._compress(frame.image, frame_id, ts), 0.0
        t0 = time.perf_counter()
        source = frame.lores if frame.lores is not None else frame.image
        out = np.asarray(self.engine.run(fit_to_input(source, self.engine.input_shape)), np.float64).reshape(
            -1
        )
        infer = time.perf_counter() - t0
        if self.cfg.mode == "classify":
            return [Outgoing(MsgType.CLASSIFICATION, self._classification(out), frame_id, ts)], infer
        body = {
            "vec": encode_descriptor(out, self.cfg.descriptor),
            "model": self.engine.name[: limits.MAX_NAME],
        }
        if self.cfg.thumbnail:
            body["thumb"] = thumbnail(frame.image, self.cfg.thumbnail)
        return [Outgoing(MsgType.DESCRIPTOR, body, frame_id, ts)], infer

    def _classification(self, out: np.ndarray) -> dict:
        k = min(self.cfg.topk, out.size, limits.MAX_TOPK)
        top = np.argsort(-out, kind="stable")[:k]
        body = {
            "cls": [int(i) for i in top],
            "score": [float(out[i]) for i in top],
            "model": self.engine.name[: limits.MAX_NAME],
        }
        labels = self.engine.labels
        if labels:
            body["names"] = [str(labels[i])[: limits.MAX_NAME] if i < len(labels) else str(i) for i in top]
        self.last_results = (self.last_results + [body])[-10:]
        return body

    def _compress(self, image: np.ndarray, frame_id: int, ts: int) -> list[Outgoing]:
        enc = self.encoder.encode(downscale(image, self.cfg.max_side))
        begin = {
            "w": enc.width,
            "h": enc.height,
            "c": enc.channels,
            "patch": enc.patch,
            "n": enc.n_patches,
            "codec": enc.codec,
        }
        items = [Outgoing(MsgType.FRAME_BEGIN, begin, frame_id, ts)]
        items += [Outgoing(MsgType.LATENT_PATCH, {"i": i, "p": p}, frame_id, ts) for i, p in enc.patches]
        items.append(Outgoing(MsgType.FRAME_END, {"n": len(enc.patches)}, frame_id, ts))
        return items

    async def run(self, source: FrameSource) -> dict:
        """Process frames until the source ends or ``frames`` were done; returns a report."""
        t0 = time.monotonic()
        for frame in source:
            if self.cfg.frames is not None and self.status.frames >= self.cfg.frames:
                break
            items, infer = self.build(frame, self.sink.new_frame_id())
            nbytes = await self.sink.send(items, frame.ts_ns)
            self.status.frame_done(nbytes, infer)
            self.status.queue_depth, self.status.connected = self.sink.queue_depth(), self.sink.connected()
            self.status.tick()
        return {
            "mode": self.cfg.mode,
            "engine": self.engine.name,
            "seconds": round(time.monotonic() - t0, 2),
            **self.status.snapshot(),
            "bytes_total": self.status.bytes,
        }


def downscale(image: np.ndarray, max_side: int) -> np.ndarray:
    """Shrink so the longer side is at most ``max_side`` (never enlarges)."""
    h, w = image.shape[:2]
    scale = max_side / max(h, w)
    if scale >= 1:
        return image
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR), dtype=np.uint8)


def thumbnail(image: np.ndarray, side: int) -> np.ndarray:
    """A small RGB thumbnail whose longer side is ``side`` (for search results)."""
    return downscale(image, side) if max(image.shape[:2]) > side else image.copy()
