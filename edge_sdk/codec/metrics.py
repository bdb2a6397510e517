"""Image-quality metrics: PSNR-RGB, MS-SSIM (Wang, Simoncelli, Bovik 2003) and a patch-seam metric.

All three take two uint8 (H, W) or (H, W, C) images of the same shape (data range 255)
and are numpy only.

MS-SSIM follows the paper and its usual implementations (the MATLAB reference and
pytorch_msssim, which CompressAI reports): an 11x11 Gaussian window with sigma 1.5,
"valid" filtering (no padding), K1 = 0.01, K2 = 0.03, 5 scales with weights
(0.0448, 0.2856, 0.3001, 0.2363, 0.1333), 2x2 average-pool downsampling between scales
(an odd last row/column is dropped).  The contrast-structure term is averaged at
scales 1-4 and the full SSIM at scale 5; negative means are clamped to 0 (so the
fractional powers stay real); colour images are scored per channel and the channel
scores averaged.  The coarsest scale must still hold the 11x11 window, so both sides
must be at least 176 pixels.

The seam metric compares the squared error on pixels that touch an internal patch
border (the last row/column of a patch and the first of the next) with the error on
all other pixels (``ratio``; > 1 means the errors concentrate on the seams), and with
the error along the patch mid-lines (``ratio_midline``, a control with the same
geometry; see :func:`seam_stats`).
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
WINDOW = 11
SIGMA = 1.5
K1, K2 = 0.01, 0.03
DATA_RANGE = 255.0
MIN_MS_SSIM_SIDE = WINDOW * 2 ** (len(MS_SSIM_WEIGHTS) - 1)


def _pair(a, b) -> tuple:
    """Both images as float64 (H, W, C) after checking they are comparable."""
    for name, img in (("reference", a), ("test", b)):
        if not isinstance(img, np.ndarray) or img.ndim not in (2, 3):
            raise InputError(
                f"{name} image must be a (H, W[, C]) numpy array, found {getattr(img, 'shape', img)}"
            )
    if a.shape != b.shape:
        raise InputError(f"image shapes differ: reference {a.shape}, test {b.shape}")
    a, b = (x.astype(np.float64) for x in (a, b))
    return (a[..., None], b[..., None]) if a.ndim == 2 else (a, b)


def mse(a, b) -> float:
    """Mean squared error over all pixels and channels."""
    x, y = _pair(a, b)
    return float(np.mean((x - y) ** 2))


def psnr(a, b, max_db: float = float("inf")) -> float:
    """PSNR over all pixels and channels (PSNR-RGB for colour), in dB; ``max_db`` caps identical images."""
    err = mse(a, b)
    if err == 0:
        return max_db
    return min(max_db, 10.0 * np.log10(DATA_RANGE**2 / err))


def gaussian_window(size: int = WINDOW, sigma: float = SIGMA) -> np.ndarray:
    """The normalized 1-D Gaussian used separably."""
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def _filter_valid(img: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Separable 'valid' correlation of (H, W, C) with the 1-D kernel ``g`` along H then W."""
    k = len(g)
    h, w = img.shape[:2]
    rows = sum(g[i] * img[i : h - k + 1 + i] for i in range(k))
    return sum(g[i] * rows[:, i : w - k + 1 + i] for i in range(k))


def _ssim_terms(x: np.ndarray, y: np.ndarray, g: np.ndarray) -> tuple:
    """Per-channel means of the SSIM map and of the contrast-structure map."""
    c1, c2 = (K1 * DATA_RANGE) ** 2, (K2 * DATA_RANGE) ** 2
    mu_x, mu_y = _filter_valid(x, g), _filter_valid(y, g)
    var_x = _filter_valid(x * x, g) - mu_x**2
    var_y = _filter_valid(y * y, g) - mu_y**2
    cov = _filter_valid(x * y, g) - mu_x * mu_y
    cs_map = (2 * cov + c2) / (var_x + var_y + c2)
    ssim_map = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1) * cs_map
    return ssim_map.mean(axis=(0, 1)), cs_map.mean(axis=(0, 1))


