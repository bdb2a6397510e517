"""The 2-bit retrieval descriptor network, distilled from a float teacher's feature map (torch, host only).

    teacher_in, student_in = mosaic_samples(cifar_images, 0, 1000, seed=0)   # 224 and 112 px canvases
    model = descriptor_qnet()                                     # lightspeeur-2803, 112x112 input
    loss = distill_loss(student_map, teacher_map)

Student: a VGG-style chip network (2-bit ternary weights, 5-bit activations, 4 max-pools) that
maps a 112x112 crop to a 7x7x1024 map, the same grid and width as the teacher's
``Conv2d_13_pointwise`` map of the Coral MobileNet-V1 embedding extractor at 224x224.  The last
chip layer is a raw 1x1 conv; its positive part is the descriptor feature map (what
``edge_sdk.retrieval.ChipExtractor`` reads), so RNIP/NIP pool it exactly like the teacher's.

Training images: CIFAR-10 training images only (the retrieval sets, Kodak and the hires photos,
are evaluation images).  A sample is a k x k mosaic of CIFAR images (k = 1..4) on a square
canvas: k = 1 is an upscaled object, k = 4 is near the detail scale of a real photo crop.  The
teacher sees the canvas at 224x224, the student at 112x112 (both bilinear, as RNIP cuts crops).

Loss: per-location regression of the teacher's map (MSE normalized by the teacher's energy),
plus the cosine distance of the crop descriptors (square-root pooling), plus a relational term
(the batch's descriptor-similarity matrix matches the teacher's).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .model import QNet

PROFILE = "lightspeeur-2803"
STUDENT_INPUT = (112, 112, 3)
TEACHER_SIDE = 224
WIDTHS = (32, 64, 128, 256, 256)
DEPTHS = (1, 1, 1, 1, 1)  # 3x3 convs per stage
OUT_CHANNELS = 1024
MOSAIC_K = (1, 2, 3, 4)


def descriptor_spec(
    widths=WIDTHS, out_channels: int = OUT_CHANNELS, bits: int = 2, depths=DEPTHS
) -> list[dict]:
    """Five stages of ``depths[i]`` 3x3 convs (a max-pool after each of the first four), then a
    raw 1x1 conv: 112 -> 7 (the teacher's grid).  A stage's first conv is ``conv{i}``, its
    extra ones ``conv{i}b``, ``conv{i}c``, ... (so a deeper student keeps the names of the
    default one)."""
    if len(widths) != 5 or len(depths) != 5 or not all(1 <= n <= 8 for n in depths):
        raise ValueError(
            f"expected 5 stage widths and 5 depths in 1..8, found {tuple(widths)} and {tuple(depths)}"
        )
    spec: list[dict] = []
    for i, (w, n) in enumerate(zip(widths, depths)):
        for j in range(n):
            name = f"conv{i}" + ("" if j == 0 else "bcdefgh"[j - 1])
            spec.append({"out": w, "bits": bits, "wq": "twn", "name": name})
        if i < 4:
            spec.append({"op": "pool", "name": f"pool{i}"})
    spec.append({"out": out_channels, "bits": bits, "wq": "twn", "k": 1, "raw": True, "name": "embed"})
    return spec


def descriptor_qnet(widths=WIDTHS, out_channels: int = OUT_CHANNELS, bits: int = 2, depths=DEPTHS) -> QNet:
    return QNet(PROFILE, STUDENT_INPUT, descriptor_spec(widths, out_channels, bits, depths), classes=1)


def _resize(img: np.ndarray, side: int) -> np.ndarray:
    from PIL import Image

    if img.shape[0] == img.shape[1] == side:  # already that size (e.g. a canvas drawn at the teacher's side)
        return img
    return np.asarray(Image.fromarray(img).resize((side, side), Image.BILINEAR), np.uint8)


def mosaic(images: np.ndarray, rng: np.random.Generator, k: int) -> np.ndarray:
    """A k x k mosaic of random images (uint8 NHWC, all the same size), randomly flipped."""
    n, h, w, c = images.shape
    pick = images[rng.integers(0, n, k * k)]
    canvas = pick.reshape(k, k, h, w, c).transpose(0, 2, 1, 3, 4).reshape(k * h, k * w, c)
    return canvas[:, ::-1] if rng.random() < 0.5 else canvas


def photometric_jitter(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random colour change of a uint8 RGB image: per-channel gain (0.7..1.3), gamma (0.7..1.4),
    saturation (0.4..1.6) and a hue rotation (+-40 degrees, about the grey axis); grey with p = 0.1.

    The teacher sees the changed image too, so the student learns the teacher's response to colour
    changes (which RNIP queries have) rather than only to CIFAR's colours."""
    x = img.astype(np.float64) / 255.0
    x = np.clip(x * rng.uniform(0.7, 1.3, 3), 0, 1) ** rng.uniform(0.7, 1.4)
    grey = x @ np.array([0.299, 0.587, 0.114])
    if rng.random() < 0.1:
        x = np.repeat(grey[..., None], 3, axis=-1)
    else:
        x = grey[..., None] + (x - grey[..., None]) * rng.uniform(0.4, 1.6)
        a = np.deg2rad(rng.uniform(-40, 40))
        k = np.ones(3) / np.sqrt(3)  # Rodrigues rotation about the grey axis
        kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
        rot = np.eye(3) + np.sin(a) * kx + (1 - np.cos(a)) * kx @ kx
        x = x @ rot.T
    return np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8)


