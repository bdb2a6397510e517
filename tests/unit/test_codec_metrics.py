"""PSNR, MS-SSIM (Wang et al. 2003) and the seam metric against known properties and values."""

import numpy as np
import pytest

from edge_sdk.codec import metrics
from edge_sdk.errors import InputError


def _pair():
    """A deterministic textured image and a perturbed copy (all MS-SSIM scales have even sizes)."""
    y, x = np.mgrid[0:192, 224:480]
    a = np.stack([128 + 100 * np.sin(x / 9.0) * np.cos(y / 13.0), (x * y) % 256, (3 * x + 5 * y) % 256], -1)
    a = np.clip(a, 0, 255).astype(np.uint8)
    b = np.clip(a.astype(int) + ((x * 7 + y * 13) % 21 - 10)[..., None], 0, 255).astype(np.uint8)
    return a, b


def _noisy(img, sigma, seed=0):
    noise = np.random.default_rng(seed).normal(0, sigma, img.shape)
    return np.clip(img + noise, 0, 255).astype(np.uint8)


def test_psnr_known_values():
    a = np.full((8, 8, 3), 100, np.uint8)
    assert metrics.psnr(a, a + 1) == pytest.approx(10 * np.log10(255**2), abs=1e-12)  # MSE 1: 48.13 dB
    assert metrics.psnr(a, a) == float("inf") and metrics.psnr(a, a, max_db=100.0) == 100.0
    b = a.copy()
    b[0, 0, 0] = 116  # one error of 16 over 192 values: MSE 256/192
    assert metrics.psnr(a, b) == pytest.approx(10 * np.log10(255**2 * 192 / 256))


def test_ms_ssim_is_one_for_identical_images_and_symmetric():
    a, b = _pair()
    assert metrics.ms_ssim(a, a) == pytest.approx(1.0, abs=1e-12)
    assert metrics.ms_ssim(a, b) == pytest.approx(metrics.ms_ssim(b, a), abs=1e-12)


def test_ms_ssim_matches_the_published_implementation():
    # pytorch_msssim 1.0.0 (ms_ssim / ssim, data_range=255, float64 tensors) on this pair gives
    # 0.9938676616660663 / 0.9105796973493332 (measured once; pytorch_msssim is not a dependency).
    a, b = _pair()
    assert metrics.ms_ssim(a, b) == pytest.approx(0.9938676616660663, abs=1e-5)
    assert metrics.ssim(a, b) == pytest.approx(0.9105796973493332, abs=1e-5)


def test_ms_ssim_decreases_monotonically_with_noise():
    a, _ = _pair()
    scores = [metrics.ms_ssim(a, _noisy(a, s)) for s in (1, 3, 8, 20, 50)]
    assert all(x > y for x, y in zip(scores, scores[1:])) and 0 <= scores[-1] < scores[0] < 1
    db = [metrics.ms_ssim_db(s) for s in scores]
    assert all(x > y for x, y in zip(db, db[1:]))


def test_ms_ssim_greyscale_and_size_limits():
    a, b = _pair()
    grey = metrics.ms_ssim(a[..., 0], b[..., 0])
    assert 0 < grey < 1
    with pytest.raises(InputError, match="176"):
        metrics.ms_ssim(a[:100], b[:100])
    with pytest.raises(InputError, match="differ"):
        metrics.ms_ssim(a, b[:, :-2])


def test_seam_ratio_finds_errors_on_patch_borders():
    rng = np.random.default_rng(1)
    ref = rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)
    mask = metrics.seam_mask(128, 128, 32)
    assert (
        mask[31, 5]
        and mask[32, 5]
        and mask[5, 63]
        and not mask[0, 5]
        and not mask[16, 16]
        and not mask[127, 5]
    )
    assert mask[:, 5].sum() == 6  # rows 31/32, 63/64, 95/96
    seams = ref.astype(int)
    seams[mask] += 20
    stats = metrics.seam_stats(ref, np.clip(seams, 0, 255).astype(np.uint8), 32)
    assert stats["ratio"] > 100 and stats["ratio_midline"] > 100
    uniform = metrics.seam_stats(ref, _noisy(ref, 5), 32)
    assert 0.8 < uniform["ratio"] < 1.25 and 0.8 < uniform["ratio_midline"] < 1.25
    assert metrics.seam_stats(ref, ref, 32)["ratio"] == 1.0
    with pytest.raises(InputError, match="no internal"):
        metrics.seam_stats(ref[:20, :20], ref[:20, :20], 32)
