"""Training data: uint8 NHWC arrays from .npz files or image folders, batches and augmentation.

Images stay uint8 until the model converts them exactly like the chip does, so the
float model, the fused model and the firmware all see the same input codes.
Randomness comes from explicit ``torch.Generator`` objects (deterministic resume).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..errors import DatasetError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


@dataclass
class ArrayData:
    """Images ``x`` (uint8 N, H, W, C) and integer labels ``y`` (int64 N)."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def subset(self, n: int) -> ArrayData:
        return ArrayData(self.x[:n], self.y[:n])


def from_numpy(x: np.ndarray, y: np.ndarray) -> ArrayData:
    x = np.asarray(x)
    if x.dtype != np.uint8:
        raise DatasetError(f"images must be uint8, found {x.dtype}")
    if x.ndim == 3:  # grey images (N, H, W) -> one channel
        x = x[..., None]
    return ArrayData(
        torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(np.asarray(y).astype(np.int64))
    )


def load_npz(path: str | Path, x_key: str = "x", y_key: str = "y") -> ArrayData:
    """One (x, y) pair of arrays from an .npz file (x uint8 NHWC or NHW)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"dataset file not found: {path}")
    with np.load(path) as d:
        missing = [k for k in (x_key, y_key) if k not in d.files]
        if missing:
            raise DatasetError(f"{path} has no arrays {missing} (has {d.files})")
        return from_numpy(d[x_key], d[y_key])


def load_image_folder(
    root: str | Path, size: Optional[tuple[int, int]] = None, grey: bool = False
) -> ArrayData:
    """``root/<class>/<image>``: classes sorted by name; images resized to ``size`` (W, H) if given."""
    from PIL import Image

    root = Path(root)
    classes = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    if not classes:
        raise DatasetError(f"no class folders under {root}")
    xs, ys = [], []
    for label, name in enumerate(classes):
        for f in sorted((root / name).iterdir()):
            if f.suffix.lower() in IMAGE_SUFFIXES:
                img = Image.open(f).convert("L" if grey else "RGB")
                xs.append(np.asarray(img.resize(size) if size else img))
                ys.append(label)
    return from_numpy(np.stack(xs), np.array(ys))


def load_mnist(path: str | Path) -> tuple[ArrayData, ArrayData]:
    """MNIST (keras layout): train and test, (N, 28, 28, 1) uint8."""
    return load_npz(path, "x_train", "y_train"), load_npz(path, "x_test", "y_test")


def load_cifar10(root: str | Path) -> tuple[ArrayData, ArrayData]:
    """CIFAR-10 from shared/data/cifar10 (MANIFEST.md section 1).

    Train: the 20,000 JPEG-degraded images plus the 7,897 pixel-exact ones (labels
    ``y_exact``); test: the 1,000 pixel-exact test images.  Never trains on the test set.
    """
    root = Path(root)
    path = root / "cifar10_train_20k.npz"
    if not path.is_file():
        raise DatasetError(f"CIFAR-10 training file not found: {path}")
    with np.load(path) as d:
        x = np.concatenate([d["x_jpeg"], d["x_exact"]])
        y = np.concatenate([d["y"], d["y_exact"]])
    with np.load(root / "cifar10_test.npz") as d:
        test = from_numpy(d["x_exact"], d["y"][d["idx_exact"]])
    return from_numpy(x, y), test


def augment(x: torch.Tensor, gen: torch.Generator, pad: int = 4, flip: bool = True) -> torch.Tensor:
    """Random crop from a zero-padded copy and random horizontal flip (uint8 NHWC in and out)."""
    n, h, w, _ = x.shape
    if pad:
        xp = torch.nn.functional.pad(x, (0, 0, pad, pad, pad, pad))
        oy = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
        ox = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
        rows = (oy[:, None] + torch.arange(h))[:, :, None]
        cols = (ox[:, None] + torch.arange(w))[:, None, :]
        x = xp[torch.arange(n)[:, None, None], rows, cols]
    if flip:
        mask = torch.rand(n, generator=gen) < 0.5
        x = torch.where(mask[:, None, None, None], x.flip(2), x)
    return x


def cutmix(
    x: torch.Tensor, y: torch.Tensor, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """CutMix (Yun et al. 2019) on a uint8 NHWC batch: a box of a shuffled copy pasted into
    every image.  Returns (mixed images, the pasted images' labels, lam = the share of the
    original image left).  Paired with distillation, the teacher labels the mixed images
    ("function matching", Beyer et al. 2022), which stretches a small training set."""
    n, h, w, _ = x.shape
    perm = torch.randperm(n, generator=gen)
    lam = float(torch.rand((), generator=gen))
    bh, bw = int(round(h * (1 - lam) ** 0.5)), int(round(w * (1 - lam) ** 0.5))
    cy = int(torch.randint(0, h, (), generator=gen))
    cx = int(torch.randint(0, w, (), generator=gen))
    y0, y1 = max(cy - bh // 2, 0), min(cy + bh - bh // 2, h)
    x0, x1 = max(cx - bw // 2, 0), min(cx + bw - bw // 2, w)
    mixed = x.clone()
    mixed[:, y0:y1, x0:x1] = x[perm, y0:y1, x0:x1]
    return mixed, y[perm], 1.0 - (y1 - y0) * (x1 - x0) / (h * w)


def batches(
    data: ArrayData,
    batch_size: int,
    gen: Optional[torch.Generator] = None,
    aug: bool = False,
    limit: int = 0,
    pad: int = 4,
    flip: bool = True,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Mini-batches; shuffled (and augmented if ``aug``) when a generator is given."""
    n = len(data)
    order = torch.randperm(n, generator=gen) if gen is not None else torch.arange(n)
    count = 0
    for i in range(0, n, batch_size):
        if limit and count >= limit:
            return
        idx = order[i : i + batch_size]
        x = data.x[idx]
        if aug and gen is not None:
            x = augment(x, gen, pad, flip)
        count += 1
        yield x, data.y[idx]


def generator(*seeds: int) -> torch.Generator:
    """A torch generator seeded from several integers (seed, stage, epoch)."""
    g = torch.Generator()
    value = 0
    for s in seeds:
        value = (value * 1_000_003 + int(s)) % (2**63)
    g.manual_seed(value)
    return g
