"""The shipped 2-bit ResNet-8 (QAT from the MLPerf-Tiny float model): 2-bit weights on every chip conv,
no add layer on the chip (residuals folded), labels, and its accuracy on the 1,000 exact test images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge_sdk import Device, load_firmware

FIRMWARE = Path(__file__).resolve().parents[2] / "firmware_images" / "resnet8_cifar10_lightspeeur_2bit.edgefw"
# the target: within 2.0 points of the float model (88.1 % on these images); measured 0.867
MIN_ACCURACY = 0.861


@pytest.fixture(scope="module")
def image():
    if not FIRMWARE.is_file():
        pytest.fail(f"shipped firmware missing: {FIRMWARE}")
    return load_firmware(FIRMWARE)


def test_every_chip_conv_is_2_bit_and_residuals_are_folded(image):
    net = image.network
    convs = [layer for layer in net.chip_layers if layer.op == "conv"]
    assert len(convs) == 7 and {layer.weight_bits for layer in convs} == {2}
    assert not [layer for layer in net.chip_layers if layer.op == "add"]
    assert image.metadata["labels"][:2] == ["airplane", "automobile"]


def test_accuracy_on_the_chip(shared_data, image):
    with np.load(shared_data / "cifar10" / "cifar10_test.npz") as d:
        x, y = d["x_exact"], d["y"][d["idx_exact"]]
    dev = Device("auto").load(image)
    pred = np.concatenate(
        [dev.run(np.ascontiguousarray(x[i : i + 250])).output.argmax(-1) for i in range(0, 1000, 250)]
    )
    acc = float((pred == y).mean())
    assert acc >= MIN_ACCURACY, f"chip accuracy {acc:.4f} on the 1,000 exact CIFAR-10 test images"
