"""The images shipped in firmware_images/ load, run, and are reproduced byte for byte by their tools."""

import hashlib
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import edge_sdk
from edge_sdk.demo import SAMPLES, load_frame
from edge_sdk.runtime.reference import run_reference

REPO = Path(__file__).resolve().parents[2]
IMAGES = sorted((REPO / "firmware_images").glob("*.edgefw"))
# Pinned: regenerating a shipped image must be a deliberate edit of this table.
PINNED = {
    "sample_lightspeeur.edgefw": "aa2c938a40d731ea27e11327b3f407179da4ea8009510ec57eeaced78717e6f2",
    "sample_nqe.edgefw": "6de16b35d7317edc97ce762828f1cf46921f22a96732a4ccb6053ed9944463c1",
}


def test_images_ship_with_model_cards():
    assert {p.name for p in IMAGES} >= set(PINNED)
    for path in IMAGES:
        assert path.with_suffix(".md").is_file(), f"{path.name} has no model card"


@pytest.mark.parametrize("path", IMAGES, ids=[p.name for p in IMAGES])
def test_shipped_image_loads_and_runs(path):
    image = edge_sdk.load_firmware(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dev = edge_sdk.Device().load(image)
    frame = load_frame(SAMPLES / "scene.png", dev.input_shape)
    result = dev.run(frame, taps=True)
    spec = run_reference(image.network, frame)
    for layer, out in zip(image.network.layers, spec):
        assert np.array_equal(result.taps[layer.name], out), layer.name
    assert np.all(np.isfinite(result.output))


def test_sample_tool_reproduces_pinned_bytes(tmp_path):
    sys.path.insert(0, str(REPO / "tools"))
    try:
        import make_sample_firmware
    finally:
        sys.path.pop(0)
    make_sample_firmware.main(["--out", str(tmp_path)])
    for name, digest in PINNED.items():
        assert hashlib.sha256((tmp_path / name).read_bytes()).hexdigest() == digest
        assert hashlib.sha256((REPO / "firmware_images" / name).read_bytes()).hexdigest() == digest
