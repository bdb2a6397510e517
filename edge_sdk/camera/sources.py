"""Frame sources behind one interface: files, folders, videos, a synthetic pattern, picamera2.

Every source yields :class:`CapturedFrame` (RGB uint8 HWC, a wall-clock capture time in
ns, and optionally a second low-resolution image already near the chip's input size).

What is supported, plainly:

* **image files** — anything Pillow opens (PNG, JPEG, BMP, TIFF, WebP, ...), converted
  to RGB.
* **folders** — the image files directly inside, in name order (not recursive).
* **video files** — animated GIF, APNG, animated WebP and multi-page TIFF through Pillow
  (always available); other containers (MP4, AVI, MKV, MOV, ...) only if OpenCV
  (``cv2``) is importable — otherwise a clear :class:`SourceError` says so.
* **synthetic** — a moving colour pattern, no files or hardware needed.
* **picamera2** — see :mod:`edge_sdk.camera.picam` (imported only when asked for).
"""

from __future__ import annotations

import abc
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image, ImageSequence, UnidentifiedImageError

from ..errors import InputError

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm", ".pgm"}
VIDEO_EXTENSIONS = {".mp4", ".avi", ".mkv", ".mov", ".h264", ".mjpeg", ".webm"}


class SourceError(InputError):
    """A source that cannot be opened: missing path, unreadable file, unsupported video."""


@dataclass
class CapturedFrame:
    """One captured frame; ``lores`` is the low-resolution stream when the source has one."""

    index: int
    ts_ns: int
    image: np.ndarray
    lores: Optional[np.ndarray] = None


class FrameSource(abc.ABC):
    """An iterable of frames; use as a context manager so hardware is released."""

    name = "source"

    @abc.abstractmethod
    def frames(self) -> Iterator[np.ndarray]:
        """Yield RGB uint8 HWC images (sources with a lores stream override __iter__)."""

    def __iter__(self) -> Iterator[CapturedFrame]:
        for i, img in enumerate(self.frames()):
            yield CapturedFrame(i, time.time_ns(), img)

    def close(self) -> None:  # noqa: B027 - a no-op default: file sources hold nothing open between frames
        """Release the source (idempotent)."""

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def to_rgb(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


def load_image(path: str | Path) -> np.ndarray:
    """Read one image file as RGB uint8 HWC (SourceError if missing or unreadable)."""
    p = Path(path)
    try:
        with Image.open(p) as img:
            return to_rgb(img)
    except FileNotFoundError:
        raise SourceError(f"image file not found: {p}") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise SourceError(f"cannot read image {p}: {exc}") from None


class ImageFilesSource(FrameSource):
    """A list of image files, in order; ``loop`` repeats them forever."""

    name = "images"

    def __init__(self, paths: list[Path], loop: bool = False) -> None:
        if not paths:
            raise SourceError("no image files to read")
        self.paths, self.loop = list(paths), loop

    def frames(self) -> Iterator[np.ndarray]:
        while True:
            for p in self.paths:
                yield load_image(p)
            if not self.loop:
                return


class FolderSource(ImageFilesSource):
    """The image files directly inside a folder, in name order."""

    name = "folder"

    def __init__(self, folder: str | Path, loop: bool = False) -> None:
        folder = Path(folder)
        paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
        if not paths:
            raise SourceError(f"no image files ({', '.join(sorted(IMAGE_EXTENSIONS))}) in folder {folder}")
        super().__init__(paths, loop)


class VideoFileSource(FrameSource):
    """Frames of a video: Pillow for animated images, OpenCV (optional) for the rest."""

    name = "video"

    def __init__(self, path: str | Path, loop: bool = False) -> None:
        self.path, self.loop = Path(path), loop
        if not self.path.is_file():
            raise SourceError(f"video file not found: {self.path}")
        self._use_cv2 = self.path.suffix.lower() in VIDEO_EXTENSIONS
        if self._use_cv2:
            try:
                import cv2  # noqa: F401 - optional dependency, checked up front for a clear error
            except ImportError:
                raise SourceError(
                    f"{self.path.name}: reading {self.path.suffix} video needs OpenCV (pip install opencv-python-headless); "
                    "without it, animated GIF/PNG/WebP and multi-page TIFF are supported"
                ) from None

    def frames(self) -> Iterator[np.ndarray]:
        while True:
            yield from (self._cv2_frames() if self._use_cv2 else self._pillow_frames())
            if not self.loop:
                return

    def _pillow_frames(self) -> Iterator[np.ndarray]:
        try:
            with Image.open(self.path) as img:
                for frame in ImageSequence.Iterator(img):
                    yield to_rgb(frame)
        except (UnidentifiedImageError, OSError) as exc:
            raise SourceError(f"cannot read video {self.path}: {exc}") from None

    def _cv2_frames(self) -> Iterator[np.ndarray]:
        import cv2

        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            raise SourceError(f"OpenCV cannot open video {self.path}")
        try:
            while True:
                ok, bgr = cap.read()
                if not ok:
                    return
                yield np.ascontiguousarray(bgr[:, :, ::-1])
        finally:
            cap.release()


class SyntheticSource(FrameSource):
    """A deterministic moving pattern (colour gradients and a bouncing square)."""

    name = "synthetic"

    def __init__(self, width: int = 320, height: int = 240) -> None:
        if not (8 <= width <= 4096 and 8 <= height <= 4096):
            raise SourceError(f"synthetic size: expected 8..4096 per side, found {width}x{height}")
        self.width, self.height = width, height

    def frames(self) -> Iterator[np.ndarray]:
        yy, xx = np.mgrid[0 : self.height, 0 : self.width]
        k = 0
        while True:
            img = np.empty((self.height, self.width, 3), np.uint8)
            img[..., 0] = (xx * 255 // max(1, self.width - 1) + 3 * k) % 256
            img[..., 1] = (yy * 255 // max(1, self.height - 1) + 5 * k) % 256
            img[..., 2] = (128 + 7 * k) % 256
            side = max(4, min(self.width, self.height) // 4)
            x0 = (9 * k) % max(1, self.width - side)
            y0 = (5 * k) % max(1, self.height - side)
            img[y0 : y0 + side, x0 : x0 + side] = (255 - 11 * k % 256, 40, 200)
            yield img
            k += 1


def open_source(
    spec: str, *, loop: bool = False, lores_size: Optional[tuple[int, int]] = None
) -> FrameSource:
    """Open a source by name: ``synthetic[:WxH]``, ``picamera[:N]``, a folder, an image or a video file."""
    kind, _, arg = spec.partition(":")
    if kind == "synthetic":
        w, h = _size(arg) if arg else (320, 240)
        return SyntheticSource(w, h)
    if kind == "picamera":
        from .picam import PiCameraSource

        return PiCameraSource(camera_num=int(arg or 0), lores_size=lores_size)
    path = Path(spec)
    if path.is_dir():
        return FolderSource(path, loop)
    if not path.is_file():
        raise SourceError(
            f"no such file or folder: {spec!r} (expected an image, a video, a folder, 'synthetic' or 'picamera')"
        )
    if path.suffix.lower() in VIDEO_EXTENSIONS or _is_animated(path):
        return VideoFileSource(path, loop)
    return ImageFilesSource([path], loop)


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise SourceError(f"size: expected WxH, found {text!r}") from None
    return w, h


def _is_animated(path: Path) -> bool:
    try:
        with Image.open(path) as img:
            return getattr(img, "n_frames", 1) > 1
    except (UnidentifiedImageError, OSError) as exc:
        raise SourceError(f"cannot read {path}: {exc}") from None
