"""The shipped 2-bit ResNet-8 images (QAT from the MLPerf-Tiny float model): 2-bit weights on every chip
conv (the _stem5 image: every conv but the 3-channel first one, at 5 bits), no add layer on the chip
(residuals folded), labels, and accuracy on the 1,000 exact test images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge_sdk import Device, load_firmware

IMAGES = Path(__file__).resolve().parents[2] / "firmware_images"
# image -> (stem bits, least accuracy): the measured figure at publication (model card) minus a margin;
# the stem5 image's bound is the target, float (88.1 %) minus 2.0 points
CASES = {
    "resnet8_cifar10_lightspeeur_2bit.edgefw": (2, 0.85),  # measured 0.860
    "resnet8_cifar10_lightspeeur_2bit_stem5.edgefw": (5, 0.861),  # measured 0.864
}


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request):
    path = IMAGES / request.param
    if not path.is_file():
        pytest.fail(f"shipped firmware missing: {path}")
    return load_firmware(path), *CASES[request.param]


def test_chip_convs_are_2_bit_and_residuals_are_folded(case):
    image, stem_bits, _ = case
    net = image.network
    convs = [layer for layer in net.chip_layers if layer.op == "conv"]
    assert len(convs) == 7 and convs[0].weight_bits == stem_bits
    assert {layer.weight_bits for layer in convs[1:]} == {2}
    assert not [layer for layer in net.chip_layers if layer.op == "add"]
    assert image.metadata["labels"][:2] == ["airplane", "automobile"]


def test_accuracy_on_the_chip(shared_data, case):
    image, _, least = case
    with np.load(shared_data / "cifar10" / "cifar10_test.npz") as d:
        x, y = d["x_exact"], d["y"][d["idx_exact"]]
    dev = Device("auto").load(image)
    pred = np.concatenate(
        [dev.run(np.ascontiguousarray(x[i : i + 250])).output.argmax(-1) for i in range(0, 1000, 250)]
    )
    acc = float((pred == y).mean())
    assert acc >= least, f"chip accuracy {acc:.4f} on the 1,000 exact CIFAR-10 test images"
