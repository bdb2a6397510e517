"""Synthetic "dead leaves" training canvases for distillation (numpy; no evaluation images).

    teacher_in, student_in = leaves_samples(cifar_images, 0, 1000, seed=0)   # 224 and 112 px

Why: the descriptor student is distilled on CIFAR-10 mosaics, the only unlabeled images here that
are not evaluation images, and CIFAR upscaled to a 224 px canvas has almost no sharp detail.
Copy detection cuts RNIP crops out of multi-megapixel photos, where edges, occlusions and
texture at every scale are the rule.  A dead-leaves image (Lee, Mumford & Huang 2001: opaque
shapes with power-law sizes painted over each other) has those statistics at any resolution;
distillation only needs the teacher's response to an image, not a label, so such canvases are
usable training inputs (procedural images for pre-training: Baradad et al., NeurIPS 2021).

Each leaf is a disc, a rotated rectangle or a triangle, filled with one of: a CIFAR training
image stretched over its bounding box (natural colour and texture), a flat CIFAR pixel colour, or
a two-colour sinusoidal grating (oriented high-frequency texture).  Radii follow p(r) ~ r^-3 (the
scale-invariant exponent) between ``R_MIN`` and ``R_MAX`` pixels of the 224 px canvas.
"""

from __future__ import annotations

import numpy as np

CANVAS = 224
R_MIN, R_MAX = 4.0, 120.0
LEAVES = (250, 700)  # leaves per canvas, uniform in this range
FILLS = ("image", "flat", "grating")
FILL_P = (0.5, 0.25, 0.25)


def leaf_radius(rng: np.random.Generator, r_min: float = R_MIN, r_max: float = R_MAX) -> float:
    """A radius with density ~ r^-3 on [r_min, r_max] (inverse CDF of the truncated power law)."""
    u = rng.random()
    a, b = r_min**-2, r_max**-2
    return float((a - u * (a - b)) ** -0.5)


def _shape_mask(rng, kind: str, yy: np.ndarray, xx: np.ndarray, r: float) -> np.ndarray:
    """Boolean mask of a shape centred at (0, 0) over the offset grids ``yy``, ``xx``."""
    if kind == "disc":
        return yy**2 + xx**2 <= r * r
    theta = rng.uniform(0, np.pi)
    u = xx * np.cos(theta) + yy * np.sin(theta)
    v = -xx * np.sin(theta) + yy * np.cos(theta)
    if kind == "rect":
        aspect = rng.uniform(0.3, 1.0)
        return (np.abs(u) <= r) & (np.abs(v) <= r * aspect)
    # triangle: inside three half-planes whose normals are 120 degrees apart
    inside = np.ones(u.shape, bool)
    for k in range(3):
        a = theta + 2 * np.pi * k / 3
        inside &= xx * np.cos(a) + yy * np.sin(a) <= r / 2
    return inside


def _fill(rng, images: np.ndarray, h: int, w: int) -> np.ndarray:
    """An (h, w, 3) float fill for one leaf."""
    kind = FILLS[int(rng.choice(len(FILLS), p=FILL_P))]
    if kind == "image":
        from PIL import Image

        img = Image.fromarray(images[rng.integers(len(images))])
        return np.asarray(img.resize((w, h), Image.BILINEAR), np.float32)
    colours = images[rng.integers(len(images), size=2), rng.integers(images.shape[1], size=2)]
    colours = colours[np.arange(2), rng.integers(images.shape[2], size=2)].astype(np.float32)
    if kind == "flat":
        return np.broadcast_to(colours[0], (h, w, 3))
    period = rng.uniform(3.0, 24.0)
    a = rng.uniform(0, np.pi)
    yy, xx = np.mgrid[0:h, 0:w]
    t = 0.5 + 0.5 * np.sin(2 * np.pi * (xx * np.cos(a) + yy * np.sin(a)) / period)
    return colours[0] * t[..., None] + colours[1] * (1 - t[..., None])


def dead_leaves(images: np.ndarray, rng: np.random.Generator, side: int = CANVAS) -> np.ndarray:
    """One (side, side, 3) uint8 canvas of leaves textured from ``images`` (uint8 NHWC)."""
    if images.ndim != 4 or images.shape[3] != 3 or images.dtype != np.uint8:
        raise ValueError(f"expected uint8 images (N, H, W, 3), found {images.dtype} {images.shape}")
    scale = side / CANVAS
    canvas = _fill(rng, images, side, side).astype(np.float32).copy()
    for _ in range(int(rng.integers(LEAVES[0], LEAVES[1] + 1))):
        r = leaf_radius(rng) * scale
        cy, cx = rng.uniform(-r, side + r, 2)
        y0, y1 = max(0, int(cy - r)), min(side, int(np.ceil(cy + r)) + 1)
        x0, x1 = max(0, int(cx - r)), min(side, int(np.ceil(cx + r)) + 1)
        if y1 <= y0 or x1 <= x0:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        mask = _shape_mask(rng, str(rng.choice(("disc", "rect", "tri"))), yy - cy, xx - cx, r)
        canvas[y0:y1, x0:x1][mask] = _fill(rng, images, y1 - y0, x1 - x0)[mask]
    return np.clip(np.round(canvas), 0, 255).astype(np.uint8)


def leaves_samples(
    images: np.ndarray,
    start: int,
    stop: int,
    seed: int,
    sides=(224, 112),
    jitter: bool = False,
    invariant: bool = False,
) -> list[np.ndarray]:
    """Samples ``start..stop-1`` as dead-leaves canvases drawn at ``max(sides)``
    (``descriptor.canvas_samples``: sides, jitter, invariant).

    Sample i is drawn from the stream (seed, i, 7) only, like ``descriptor.mosaic_samples``.
    """
    from .descriptor import canvas_samples

    side = max(sides)
    return canvas_samples(
        lambda i: dead_leaves(images, np.random.default_rng([seed, i, 7]), side),
        start,
        stop,
        seed,
        sides,
        jitter,
        invariant,
    )


__all__ = ["dead_leaves", "leaf_radius", "leaves_samples"]
