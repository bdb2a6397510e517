"""The shipped MNIST firmware (lightspeeur-2803, 1-bit weights) keeps its accuracy on the chip.

Runs the firmware image on a Device: the whole 10,000-image test set on the Cython
emulator; with only the numpy reference backend (about 0.1 s per image) the first
2,000 test images.  Either way the threshold is 99.0 %.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge_sdk import Device, load_firmware
from edge_sdk.runtime import emulator

FIRMWARE = Path(__file__).resolve().parents[2] / "firmware_images" / "mnist_lightspeeur_1bit.edgefw"


@pytest.fixture(scope="module")
def image():
    if not FIRMWARE.is_file():
        pytest.fail(f"shipped firmware missing: {FIRMWARE}")
    return load_firmware(FIRMWARE)


def test_mnist_firmware_is_1bit_lightspeeur(image):
    net = image.network
    assert net.profile.id == "lightspeeur-2803"
    convs = [layer for layer in net.chip_layers if layer.op == "conv"]
    assert convs and all(layer.weight_bits == 1 for layer in convs)
    assert net.input_shape == (28, 28, 1)


def test_mnist_firmware_accuracy(shared_data, image):
    with np.load(shared_data / "mnist" / "mnist.npz") as d:
        x, y = d["x_test"][..., None], d["y_test"]
    n = len(x) if emulator.AVAILABLE else 2000
    dev = Device("auto").load(image)
    pred = np.concatenate(
        [dev.run(np.ascontiguousarray(x[i : i + 250])).output.argmax(-1) for i in range(0, n, 250)]
    )
    acc = float((pred == y[:n]).mean())
    assert acc >= 0.990, f"chip accuracy {acc:.4f} on {n} MNIST test images"
