"""CIFAR-10 class retrieval in retrieval-eval: mAP / mAP@k / mP@k math, the in-memory set, the CLI."""

import json
from pathlib import Path

import numpy as np
import pytest

from edge_sdk.cli import main
from edge_sdk.errors import DatasetError
from edge_sdk.retrieval import Describer, RNIPConfig, rnip, whole_image
from edge_sdk.retrieval.evalset import EvalSet, load_cifar10
from edge_sdk.retrieval.evaluate import format_table, run_eval
from edge_sdk.retrieval.metrics import evaluate, evaluate_descriptors

REPO = Path(__file__).resolve().parents[2]


def test_map_map_at_k_and_mp_at_k_on_a_hand_made_ranking():
    # query 0 ranks the database 0..5 in order (similarity 6..1), relevance 1 0 1 0 0 1
    # query 1 (same similarities) is relevant to items 3 and 4 only
    sim = np.array([[6.0, 5, 4, 3, 2, 1], [6.0, 5, 4, 3, 2, 1]])
    q_groups, db_groups = np.array([0, 1]), np.array([0, 2, 0, 1, 1, 0])
    r = evaluate(sim, q_groups, db_groups, np.array([-1, -1]), ks=(1, 3), map_at=(3, 6), ns=False)
    ap0 = (1 / 1 + 2 / 3 + 3 / 6) / 3
    ap1 = (1 / 4 + 2 / 5) / 2
    assert r["mAP"] == pytest.approx((ap0 + ap1) / 2)
    # mAP@3, deep-hashing convention: averaged over the relevant items retrieved in the top 3 (none: 0)
    assert r["mAP@3"] == pytest.approx(((1 + 2 / 3) / 2 + 0.0) / 2)
    assert r["mAP@6"] == pytest.approx(r["mAP"])  # k covers the database
    assert r["mP@1"] == pytest.approx((1 + 0) / 2)
    assert r["mP@3"] == pytest.approx((2 / 3 + 0) / 2)
    assert "N-S" not in r


def test_ties_are_broken_by_database_index_and_self_is_removed():
    # all scores equal: the ranking is the database order, so relevance 0 1 -> AP 1/2
    r = evaluate(np.zeros((1, 2)), np.array([1]), np.array([0, 1]), np.array([-1]), ks=(1,), ns=False)
    assert r["mAP"] == 0.5 and r["mP@1"] == 0.0
    # the query is database item 0 (role both): it is removed, what is left ranks 1 0 1
    sim = np.array([[9.0, 3, 2, 1]])
    r = evaluate(sim, np.array([0]), np.array([0, 0, 1, 0]), np.array([0]), ks=(1, 3, 4), map_at=(2,))
    assert r["mAP"] == pytest.approx((1 + 2 / 3) / 2)
    assert r["mAP@2"] == pytest.approx(1.0)
    assert r["mP@3"] == pytest.approx(2 / 3)
    assert np.isnan(r["mP@4"])  # only 3 items left
    assert r["N-S"] == 3.0  # N-S keeps the query itself: top 4 = items 0..3, three of group 0


def test_block_evaluation_does_not_depend_on_the_block_size():
    rng = np.random.default_rng(0)
    q, db = rng.normal(size=(37, 8)).astype(np.float32), rng.normal(size=(53, 8)).astype(np.float32)
    qg, dg = rng.integers(0, 5, 37), rng.integers(0, 5, 53)
    self_index = np.where(rng.random(37) < 0.3, rng.integers(0, 53, 37), -1)
    kw = dict(ks=(1, 10), map_at=(5, 1000))
    whole = evaluate(q @ db.T, qg, dg, self_index, **kw)
    for chunk in (1, 7, 100):
        assert evaluate_descriptors(q, db, qg, dg, self_index, chunk=chunk, **kw) == pytest.approx(whole)


