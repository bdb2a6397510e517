"""Frame assembly: patches -> decoder -> concealment of missing patches -> PNG.

Concealment (when the decoder does not handle missing patches itself): each missing or
corrupt patch is filled with the mean colour of the pixels bordering it in its decoded
4-neighbours; a patch with no decoded neighbour gets the mean of the whole decoded
frame, and a frame with nothing decoded is mid-grey (128).  Concealment is repeated in
grid order, so a run of missing patches is filled from whatever got filled before it.
The report always lists exactly which patches were concealed, so nothing is hidden.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from .decoders import FrameGeometry, get_decoder


@dataclass
class AssemblyReport:
    """What the assembler did to one frame."""

    missing: list = field(default_factory=list)
    corrupt: list = field(default_factory=list)
    concealed: list = field(default_factory=list)
    error: str = ""

    def to_json(self) -> dict:
        return {
            "missing": self.missing,
            "corrupt": self.corrupt,
            "concealed": self.concealed,
            "error": self.error,
        }


def assemble(geometry: FrameGeometry, patches: Mapping[int, bytes]) -> tuple[np.ndarray, AssemblyReport]:
    """Decode and conceal one frame (DecoderError if its codec is unknown)."""
    decoder = get_decoder(geometry.codec)
    decoded = decoder.decode(geometry, patches)
    report = AssemblyReport(
        missing=sorted(set(range(geometry.n_patches)) - set(patches)), corrupt=list(decoded.corrupt)
    )
    bad = sorted(set(report.missing) | set(report.corrupt))
    if bad and not decoder.handles_missing:
        conceal(decoded.image, geometry, bad)
        report.concealed = bad
    return decoded.image, report


def conceal(image: np.ndarray, g: FrameGeometry, bad: list) -> None:
    """Fill the ``bad`` patches of ``image`` in place (see the module docstring)."""
    rows, cols = g.grid
    good = np.ones((rows, cols), bool)
    for idx in bad:
        good[divmod(idx, cols)] = False
    fallback = _frame_mean(image, g, good)
    for idx in bad:
        r, c = divmod(idx, cols)
        y0, x0, y1, x1 = g.box(idx)
        samples = []
        if r > 0 and good[r - 1, c]:
            samples.append(image[y0 - 1, x0:x1])
        if r + 1 < rows and good[r + 1, c]:
            samples.append(image[y1, x0:x1])
        if c > 0 and good[r, c - 1]:
            samples.append(image[y0:y1, x0 - 1])
        if c + 1 < cols and good[r, c + 1]:
            samples.append(image[y0:y1, x1])
        colour = np.concatenate(samples).mean(axis=0) if samples else fallback
        image[y0:y1, x0:x1] = np.round(colour).astype(np.uint8)
        good[r, c] = True


def _frame_mean(image: np.ndarray, g: FrameGeometry, good: np.ndarray) -> np.ndarray:
    pixels = []
    for i in range(good.size):
        if good.flat[i]:
            y0, x0, y1, x1 = g.box(i)
            pixels.append(image[y0:y1, x0:x1].reshape(-1, g.channels))
    if not pixels:
        return np.full(g.channels, 128.0)
    return np.concatenate(pixels).mean(axis=0)


def png_bytes(image: np.ndarray) -> bytes:
    """``image`` (HxWxC uint8) encoded as PNG."""
    buf = io.BytesIO()
    Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image).save(buf, format="PNG")
    return buf.getvalue()


def write_png(image: np.ndarray, path: Path, durable: bool = True) -> None:
    """Write atomically (tmp file, rename): a reader never sees half a PNG.

    ``durable=False`` skips the fsync: fine for derived images that the server can
    re-create from data already durable in SQLite (decoded frames), and it keeps one
    fsync per frame off the server's hot path.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    img = Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image)
    with open(tmp, "wb") as f:
        img.save(f, format="PNG")
        f.flush()
        if durable:
            os.fsync(f.fileno())
    os.replace(tmp, path)
