"""RNIP crop grid, pooling moments, wire encodings and retrieval metrics."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_sdk import InputError
from edge_sdk.retrieval import RNIPConfig, Whitening, decode, encode, encoded_size, nip, rnip, whole_image
from edge_sdk.retrieval.crops import crop_grid
from edge_sdk.retrieval.metrics import average_precision, evaluate, similarity
from edge_sdk.retrieval.pooling import pool, window_pool_max


@settings(max_examples=80, deadline=None)
@given(
    st.integers(16, 3000),
    st.integers(16, 3000),
    st.lists(st.sampled_from([1.0, 0.7, 0.5, 0.25]), min_size=1, max_size=3, unique=True),
    st.floats(0.0, 0.9),
)
def test_crop_grid_covers_every_pixel_with_overlap(h, w, scales, overlap):
    crops = crop_grid(h, w, tuple(scales), overlap)
    for s in scales:
        cs = [c for c in crops if c.scale == s]
        side = cs[0].side
        assert all(
            0 <= c.y and c.y + c.side <= max(h, side) and 0 <= c.x and c.x + c.side <= max(w, side)
            for c in cs
        )
        ys, xs = sorted({c.y for c in cs}), sorted({c.x for c in cs})
        for pos, extent in ((ys, h), (xs, w)):
            assert pos[0] == 0 and (pos[-1] + side >= extent)
            steps = np.diff(pos)
            assert np.all(steps <= max(1, side * (1 - overlap)) + 1)  # neighbours overlap by >= overlap


class FakeExtractor:
    """Feature map = per-channel colour means on a 4x4 grid (deterministic, cheap)."""

    input_shape = (32, 32, 3)

    def features(self, batch):
        b = batch.astype(np.float32).reshape(len(batch), 4, 8, 4, 8, 3).mean(axis=(2, 4))
        return np.concatenate([b, 255 - b], axis=-1)


def test_rnip_on_any_frame_size_and_grey():
    rng = np.random.default_rng(0)
    for shape in [(1080, 1920, 3), (17, 300, 3), (480, 640)]:
        d = rnip(rng.integers(0, 256, shape, dtype=np.uint8), FakeExtractor(), RNIPConfig(rotations=(0, 90)))
        assert d.shape == (6,) and abs(np.linalg.norm(d) - 1) < 1e-5
    grey = rng.integers(0, 256, (64, 64), dtype=np.uint8)
    assert np.allclose(rnip(grey, FakeExtractor()), rnip(np.repeat(grey[:, :, None], 3, 2), FakeExtractor()))


@pytest.mark.parametrize(
    "frame, match",
    [
        (np.zeros((8, 100, 3), np.uint8), "smaller than the minimum"),
        (np.zeros((64, 64, 3), np.float32), "dtype must be uint8"),
        (np.zeros((64, 64, 2), np.uint8), r"found \(64, 64, 2\)"),
        ("image.png", "numpy uint8 array"),
    ],
)
def test_bad_frames(frame, match):
    with pytest.raises(InputError, match=match):
        rnip(frame, FakeExtractor())


def test_rnip_is_invariant_to_rotation_when_asked():
    img = np.random.default_rng(1).integers(0, 256, (96, 96, 3), dtype=np.uint8)
    cfg = RNIPConfig(scales=(1.0,), rotations=(0, 90, 180, 270))
    np.testing.assert_allclose(
        rnip(img, FakeExtractor(), cfg), rnip(np.rot90(img).copy(), FakeExtractor(), cfg), atol=1e-3
    )  # bilinear resampling is equivariant up to rounding
    assert nip(img, FakeExtractor()).shape == whole_image(img, FakeExtractor()).shape == (6,)


def test_pooling_moments():
    x = np.array([[1.0, 3.0], [3.0, 1.0]])
    assert pool(x, "mean", 0).tolist() == [2.0, 2.0]
    assert pool(x, "max", 0).tolist() == [3.0, 3.0]
    np.testing.assert_allclose(pool(x, "sqrt", 0), np.sqrt(5.0))
    np.testing.assert_allclose(pool(x, "gem:1", 0), [2.0, 2.0])
    with pytest.raises(InputError):
        pool(x, "median", 0)
    fmap = np.zeros((7, 7, 1))
    fmap[3, 3, 0] = 9.0
    np.testing.assert_allclose(window_pool_max(fmap, 3), [np.sqrt(81 / 9)])


@pytest.mark.parametrize("enc, nbytes", [("float16", 512), ("int8", 260), ("binary", 32)])
def test_encodings_round_trip_and_sizes(enc, nbytes):
    v = np.random.default_rng(2).normal(size=256).astype(np.float32)
    data = encode(v, enc)
    assert len(data) == nbytes == encoded_size(enc, 256)
    back = decode(data, enc, 256)
    if enc == "binary":
        assert np.array_equal(back > 0, v > 0)
    else:
        np.testing.assert_allclose(back, v, atol=np.abs(v).max() / 100)
    with pytest.raises(InputError, match=f"must be {nbytes} bytes, found {nbytes - 1}"):
        decode(data[:-1], enc, 256)


def test_metrics_on_known_rankings():
    assert average_precision(np.array([1, 0, 1, 0], bool)) == pytest.approx((1 + 2 / 3) / 2)
    groups = np.array([0, 0, 1, 1])
    desc = np.eye(4)[[0, 0, 1, 1]] + 0.01 * np.eye(4)
    r = evaluate(similarity(desc, desc), groups, groups, np.arange(4), ks=(1,))
    assert r["mAP"] == 1.0 and r["mP@1"] == 1.0 and r["N-S"] == 2.0
    hamming = similarity(np.array([[1, -1, 1]]), np.array([[1, -1, 1], [-1, 1, 1]]), "binary")
    assert hamming.tolist() == [[0.0, -2.0]]


def test_whitening_round_trips_through_metadata():
    x = np.random.default_rng(3).normal(size=(50, 8))
    w = Whitening.fit(x, dim=4)
    w2 = Whitening.from_metadata(w.to_metadata())
    np.testing.assert_array_equal(w.apply(x[0]), w2.apply(x[0]))
    assert w.apply(x[0]).shape == (4,)
    with pytest.raises(InputError, match="malformed"):
        Whitening.from_metadata({"pca_shape": [4, 8]})


def test_chip_extractor_reads_the_same_map_for_the_last_and_an_earlier_layer():
    from pathlib import Path

    from edge_sdk.firmware import load_firmware
    from edge_sdk.retrieval.extractors import ChipExtractor
    from edge_sdk.runtime.host import dequantize

    image = load_firmware(
        Path(__file__).resolve().parents[2] / "firmware_images" / "sample_lightspeeur.edgefw"
    )
    net = image.network
    batch = np.random.default_rng(0).integers(0, 256, (3, *net.input_shape), dtype=np.uint8)
    taps = ChipExtractor(image).device.run(batch, taps=True).taps
    for layer in (net.layers[net.n_chip - 1], net.layers[net.n_chip - 2]):
        want = np.maximum(dequantize(taps[layer.name], layer).astype(np.float32), 0.0)
        np.testing.assert_array_equal(ChipExtractor(image, layer=layer.name).features(batch), want)