def _fake_cifar(tmp_path, n_test=12, n_train=30):
    """A tiny stand-in with the layout of shared/data/cifar10 (two npz files, same keys)."""
    rng = np.random.default_rng(1)
    y_test = rng.integers(0, 3, n_test).astype(np.uint8)
    x_test = (y_test[:, None, None, None] * 100 + rng.integers(0, 20, (n_test, 32, 32, 3))).astype(np.uint8)
    np.savez(
        tmp_path / "cifar10_test.npz", x_jpeg=x_test, y=y_test, x_exact=x_test[:10], idx_exact=np.arange(10)
    )
    y_all = rng.integers(0, 3, 2 * n_train).astype(np.uint8)
    x_all = (y_all[:, None, None, None] * 100 + rng.integers(0, 20, (2 * n_train, 32, 32, 3))).astype(
        np.uint8
    )
    idx_exact = np.array([0, 1, 2, n_train + 3, n_train + 4])  # 3 inside the JPEG range, 2 beyond it
    np.savez(
        tmp_path / "cifar10_train_20k.npz",
        x_jpeg=x_all[:n_train] // 2 * 2,  # "JPEG" copies differ from the exact pixels
        y=y_all[:n_train],
        x_exact=x_all[idx_exact],
        idx_exact=idx_exact,
        y_exact=y_all[idx_exact],
        y_all50k=y_all,
    )
    return tmp_path, y_all, x_all


def test_load_cifar10_databases_and_limits(tmp_path):
    root, y_all, x_all = _fake_cifar(tmp_path)
    ev = load_cifar10(root)  # exact database
    assert len(ev) == 10 + 5 and ev.images.shape == (15, 32, 32, 3)
    assert ev.roles == ["query"] * 10 + ["db"] * 5 and not ev.ns and ev.map_at == (1000,)
    assert ev.files[10:] == ["train/00000", "train/00001", "train/00002", "train/00033", "train/00034"]
    np.testing.assert_array_equal(ev.groups[10:], y_all[[0, 1, 2, 33, 34]])
    ev = load_cifar10(root, "jpeg", query_limit=4, db_limit=20)
    assert len(ev.query_idx) == 4 and len(ev.db_idx) == 20 and ev.ks == (1, 10)
    assert ev.files[4] == "train-jpeg/00000"
    ev = load_cifar10(root, "all")  # every distinct training image once, exact pixels where there are some
    assert len(ev.db_idx) == 30 + 2
    names = ev.files[10:]
    assert names[:4] == ["train/00000", "train/00001", "train/00002", "train-jpeg/00003"]
    assert names[-2:] == ["train/00033", "train/00034"] and len(set(names)) == len(names)
    np.testing.assert_array_equal(ev.images[10], x_all[0])
    np.testing.assert_array_equal(ev.groups[10:40], y_all[:30])
    with pytest.raises(DatasetError, match="database must be one of"):
        load_cifar10(root, "both")
    with pytest.raises(DatasetError, match="database limit must be >= 1"):
        load_cifar10(root, db_limit=0)
    with pytest.raises(DatasetError, match="not found"):
        load_cifar10(tmp_path / "nowhere")


class FakeExtractor:
    """Feature map = per-channel colour means on a 4x4 grid of a 64x64 input (cheap, deterministic)."""

    input_shape = (64, 64, 3)

    def features(self, batch):
        b = batch.astype(np.float32).reshape(len(batch), 4, 16, 4, 16, 3).mean(axis=(2, 4))
        return np.concatenate([b, 255 - b], axis=-1)


def test_rnip_on_a_32px_image_is_whole_image_with_scale_1():
    img = np.random.default_rng(2).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    np.testing.assert_array_equal(
        rnip(img, FakeExtractor(), RNIPConfig(scales=(1.0,))), whole_image(img, FakeExtractor())
    )


