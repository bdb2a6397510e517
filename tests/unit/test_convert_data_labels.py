"""Labels of .npz image sources: ``x`` with ``y``, and ``x_S`` with ``y_S`` or ``y[idx_S]`` (the shared CIFAR-10 layout)."""

from __future__ import annotations

import numpy as np
import pytest

from edge_sdk.convert.data import load_images

SHAPE = (4, 4, 3)


def _imgs(n, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, *SHAPE), dtype=np.uint8)


def _load(path):
    return load_images(path, SHAPE, with_labels=True)


def test_x_with_y(tmp_path):
    np.savez(tmp_path / "d.npz", x=_imgs(5), y=np.arange(5, dtype=np.uint8))
    x, y = _load(tmp_path / "d.npz")
    assert x.shape == (5, *SHAPE) and y.tolist() == [0, 1, 2, 3, 4] and y.dtype == np.int64


def test_test_file_layout_takes_y_at_idx(tmp_path):
    """cifar10_test.npz: x_exact (1000) pairs with y[idx_exact]; y itself covers the 10,000 JPEG images."""
    y = np.arange(20, dtype=np.uint8) % 10
    idx = np.array([3, 7, 11, 19], dtype=np.int32)
    np.savez(tmp_path / "t.npz", x_jpeg=_imgs(20), y=y, x_exact=_imgs(4, 1), idx_exact=idx)
    x, labels = _load(f"{tmp_path / 't.npz'}:x_exact")
    assert x.shape[0] == 4 and labels.tolist() == y[idx].tolist()
    _, labels = _load(f"{tmp_path / 't.npz'}:x_jpeg")
    assert labels.tolist() == y.tolist()


def test_train_file_layout_prefers_y_suffix(tmp_path):
    """cifar10_train_20k.npz: idx_exact indexes the 50k order (beyond y), so y_exact is the one to use."""
    np.savez(
        tmp_path / "t.npz",
        x_jpeg=_imgs(6),
        y=np.zeros(6, np.uint8),
        x_exact=_imgs(3, 1),
        idx_exact=np.array([1, 40, 90], np.int32),
        y_exact=np.array([7, 8, 9], np.uint8),
    )
    _, labels = _load(f"{tmp_path / 't.npz'}:x_exact")
    assert labels.tolist() == [7, 8, 9]


@pytest.mark.parametrize(
    "extra",
    [
        {"idx_exact": np.array([1, 2], np.int32)},  # wrong length
        {"idx_exact": np.array([1, 2, 99], np.int32)},  # outside y
        {"idx_exact": np.array([-1, 0, 1], np.int32)},  # negative
        {"idx_exact": np.array([0.0, 1.0, 2.0])},  # not integers
        {"y_exact": np.array([1, 2], np.uint8)},  # wrong length
    ],
)
def test_no_labels_rather_than_wrong_labels(tmp_path, extra):
    np.savez(tmp_path / "t.npz", y=np.arange(10, dtype=np.uint8), x_exact=_imgs(3), **extra)
    x, labels = _load(f"{tmp_path / 't.npz'}:x_exact")
    assert x.shape[0] == 3 and labels is None
