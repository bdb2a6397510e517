"""The descriptor network's training pieces on a small untrained model: mosaics, the distillation loss,
export of the architecture (pools, raw 1x1 embed) bit for bit on the Device, ChipExtractor over it,
and the whitening it stores.  (The shipped image's retrieval figures: tests/data/test_descriptor_net.py.)"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from edge_sdk.firmware import load_firmware, write_firmware  # noqa: E402
from edge_sdk.retrieval import Whitening, rnip  # noqa: E402
from edge_sdk.retrieval.extractors import ChipExtractor  # noqa: E402
from edge_sdk.train.descriptor import (  # noqa: E402
    descriptor_qnet,
    descriptor_spec,
    distill_loss,
    mosaic,
    mosaic_samples,
    sqrt_pool,
)
from edge_sdk.train.descriptor_export import bit_exact_check, chip_descriptors  # noqa: E402
from edge_sdk.train.export import to_network  # noqa: E402


def _images(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


def test_mosaic_tiles_images_in_row_major_order():
    imgs = np.stack([np.full((2, 2, 3), v, np.uint8) for v in range(4)])
    rng = np.random.default_rng(1)
    canvas = mosaic(imgs, rng, 2)
    assert canvas.shape == (4, 4, 3)
    # every 2x2 tile is one constant source image (a flip mirrors tiles, never mixes them)
    tiles = [canvas[y : y + 2, x : x + 2] for y in (0, 2) for x in (0, 2)]
    assert all(np.all(t == t[0, 0, 0]) for t in tiles)


def test_mosaic_samples_are_a_function_of_seed_and_index():
    imgs = _images()
    big, small = mosaic_samples(imgs, 3, 6, seed=5)
    assert big.shape == (3, 224, 224, 3) and small.shape == (3, 112, 112, 3)
    again = mosaic_samples(imgs, 4, 5, seed=5)[1]  # one sample made on its own
    np.testing.assert_array_equal(again[0], small[1])
    assert not np.array_equal(mosaic_samples(imgs, 3, 6, seed=6)[1], small)


def test_distill_loss_is_zero_on_the_teacher_and_positive_elsewhere():
    t = torch.rand(4, 16, 7, 7)
    same = distill_loss(t.clone(), t)
    assert float(same["total"]) < 1e-5
    other = distill_loss(torch.rand(4, 16, 7, 7) - 0.5, t)
    assert float(other["regress"]) > 0.01 and float(other["cosine"]) > 0.0
    # negative raw outputs count as 0, as the chip extractor reads them
    assert float(distill_loss(-torch.ones(4, 16, 7, 7), t)["regress"]) == pytest.approx(1.0)


def test_sqrt_pool_matches_the_retrieval_moment():
    from edge_sdk.retrieval.pooling import pool

    x = torch.rand(3, 8, 5, 5)
    np.testing.assert_allclose(
        sqrt_pool(x).numpy(), pool(x.permute(0, 2, 3, 1).numpy(), "sqrt", axis=(1, 2)), rtol=1e-5
    )


def test_spec_reaches_the_teacher_grid():
    spec = descriptor_spec((4, 4, 4, 4, 4), 8)
    assert sum(1 for s in spec if s.get("op") == "pool") == 4
    assert spec[-1]["k"] == 1 and spec[-1]["raw"]


def test_deeper_stages_keep_the_default_layer_names():
    names = [s["name"] for s in descriptor_spec((4, 4, 4, 4, 4), 8, depths=(1, 1, 2, 3, 1))]
    assert names == [
        "conv0", "pool0", "conv1", "pool1", "conv2", "conv2b", "pool2",
        "conv3", "conv3b", "conv3c", "pool3", "conv4", "embed",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="depths"):
        descriptor_spec((4, 4, 4, 4, 4), 8, depths=(1, 1, 0, 1, 1))


@pytest.fixture(scope="module")
def small_model():
    torch.manual_seed(0)
    model = descriptor_qnet((4, 4, 8, 8, 8), 16)
    x = torch.from_numpy(mosaic_samples(_images(), 0, 8, seed=0)[1])
    for stage in ("float", "qweight"):
        model.set_stage(stage)
        model.train()
        model.features(x)
    model.set_stage("calib")
    model.eval()
    with torch.no_grad():
        model.features(x)
    model.finish_calibration()
    model.set_stage("fused")
    model.eval()
    return model


def test_export_is_bit_exact_on_the_device(small_model):
    frames = mosaic_samples(_images(seed=3), 0, 6, seed=1)[1]
    blob = write_firmware(to_network(small_model, {"model_name": "t"}, head=False))
    check = bit_exact_check(small_model, blob, frames)
    assert check["values"] == 6 * 7 * 7 * 16
    assert check["mismatches"] == 0


def test_chip_extractor_and_whitening_metadata(small_model, tmp_path):
    net = to_network(small_model, {"model_name": "t"}, head=False)
    frames = mosaic_samples(_images(seed=4), 0, 12, seed=2)[1]
    descs = chip_descriptors(ChipExtractor(write_firmware(net)), frames)
    assert descs.shape == (12, 16)
    np.testing.assert_allclose(np.linalg.norm(descs, axis=1)[np.any(descs, axis=1)], 1.0, rtol=1e-5)
    w = Whitening.fit(descs, dim=4)
    net2 = to_network(
        small_model, {"model_name": "t", "retrieval": {"whitening": w.to_metadata()}}, head=False
    )
    path = tmp_path / "d.edgefw"
    path.write_bytes(write_firmware(net2))
    image = load_firmware(path)
    w2 = Whitening.from_metadata(image.network.metadata["retrieval"]["whitening"])
    np.testing.assert_array_equal(w2.proj, w.proj)
    ext = ChipExtractor(image)
    assert ext.input_shape == (112, 112, 3)
    frame = np.random.default_rng(0).integers(0, 256, (300, 500, 3), dtype=np.uint8)
    d = rnip(frame, ext)
    assert d.shape == (16,) and np.isfinite(d).all()


def test_photometric_jitter_changes_colours_not_geometry():
    from edge_sdk.train.descriptor import photometric_jitter

    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)
    out = [photometric_jitter(img, np.random.default_rng(s)) for s in range(20)]
    assert all(o.dtype == np.uint8 and o.shape == img.shape for o in out)
    assert np.array_equal(out[3], photometric_jitter(img, np.random.default_rng(3)))  # seeded
    assert sum(not np.array_equal(o, img) for o in out) == 20
    # colour changes keep the spatial structure: each jittered image's luminance tracks the original's
    lum = img.astype(float) @ [0.299, 0.587, 0.114]
    for o in out:
        assert np.corrcoef(lum.ravel(), (o.astype(float) @ [0.299, 0.587, 0.114]).ravel())[0, 1] > 0.8


def test_jittered_mosaics_share_geometry_with_plain_ones():
    from edge_sdk.train.descriptor import mosaic_samples

    images = np.random.default_rng(1).integers(0, 256, (50, 32, 32, 3), dtype=np.uint8)
    plain = mosaic_samples(images, 0, 4, seed=5, sides=(64,))[0]
    jit = mosaic_samples(images, 0, 4, seed=5, sides=(64,), jitter=True)[0]
    assert jit.shape == plain.shape and not np.array_equal(jit, plain)
    grey = lambda a: a.astype(float) @ [0.299, 0.587, 0.114]  # noqa: E731
    for p, j in zip(plain, jit):
        assert np.corrcoef(grey(p).ravel(), grey(j).ravel())[0, 1] > 0.8


def test_invariant_jitter_reaches_only_the_students_side():
    from edge_sdk.train.descriptor import mosaic_samples

    images = np.random.default_rng(2).integers(0, 256, (50, 32, 32, 3), dtype=np.uint8)
    plain_t, plain_s = mosaic_samples(images, 0, 3, seed=1, sides=(64, 32))
    jit_t, jit_s = mosaic_samples(images, 0, 3, seed=1, sides=(64, 32), jitter=True)
    inv_t, inv_s = mosaic_samples(images, 0, 3, seed=1, sides=(64, 32), jitter=True, invariant=True)
    assert np.array_equal(inv_t, plain_t)  # the teacher answers the original
    assert np.array_equal(inv_s, jit_s) and not np.array_equal(inv_s, plain_s)  # the student sees the shift
    assert not np.array_equal(jit_t, plain_t)
    with pytest.raises(ValueError, match="needs jitter"):
        mosaic_samples(images, 0, 1, seed=1, invariant=True)
