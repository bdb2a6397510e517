"""Dead-leaves distillation canvases (edge_sdk.train.synthetic): reproducible per sample, the
power-law leaf sizes they promise, and the sharp detail they exist to add over CIFAR mosaics."""

import numpy as np
import pytest

pytest.importorskip("torch")  # leaves_samples shares the descriptor module's resize and jitter

from edge_sdk.train.descriptor import mosaic_samples  # noqa: E402
from edge_sdk.train.synthetic import R_MAX, R_MIN, dead_leaves, leaf_radius, leaves_samples  # noqa: E402


def _images(n=30, seed=0):
    # smooth random images (a coarse grid upsampled), so texture comes from the leaves, not noise
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (n, 4, 4, 3)).astype(np.uint8)
    return np.repeat(np.repeat(coarse, 8, axis=1), 8, axis=2)


def test_samples_are_a_function_of_seed_and_index():
    imgs = _images()
    big, small = leaves_samples(imgs, 0, 4, seed=3)
    big2, small2 = leaves_samples(imgs, 2, 4, seed=3)  # a chunk made on its own
    assert big.shape == (4, 224, 224, 3) and small.shape == (4, 112, 112, 3) and big.dtype == np.uint8
    assert np.array_equal(big[2:], big2) and np.array_equal(small[2:], small2)
    other, _ = leaves_samples(imgs, 0, 4, seed=4)
    assert not np.array_equal(big, other)


def test_jitter_changes_colours_not_layout():
    imgs = _images()
    plain, _ = leaves_samples(imgs, 0, 2, seed=0)
    jit, _ = leaves_samples(imgs, 0, 2, seed=0, jitter=True)
    assert not np.array_equal(plain, jit)

    # same leaves: the edges (large steps of the grey image) stay where they were
    def edges(x):
        g = x.astype(np.float32).mean(axis=-1)
        return np.abs(np.diff(g, axis=2)) > 30

    e_plain, e_jit = edges(plain), edges(jit)
    overlap = (e_plain & e_jit).sum() / max(1, e_plain.sum())
    assert overlap > 0.5


def test_leaf_radii_follow_the_truncated_inverse_cube_law():
    rng = np.random.default_rng(0)
    r = np.array([leaf_radius(rng) for _ in range(20000)])
    assert r.min() >= R_MIN and r.max() <= R_MAX
    a, b = R_MIN**-2, R_MAX**-2
    for q in (0.25, 0.5, 0.9):
        expected = (a - q * (a - b)) ** -0.5  # inverse CDF of p(r) ~ r^-3 on [R_MIN, R_MAX]
        assert np.quantile(r, q) == pytest.approx(expected, rel=0.03)


def test_leaves_have_more_sharp_detail_than_upscaled_mosaics():
    imgs = _images(60)
    leaves, _ = leaves_samples(imgs, 0, 8, seed=0)
    mosaics, _ = mosaic_samples(imgs, 0, 8, seed=0)

    def sharp_fraction(x):
        g = x.astype(np.float32).mean(axis=-1)
        return (np.abs(np.diff(g, axis=2)) > 20).mean()

    assert sharp_fraction(leaves) > 2 * sharp_fraction(mosaics)


def test_smaller_canvases_scale_the_leaves():
    imgs = _images()
    canvas = dead_leaves(imgs, np.random.default_rng(0), side=64)
    assert canvas.shape == (64, 64, 3) and canvas.dtype == np.uint8


@pytest.mark.parametrize(
    "bad",
    [np.zeros((4, 32, 32, 3), np.float32), np.zeros((4, 32, 32), np.uint8), np.zeros((4, 8, 8, 1), np.uint8)],
)
def test_bad_texture_images_are_refused(bad):
    with pytest.raises(ValueError, match="uint8 images"):
        dead_leaves(bad, np.random.default_rng(0))
