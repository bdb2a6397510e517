"""The shipped 2-bit descriptor network (firmware_images/descriptor_lightspeeur_2bit.edgefw) against its
float teacher on real images: UKBench (14 groups), RNIP on the chip vs RNIP on the teacher, same run."""

from pathlib import Path

import numpy as np
import pytest
from conftest import require  # tests/conftest.py (pytest puts tests/ on sys.path)

from edge_sdk.firmware import load_firmware
from edge_sdk.retrieval import Describer, RNIPConfig, Whitening
from edge_sdk.retrieval.cli import DEFAULT_TEACHER, DEFAULT_TEACHER_TENSOR
from edge_sdk.retrieval.evalset import load_evalset
from edge_sdk.retrieval.evaluate import describe_all, run_eval, score
from edge_sdk.retrieval.extractors import ChipExtractor, TFLiteExtractor
from edge_sdk.runtime import Device

FIRMWARE = Path(__file__).resolve().parents[2] / "firmware_images" / "descriptor_lightspeeur_2bit.edgefw"

pytest.importorskip("ai_edge_litert")


@pytest.fixture(scope="module")
def image():
    require(FIRMWARE.is_file(), f"shipped descriptor firmware missing: {FIRMWARE}")
    return load_firmware(FIRMWARE)


def test_shipped_image_is_the_documented_network(image):
    net = image.network
    assert tuple(net.input_shape) == (112, 112, 3)
    assert tuple(net.layers[-1].out_shape) == (7, 7, 1024)
    assert {ly.weight_bits for ly in net.chip_layers if ly.op == "conv"} == {2}
    meta = net.metadata["retrieval"]
    w = Whitening.from_metadata(meta["whitening"])
    assert w.proj.shape == (256, 1024) and np.isfinite(w.proj).all()
    assert FIRMWARE.with_suffix(".md").is_file()


def test_emulator_equals_the_reference_backend_bit_for_bit(image):
    crops = np.random.default_rng(0).integers(0, 256, (2, 112, 112, 3), dtype=np.uint8)
    fast = Device("emulator").load(image).run(crops).codes
    ref = Device("reference").load(image).run(crops).codes
    np.testing.assert_array_equal(fast, ref)


@pytest.fixture(scope="module")
def ukbench(image, shared_data):
    """UKBench (14 groups of 4): float teacher RNIP and the chip's RNIP / whole image, one run."""
    root = shared_data / "retrieval"
    teacher = shared_data / DEFAULT_TEACHER
    require((root / "ukbench_first14_gt.csv").is_file(), f"UKBench subset not found in {root}")
    require(teacher.is_file(), f"float teacher not found: {teacher}")
    evalset = load_evalset(root, root / "ukbench_first14_gt.csv")
    chip = ChipExtractor(image)
    methods = {
        "teacher-rnip": Describer(
            "teacher-rnip", TFLiteExtractor(str(teacher), tensor=DEFAULT_TEACHER_TENSOR)
        ),
        "chip-rnip": Describer("chip-rnip", chip, "rnip"),
        "chip-whole": Describer("chip-whole", chip, "whole"),
    }
    res = run_eval(evalset, methods, progress=False)
    return {k: v["encodings"]["float"] for k, v in res.items()}


def test_ukbench_chip_rnip(ukbench):
    # measured (docs/retrieval.md): teacher-rnip 1.000, chip-rnip 0.976 (N-S 3.88), chip-whole 0.943
    assert ukbench["teacher-rnip"]["mAP"] > 0.99, ukbench
    assert ukbench["chip-rnip"]["mAP"] >= 0.955, ukbench
    assert ukbench["chip-rnip"]["N-S"] >= 3.6, ukbench
    assert ukbench["chip-rnip"]["mAP"] >= ukbench["chip-whole"]["mAP"], ukbench


def test_ukbench_chip_rnip_within_3_percent_of_the_teacher(ukbench):
    """Issue 4's 2-bit target on UKBench (measured 0.976 x; copy detection 0.83 x and CIFAR-10 0.80 x
    are still short, docs/retrieval.md)."""
    assert ukbench["chip-rnip"]["mAP"] >= 0.97 * ukbench["teacher-rnip"]["mAP"], ukbench


def test_copy_detection_rnip_beats_the_whole_image_downscale(image, shared_data, tmp_path_factory):
    """The large-image set RNIP exists for (tools/make_copydetect_set.py, seed 0), chip methods only."""
    import subprocess
    import sys

    require((shared_data / "kodak").is_dir() and (shared_data / "hires").is_dir(), "Kodak / hires not found")
    out = tmp_path_factory.mktemp("copydetect")
    tool = Path(__file__).resolve().parents[2] / "tools" / "make_copydetect_set.py"
    subprocess.run([sys.executable, str(tool), "--out", str(out), "--data", str(shared_data)], check=True)
    evalset = load_evalset(out, out / "gt.csv")
    chip = ChipExtractor(image)
    white = Whitening.from_metadata(image.network.metadata["retrieval"]["whitening"])
    cfg = RNIPConfig(scales=(1.0, 0.5, 0.25))
    m = {}
    for method in ("whole", "rnip"):
        descs, _ = describe_all(evalset, Describer(method, chip, method, cfg), progress=False)
        m[method] = score(evalset, descs, ("float",))["float"]["mAP"]
        # the stored whitening applied to the same descriptors (what Describer(..., whitening) returns)
        m[f"{method}-w"] = score(evalset, white.apply(descs), ("float",))["float"]["mAP"]
    # measured: whole 0.711, rnip 0.777; with the stored whitening 0.714 and 0.845
    assert m["rnip"] > m["whole"] + 0.03, m
    assert m["rnip-w"] >= m["whole-w"] + 0.05, m  # issue 4: RNIP >= whole-image downscale + 5 mAP points
