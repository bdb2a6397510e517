"""RNIP, NIP and whole-image descriptors of frames of any size (docs/retrieval.md).

RNIP (region nested invariance pooling): cut the frame into chip-sized crops on a
multi-scale grid, run every crop through the chip (batched), pool inside each crop,
then over crops (translation), over scales, over rotations; L2-normalize; optional
PCA-whitening.  NIP: the same nesting on one feature map of the whole (downscaled)
frame with windows 3/5/7.  Every moment is a parameter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..errors import InputError
from .crops import check_frame, crop_grid, cut, resize
from .extractors import FeatureExtractor
from .pooling import check_moment, l2_normalize, nip_from_maps, pool

ROTATIONS = (0, 90, 180, 270)


@dataclass(frozen=True)
class RNIPConfig:
    scales: tuple[float, ...] = (1.0, 0.5)
    overlap: float = 0.4
    rotations: tuple[int, ...] = (0,)
    crop_moment: str = "sqrt"
    translation_moment: str = "max"
    scale_moment: str = "mean"
    rotation_moment: str = "max"
    batch: int = 16

    def __post_init__(self) -> None:
        for m in (self.crop_moment, self.translation_moment, self.scale_moment, self.rotation_moment):
            check_moment(m)
        if not self.rotations or any(r not in ROTATIONS for r in self.rotations):
            raise InputError(f"rotations must be among {ROTATIONS}, found {self.rotations}")


@dataclass
class Whitening:
    """PCA-whitening learned offline: ``normalize(proj @ (x - mean))``."""

    mean: np.ndarray
    proj: np.ndarray  # (d_out, d_in)

    @classmethod
    def fit(cls, descriptors: np.ndarray, dim: Optional[int] = None, eps: float = 1e-6) -> Whitening:
        x = np.asarray(descriptors, np.float64)
        if x.ndim != 2 or x.shape[0] < 2:
            raise InputError(f"whitening needs an (N >= 2, D) array of descriptors, found {x.shape}")
        mean = x.mean(axis=0)
        cov = np.cov(x - mean, rowvar=False)
        vals, vecs = np.linalg.eigh(cov)
        order = np.argsort(vals)[::-1][: dim or x.shape[1]]
        proj = (vecs[:, order] / np.sqrt(vals[order] + eps)).T
        return cls(mean.astype(np.float32), proj.astype(np.float32))

    def apply(self, v: np.ndarray) -> np.ndarray:
        return l2_normalize((np.asarray(v, np.float32) - self.mean) @ self.proj.T)

    def to_metadata(self) -> dict:
        return {
            "pca_mean": self.mean.astype("<f4").tobytes(),
            "pca_proj": self.proj.astype("<f4").tobytes(),
            "pca_shape": list(self.proj.shape),
        }

    @classmethod
    def from_metadata(cls, meta: dict) -> Whitening:
        try:
            d_out, d_in = meta["pca_shape"]
            mean = np.frombuffer(meta["pca_mean"], "<f4").reshape(d_in)
            proj = np.frombuffer(meta["pca_proj"], "<f4").reshape(d_out, d_in)
        except (KeyError, ValueError, TypeError) as exc:
            raise InputError(f"malformed PCA-whitening metadata: {exc}") from exc
        return cls(mean.copy(), proj.copy())


def _run_batched(extractor: FeatureExtractor, crops: list[np.ndarray], batch: int) -> np.ndarray:
    out = [extractor.features(np.stack(crops[i : i + batch])) for i in range(0, len(crops), batch)]
    return np.concatenate(out)


def rnip(
    frame: np.ndarray,
    extractor: FeatureExtractor,
    config: RNIPConfig = RNIPConfig(),
    whitening: Optional[Whitening] = None,
) -> np.ndarray:
    """The RNIP descriptor (float32, unit L2 norm) of one uint8 frame of any size."""
    h_in, w_in, c_in = extractor.input_shape
    if len(config.rotations) > 1 and h_in != w_in:
        raise InputError(f"rotations need a square chip input, found {h_in}x{w_in}")
    frame = check_frame(frame, c_in)
    grid = crop_grid(frame.shape[0], frame.shape[1], config.scales, config.overlap)
    per_rotation = []
    for rot in config.rotations:
        maps = _run_batched(extractor, [cut(frame, c, h_in, w_in, rot) for c in grid], config.batch)
        per_crop = pool(maps, config.crop_moment, axis=(1, 2))  # (n_crops, D)
        scales = np.array([c.scale for c in grid])
        per_scale = [pool(per_crop[scales == s], config.translation_moment, axis=0) for s in config.scales]
        per_rotation.append(pool(np.stack(per_scale), config.scale_moment, axis=0))
    desc = l2_normalize(pool(np.stack(per_rotation), config.rotation_moment, axis=0))
    return whitening.apply(desc) if whitening is not None else desc


def nip(
    frame: np.ndarray,
    extractor: FeatureExtractor,
    windows=(3, 5, 7),
    rotations=(0,),
    whitening: Optional[Whitening] = None,
) -> np.ndarray:
    """Plain NIP on the feature map of the whole frame downscaled to the chip input (baseline)."""
    h_in, w_in, c_in = extractor.input_shape
    img = resize(check_frame(frame, c_in), h_in, w_in)
    maps = extractor.features(np.stack([np.ascontiguousarray(np.rot90(img, r // 90)) for r in rotations]))
    desc = nip_from_maps(list(maps), windows)
    return whitening.apply(desc) if whitening is not None else desc


def whole_image(
    frame: np.ndarray,
    extractor: FeatureExtractor,
    moment: str = "sqrt",
    whitening: Optional[Whitening] = None,
) -> np.ndarray:
    """The whole frame downscaled to the chip input, one global pooling (the naive baseline)."""
    h_in, w_in, c_in = extractor.input_shape
    img = resize(check_frame(frame, c_in), h_in, w_in)
    desc = l2_normalize(pool(extractor.features(img[None])[0], moment, axis=(0, 1)))
    return whitening.apply(desc) if whitening is not None else desc


@dataclass
class Describer:
    """A named descriptor method, for evaluation: method in {rnip, nip, whole}."""

    name: str
    extractor: FeatureExtractor
    method: str = "rnip"
    config: RNIPConfig = field(default_factory=RNIPConfig)
    whitening: Optional[Whitening] = None

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        if self.method == "rnip":
            return rnip(frame, self.extractor, self.config, self.whitening)
        if self.method == "nip":
            return nip(frame, self.extractor, rotations=self.config.rotations, whitening=self.whitening)
        if self.method == "whole":
            return whole_image(frame, self.extractor, self.config.crop_moment, self.whitening)
        raise InputError(f"method must be rnip, nip or whole, found {self.method!r}")