def test_run_eval_on_an_in_memory_set(tmp_path):
    root, _, _ = _fake_cifar(tmp_path)
    ev = load_cifar10(root, "all")
    assert isinstance(ev, EvalSet)
    res = run_eval(ev, {"fake-whole": Describer("fake-whole", FakeExtractor(), "whole")}, progress=False)
    m = res["fake-whole"]["encodings"]["float"]
    assert m["mAP"] > 0.9  # classes differ by 100 grey levels: trivially separable
    assert list(m) == ["mAP", "mAP@1000", "mP@1", "mP@10", "bytes"]
    assert "mAP@1000" in format_table(res).splitlines()[0]


def test_cli_cifar10_with_a_chip_method(tmp_path, capsys):
    root, _, _ = _fake_cifar(tmp_path)
    out = tmp_path / "r.json"
    argv = ["retrieval-eval", "--cifar10", str(root), "--query-limit", "4", "--db-limit", "12"]
    argv += ["--cifar10-db", "jpeg"]
    argv += ["--methods", "chip-whole", "--firmware", str(REPO / "firmware_images" / "sample_nqe.edgefw")]
    assert main(argv + ["--quiet", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "cifar10 (4 queries x 12 jpeg database images)" in text and "chip-whole" in text
    r = json.loads(out.read_text())["chip-whole"]
    assert 0.0 <= r["encodings"]["float"]["mAP"] <= 1.0 and r["dim"] > 0


@pytest.mark.parametrize(
    "argv",
    [
        ["--images", "x", "--gt", "y", "--db-limit", "3"],
        ["--cifar10", "x", "--images", "y"],
        ["--images", "x"],
    ],
)
def test_cli_rejects_mixed_or_missing_sets(argv):
    with pytest.raises(SystemExit) as exc:
        main(["retrieval-eval", *argv])
    assert exc.value.code == 2


def test_cli_writes_a_topk_png_per_method(tmp_path, capsys):
    from PIL import Image

    root, _, _ = _fake_cifar(tmp_path)
    argv = ["retrieval-eval", "--cifar10", str(root), "--query-limit", "4", "--db-limit", "12"]
    argv += ["--methods", "chip-whole,chip-rnip", "--scales", "1"]
    argv += ["--firmware", str(REPO / "firmware_images" / "sample_nqe.edgefw")]
    png = tmp_path / "top.png"
    assert main(argv + ["--quiet", "--png", str(png)]) == 0
    out = capsys.readouterr().out
    for method in ("chip-whole", "chip-rnip"):
        path = tmp_path / f"top-{method}.png"
        assert f"wrote {path}" in out
        with Image.open(path) as im:  # 4 queries, each with its top-4: a 5-column grid
            assert im.size == (5 * 104, 4 * 104)


def test_cli_whiten_uses_the_whitening_stored_in_the_firmware(tmp_path, capsys):
    from edge_sdk.firmware import load_firmware, write_firmware
    from edge_sdk.retrieval import Whitening
    from edge_sdk.retrieval.extractors import ChipExtractor

    root, _, _ = _fake_cifar(tmp_path)
    sample = REPO / "firmware_images" / "sample_nqe.edgefw"
    argv = ["retrieval-eval", "--cifar10", str(root), "--query-limit", "4", "--db-limit", "12"]
    argv += ["--methods", "chip-whole", "--quiet", "--whiten"]
    with pytest.raises(SystemExit, match="stores no PCA-whitening"):
        main(argv + ["--firmware", str(sample)])
    net = load_firmware(sample).network
    dim = ChipExtractor(load_firmware(sample)).features(np.zeros((1, *net.input_shape), np.uint8)).shape[-1]
    rng = np.random.default_rng(0)
    w = Whitening.fit(rng.random((3 * dim, dim)), dim=2)
    net.metadata["retrieval"] = {"whitening": w.to_metadata()}
    whitened = tmp_path / "w.edgefw"
    whitened.write_bytes(write_firmware(net))
    out = tmp_path / "r.json"
    assert main(argv + ["--firmware", str(whitened), "--json", str(out)]) == 0
    assert json.loads(out.read_text())["chip-whole"]["dim"] == 2  # the stored projection's output width
