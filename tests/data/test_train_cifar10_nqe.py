"""The shipped CIFAR-10 firmware for nqe-1mb: within 1 Mb, and its accuracy on the chip.

The threshold is the accuracy measured when the image was published (its model card)
minus one point of margin; the target of 85 % was not reached (see the model card).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge_sdk import Device, load_firmware

FIRMWARE = Path(__file__).resolve().parents[2] / "firmware_images" / "cifar10_nqe_1mb.edgefw"
MIN_ACCURACY = 0.819  # measured 0.829 at publication (model card), minus about one point


@pytest.fixture(scope="module")
def image():
    if not FIRMWARE.is_file():
        pytest.fail(f"shipped firmware missing: {FIRMWARE}")
    return load_firmware(FIRMWARE)


def test_cifar10_firmware_fits_1mb(image):
    net = image.network
    p = net.profile
    assert p.id == "nqe-1mb" and p.activation_bits == 2
    bits = sum(
        layer.codes.size * layer.weight_bits + layer.out_shape[2] * p.bias_bits
        for layer in net.chip_layers
        if layer.op == "conv"
    )
    assert bits <= 131072 * 8
    assert {layer.weight_bits for layer in net.chip_layers if layer.op == "conv"} == {1, 2, 3}


def test_cifar10_firmware_accuracy(shared_data, image):
    with np.load(shared_data / "cifar10" / "cifar10_test.npz") as d:
        x, y = d["x_exact"], d["y"][d["idx_exact"]]
    dev = Device("auto").load(image)
    pred = np.concatenate(
        [dev.run(np.ascontiguousarray(x[i : i + 250])).output.argmax(-1) for i in range(0, len(x), 250)]
    )
    acc = float((pred == y).mean())
    assert acc >= MIN_ACCURACY, f"chip accuracy {acc:.4f} on the 1,000 exact CIFAR-10 test images"