def canvas_samples(
    make_canvas,
    start: int,
    stop: int,
    seed: int,
    sides=(TEACHER_SIDE, STUDENT_INPUT[0]),
    jitter: bool = False,
    invariant: bool = False,
    channels: int = 3,
) -> list[np.ndarray]:
    """Canvases ``make_canvas(i)`` for i in ``start..stop-1``, resized to each of ``sides``
    (uint8 (n, s, s, channels) each).

    ``make_canvas`` must depend on i (and fixed state) only, so any chunk can be (re)made on its
    own; ``jitter`` changes each canvas's colours (``photometric_jitter``, its own random stream
    (seed, i, 1)).  ``invariant`` (with ``jitter``) changes only what the student sees
    (``sides[1:]``); the teacher's side (``sides[0]``) keeps the original, so the student learns to
    answer a colour-shifted image as the teacher answers the original, rather than to copy the
    teacher's own colour response.
    """
    if invariant and not jitter:
        raise ValueError("invariant=True needs jitter=True (it says which side the jitter reaches)")
    outs = [np.empty((stop - start, s, s, channels), np.uint8) for s in sides]
    for j, i in enumerate(range(start, stop)):
        canvas = make_canvas(i)
        shifted = photometric_jitter(canvas, np.random.default_rng([seed, i, 1])) if jitter else canvas
        for side, (out, s) in enumerate(zip(outs, sides)):
            out[j] = _resize(canvas if invariant and side == 0 else shifted, s)
    return outs


def mosaic_samples(
    images: np.ndarray,
    start: int,
    stop: int,
    seed: int,
    sides=(TEACHER_SIDE, STUDENT_INPUT[0]),
    jitter: bool = False,
    invariant: bool = False,
) -> list[np.ndarray]:
    """Samples ``start..stop-1`` as mosaic canvases (``canvas_samples``: sides, jitter, invariant).

    Sample i is a k x k mosaic (k from ``MOSAIC_K``) drawn from the stream (seed, i) only.
    """

    def make_canvas(i: int) -> np.ndarray:
        rng = np.random.default_rng([seed, i])
        return np.ascontiguousarray(mosaic(images, rng, int(rng.choice(MOSAIC_K))))

    return canvas_samples(make_canvas, start, stop, seed, sides, jitter, invariant, images.shape[3])


def sqrt_pool(fmap: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) non-negative -> (N, C): square root of the mean of squares (RNIP's crop moment)."""
    return torch.sqrt(fmap.pow(2).mean(dim=(2, 3)) + 1e-12)


def distill_loss(student: torch.Tensor, teacher: torch.Tensor, relational: float = 1.0) -> dict:
    """Losses between a student map (N, C, H, W; raw) and the teacher's (N, C, H, W; non-negative)."""
    s = F.relu(student.float())
    t = teacher.float()
    regress = (s - t).pow(2).mean() / t.pow(2).mean().clamp_min(1e-8)
    gs, gt = F.normalize(sqrt_pool(s), dim=1), F.normalize(sqrt_pool(t), dim=1)
    cosine = (1.0 - (gs * gt).sum(dim=1)).mean()
    rel = (gs @ gs.T - gt @ gt.T).pow(2).mean()
    total = regress + cosine + relational * rel
    return {
        "total": total,
        "regress": regress.detach(),
        "cosine": cosine.detach(),
        "relational": rel.detach(),
    }


__all__ = [
    "OUT_CHANNELS",
    "canvas_samples",
    "STUDENT_INPUT",
    "DEPTHS",
    "WIDTHS",
    "descriptor_qnet",
    "descriptor_spec",
    "distill_loss",
    "mosaic",
    "mosaic_samples",
    "sqrt_pool",
]