def ssim(a, b) -> float:
    """Single-scale SSIM (same window and constants as :func:`ms_ssim`), channel mean."""
    x, y = _pair(a, b)
    if min(x.shape[:2]) < WINDOW:
        raise InputError(f"SSIM needs both sides >= {WINDOW} pixels, found {x.shape[:2]}")
    return float(_ssim_terms(x, y, gaussian_window())[0].mean())


def _downsample(img: np.ndarray) -> np.ndarray:
    h, w = (img.shape[0] // 2) * 2, (img.shape[1] // 2) * 2
    img = img[:h, :w]
    return 0.25 * (img[0::2, 0::2] + img[1::2, 0::2] + img[0::2, 1::2] + img[1::2, 1::2])


def ms_ssim(a, b) -> float:
    """MS-SSIM in [0, 1] (1 for identical images); see the module docstring for the exact definition."""
    x, y = _pair(a, b)
    if min(x.shape[:2]) < MIN_MS_SSIM_SIDE:
        raise InputError(f"MS-SSIM needs both sides >= {MIN_MS_SSIM_SIDE} pixels, found {x.shape[:2]}")
    g = gaussian_window()
    weights = np.asarray(MS_SSIM_WEIGHTS)
    score = np.ones(x.shape[2])
    for scale, weight in enumerate(weights):
        ssim_c, cs_c = _ssim_terms(x, y, g)
        last = scale == len(weights) - 1
        score *= np.maximum(ssim_c if last else cs_c, 0.0) ** weight
        if not last:
            x, y = _downsample(x), _downsample(y)
    return float(score.mean())


def ms_ssim_db(value: float) -> float:
    """MS-SSIM on the usual dB scale, -10 log10(1 - MS-SSIM) (capped at 100 dB)."""
    return 100.0 if value >= 1.0 else min(100.0, -10.0 * float(np.log10(1.0 - value)))


def _near_lines(n: int, patch: int, offset: int) -> np.ndarray:
    """Rows (or columns) on either side of the lines ``k * patch + offset`` strictly inside 0..n."""
    i = np.arange(n)
    return ((i % patch == (offset - 1) % patch) & (i + 1 < n)) | ((i % patch == offset % patch) & (i > 0))


def seam_mask(height: int, width: int, patch: int, offset: int = 0) -> np.ndarray:
    """True on pixels adjacent to an internal patch border (either side); ``offset`` shifts the lines."""
    return _near_lines(height, patch, offset)[:, None] | _near_lines(width, patch, offset)[None, :]


def seam_stats(a, b, patch: int = 32) -> dict:
    """MSE next to internal patch borders vs elsewhere, and vs a mid-patch control.

    ``ratio`` = border MSE / MSE of all other pixels.  A decoder whose error is periodic
    inside a patch (block transforms, upsampling phases) can score above 1 with no seam
    at all, so ``ratio_midline`` compares the border pixels with the pixels along the
    patch mid-lines (the same pattern shifted by ``patch // 2``): about 1 without seams.
    """
    x, y = _pair(a, b)
    border = seam_mask(x.shape[0], x.shape[1], patch)
    midline = seam_mask(x.shape[0], x.shape[1], patch, patch // 2) & ~border
    if not border.any() or border.all() or not midline.any():
        raise InputError(
            f"a {x.shape[0]}x{x.shape[1]} image has no internal {patch}-pixel patch border to measure"
        )
    err = ((x - y) ** 2).mean(axis=2)
    e_border, e_interior, e_mid = (float(err[m].mean()) for m in (border, ~border, midline))
    return {
        "border_mse": e_border,
        "interior_mse": e_interior,
        "midline_mse": e_mid,
        "ratio": _ratio(e_border, e_interior),
        "ratio_midline": _ratio(e_border, e_mid),
        "border_fraction": float(border.mean()),
    }


def _ratio(num: float, den: float) -> float:
    if den > 0:
        return num / den
    return 1.0 if num == 0 else float("inf")
