"""The Device API: input checks with clear typed errors, describe(), backend selection."""

import numpy as np
import pytest

import edge_sdk
from edge_sdk import BackendError, Device, InputError
from edge_sdk.builder import NetworkBuilder


@pytest.fixture(scope="module")
def net():
    b = NetworkBuilder("nqe-1mb", (12, 10, 3), seed=5, name="tiny")
    b.conv(8, bits=2)
    b.maxpool()
    b.conv(4, kernel=1, bits=1, output="raw")
    b.gap()
    b.dense(3)
    return b.build({"labels": ["a", "b", "c"]})


@pytest.fixture()
def dev(net):
    return Device("reference").load(net)


@pytest.mark.parametrize(
    "frame, match",
    [
        (np.zeros((12, 10, 3), np.float32), "dtype must be uint8, found float32"),
        (np.zeros((10, 12, 3), np.uint8), r"shape must be \(12, 10, 3\).*found \(10, 12, 3\)"),
        (np.zeros((12, 10), np.uint8), r"found \(12, 10\)"),
        (np.zeros((1, 1, 12, 10, 3), np.uint8), "found"),
        ([[1, 2, 3]], "numpy uint8 array"),
    ],
)
def test_bad_frames_get_typed_errors(dev, frame, match):
    with pytest.raises(InputError, match=match):
        dev.run(frame)


def test_input_error_is_also_a_value_error(dev):
    with pytest.raises(ValueError):
        dev.run(np.zeros((1, 2, 3), np.uint8))


def test_run_single_and_batch_agree(dev):
    frames = np.random.default_rng(0).integers(0, 256, (3, 12, 10, 3), dtype=np.uint8)
    batch = dev.run(frames)
    assert (
        batch.output.shape == (3, 3) and batch.codes.shape == (3, 6, 5, 4) and batch.codes.dtype == np.int32
    )
    for i in range(3):
        single = dev.run(frames[i])
        assert np.array_equal(single.codes, batch.codes[i])
        assert np.array_equal(single.output, batch.output[i])


def test_taps_name_every_layer(dev, net):
    res = dev.run(np.zeros((12, 10, 3), np.uint8), taps=True)
    assert list(res.taps) == [layer.name for layer in net.layers]
    assert res.taps["conv0"].dtype == np.uint8 and res.taps["conv0"].max() <= 3


def test_describe(dev):
    d = dev.describe()
    assert d["backend"] == "reference" and d["profile"] == "nqe-1mb" and d["input_shape"] == [12, 10, 3]
    assert [layer["target"] for layer in d["layers"]] == ["chip", "chip", "chip", "host", "host"]
    assert d["layers"][0]["tiles"] >= 1 and d["metadata"]["labels"] == ["a", "b", "c"]


def test_backend_selection(monkeypatch, net):
    with pytest.raises(BackendError, match="unknown backend 'gpu'"):
        Device("gpu")
    monkeypatch.setenv("EDGE_SDK_BACKEND", "reference")
    assert Device().backend.name == "reference"
    with pytest.raises(BackendError, match="load"):
        Device("reference").run(np.zeros((12, 10, 3), np.uint8))
    with pytest.raises(InputError, match="FirmwareImage, Network"):
        Device("reference").load(42)


def test_package_imports_without_extension():
    assert callable(edge_sdk.load_firmware) and edge_sdk.FirmwareError.__mro__[1] is ValueError
