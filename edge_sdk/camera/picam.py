"""Raspberry Pi camera source (picamera2), imported only when used.

picamera2 exists only on Raspberry Pi OS (it needs libcamera's Python bindings:
``sudo apt install python3-picamera2``).  The camera is configured with two streams from
one capture: ``main`` (full size, RGB) for compress mode and for thumbnails, and
``lores`` (YUV420, scaled by the ISP) at the chip's input size, so resizing for the chip
costs the CPU nothing.  Each frame carries the wall-clock capture time; the sensor
timestamp from the request metadata is kept alongside.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Optional

import numpy as np

from ..errors import BackendError
from .sources import CapturedFrame, FrameSource

#: The ISP will not scale to arbitrarily small sizes; smaller chip inputs are
#: produced from this by a software resize (see ``fit_to_input``).
MIN_LORES = 64


class CameraUnavailableError(BackendError):
    """No picamera2, or no camera attached, or the camera is busy."""


def lores_size_for(chip_size: Optional[tuple[int, int]], main: tuple[int, int]) -> tuple[int, int]:
    """A lores size of at least MIN_LORES, at most the main stream, in multiples of 16.

    Multiples of 16 keep the ISP happy and make each chroma plane a whole number of
    rows in picamera2's YUV420 array.
    """
    w, h = chip_size or (MIN_LORES, MIN_LORES)
    w, h = min(max(w, MIN_LORES), main[0]), min(max(h, MIN_LORES), main[1])
    return -(-w // 16) * 16, -(-h // 16) * 16


def yuv420_to_rgb(yuv: np.ndarray, width: int, height: int) -> np.ndarray:
    """picamera2's YUV420 array (``(height * 3 // 2, stride)``, planar I420) to RGB, BT.601 full range."""
    stride = yuv.shape[1]
    y = yuv[:height, :width].astype(np.float32)
    # Each chroma plane is height/2 rows of stride/2 bytes, i.e. height/4 rows of the array.
    u = (
        yuv[height : height + height // 4]
        .reshape(height // 2, stride // 2)[:, : width // 2]
        .astype(np.float32)
        - 128.0
    )
    v = (
        yuv[height + height // 4 : height + height // 2]
        .reshape(height // 2, stride // 2)[:, : width // 2]
        .astype(np.float32)
        - 128.0
    )
    u = u.repeat(2, axis=0).repeat(2, axis=1)
    v = v.repeat(2, axis=0).repeat(2, axis=1)
    rgb = np.stack([y + 1.402 * v, y - 0.344136 * u - 0.714136 * v, y + 1.772 * u], axis=-1)
    return np.clip(np.round(rgb), 0, 255).astype(np.uint8)


class PiCameraSource(FrameSource):
    """picamera2 with a main and a lores stream (see module docstring)."""

    name = "picamera"

    def __init__(
        self,
        camera_num: int = 0,
        main_size: tuple[int, int] = (1280, 720),
        lores_size: Optional[tuple[int, int]] = None,
    ) -> None:
        try:
            from picamera2 import Picamera2
        except ImportError:
            raise CameraUnavailableError(
                "picamera2 is not available: it runs on Raspberry Pi OS only (sudo apt install python3-picamera2); "
                "use a file, folder or 'synthetic' source elsewhere"
            ) from None
        try:
            self.cam = Picamera2(camera_num)
        except (IndexError, RuntimeError) as exc:
            raise CameraUnavailableError(f"no camera {camera_num} found or it is busy: {exc}") from None
        self.lores_size = lores_size_for(lores_size, main_size)
        config = self.cam.create_video_configuration(
            main={"size": main_size, "format": "RGB888"},
            lores={"size": self.lores_size, "format": "YUV420"},
            buffer_count=4,
        )
        self.cam.configure(config)
        self.cam.start()
        self._closed = False

    def frames(self) -> Iterator[np.ndarray]:  # pragma: no cover - __iter__ is used instead
        for f in self:
            yield f.image

    def __iter__(self) -> Iterator[CapturedFrame]:
        index = 0
        while not self._closed:
            request = self.cam.capture_request()
            try:
                ts = time.time_ns()
                main = request.make_array("main")
                lores = request.make_array("lores")
            finally:
                request.release()
            # picamera2's "RGB888" is B, G, R in memory.
            image = np.ascontiguousarray(main[:, :, 2::-1])
            yield CapturedFrame(index, ts, image, yuv420_to_rgb(lores, *self.lores_size))
            index += 1

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.cam.stop()
            self.cam.close()
