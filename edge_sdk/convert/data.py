"""Image data for calibration and verification: arrays, ``.npz`` files and image folders.

A source is a uint8 array (N, H, W, C), a ``.npz`` path (``x`` [and ``y``]
arrays; ``path.npz:key`` picks another array, see :func:`npz_labels` for its
labels), a folder of image files or one image file.  Image
files are decoded with Pillow and resized (bilinear) to the model's input.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Optional, Union

import numpy as np

from ..errors import DatasetError, InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def load_image(path: Union[str, Path], shape: tuple[int, int, int]) -> np.ndarray:
    """One image file -> uint8 (H, W, C) of ``shape`` (bilinear resize, RGB or grey)."""
    try:
        from PIL import Image
    except ImportError as exc:
        raise DatasetError("reading image files needs Pillow (pip install Pillow)") from exc
    h, w, c = shape
    with Image.open(path) as img:
        img = img.convert("RGB" if c == 3 else "L")
        if img.size != (w, h):
            img = img.resize((w, h), Image.BILINEAR)
        arr = np.asarray(img, dtype=np.uint8)
    return arr.reshape(h, w, c)


def _check(x: np.ndarray, shape: tuple[int, int, int], what: str) -> np.ndarray:
    if x.ndim == 3:
        x = x[None]
    if x.dtype != np.uint8 or x.ndim != 4 or tuple(x.shape[1:]) != tuple(shape):
        raise InputError(
            f"{what}: expected uint8 images of shape (N, {shape[0]}, {shape[1]}, {shape[2]}), "
            f"found {x.dtype} {x.shape}"
        )
    return x


def load_images(
    source, shape: tuple[int, int, int], *, limit: Optional[int] = None, with_labels: bool = False
):
    """Images (N, H, W, C) uint8 [and labels or None] from an array, .npz, folder or image file."""
    labels = None
    if isinstance(source, np.ndarray):
        x = _check(source, shape, "images")
    else:
        text = str(source)
        key = None
        if ".npz:" in text:
            text, key = text.rsplit(":", 1)
        path = Path(text)
        if not path.exists():
            raise DatasetError(f"data not found: {path}")
        if path.suffix == ".npz":
            x, labels = _from_npz(path, key, shape)
        elif path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                raise DatasetError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) in {path}")
            x = np.stack([load_image(f, shape) for f in files[:limit]])
        else:
            x = load_image(path, shape)[None]
    if limit is not None:
        x = x[:limit]
        labels = None if labels is None else labels[:limit]
    return (x, labels) if with_labels else x


def _from_npz(path: Path, key: Optional[str], shape: tuple[int, int, int]):
    with np.load(path) as data:
        name = key or ("x" if "x" in data.files else None)
        if name is None or name not in data.files:
            raise DatasetError(f"{path}: no array {key or 'x'!r} (arrays: {data.files})")
        x = _check(np.asarray(data[name]), shape, f"{path}:{name}")
        labels = npz_labels(data, name, len(x))
    return x, labels


def npz_labels(data, name: str, n: int) -> Optional[np.ndarray]:
    """Labels of the ``n`` images in array ``name`` of an open .npz, or None.

    For ``x_S`` (e.g. ``x_exact``): ``y_S`` if it has n entries, else ``y[idx_S]`` if ``idx_S`` has n
    entries inside ``y``; for any array, ``y`` when it has n entries.  This reads the shared CIFAR-10 files
    as they are (``cifar10_test.npz:x_exact`` takes ``y[idx_exact]``, the training file's ``y_exact``).
    """
    files = set(data.files)
    suffix = name[2:] if name.startswith("x_") else None
    y = np.asarray(data["y"]).reshape(-1) if "y" in files else None
    if suffix and f"y_{suffix}" in files:
        y_s = np.asarray(data[f"y_{suffix}"]).reshape(-1)  # an NpzFile reads the array anew on every access
        if len(y_s) == n:
            return y_s.astype(np.int64)
    if suffix and y is not None and f"idx_{suffix}" in files:
        idx = np.asarray(data[f"idx_{suffix}"]).reshape(-1)
        if len(idx) == n and idx.dtype.kind in "iu" and (n == 0 or (idx.min() >= 0 and idx.max() < len(y))):
            return y[idx].astype(np.int64)
    if y is not None and len(y) == n:
        return y.astype(np.int64)
    return None


def images_sha256(x: np.ndarray) -> str:
    """A content hash of an image batch (shape and bytes), for provenance."""
    h = hashlib.sha256(str(tuple(x.shape)).encode())
    h.update(np.ascontiguousarray(x).tobytes())
    return h.hexdigest()
