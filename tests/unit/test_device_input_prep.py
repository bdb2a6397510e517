"""Device.run applies the firmware image's input preparation (host padding, input dithering) itself."""

import copy

import numpy as np
import pytest

from edge_sdk import Device, FirmwareError, InputError
from edge_sdk.builder import NetworkBuilder
from edge_sdk.firmware import load_firmware, write_firmware
from edge_sdk.network import Network
from edge_sdk.runtime.inputprep import model_input_shape, prep_from_metadata

pytest.importorskip("ai_edge_litert")

from edge_sdk.convert import convert_network  # noqa: E402
from edge_sdk.convert.inputpad import prepare_frames  # noqa: E402
from edge_sdk.convert.tflite_writer import tiny_cnn  # noqa: E402

RNG = np.random.default_rng(1)
CALIB = RNG.integers(0, 256, (24, 16, 16, 3), dtype=np.uint8)
RAW = RNG.integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)
FAST = {"calib": CALIB, "bits": 5, "reconstruct": False}


@pytest.fixture(params=["reference", "emulator"])
def backend(request):
    if request.param == "emulator":
        request.getfixturevalue("emulator_available")
    return request.param


@pytest.fixture(scope="module")
def padded():
    """An offset input (pixel / 128 - 1): the first conv's padding moves to the host."""
    net = convert_network(tiny_cnn(), input_scale=1 / 128, input_offset=-1.0, **FAST)
    assert net.metadata["input"]["host_pad"] and tuple(net.input_shape) == (18, 18, 3)
    return load_firmware(write_firmware(net))  # through the image: the metadata survives msgpack


@pytest.fixture(scope="module")
def dithered():
    net = convert_network(tiny_cnn(), input_dither=2, **FAST)
    assert net.metadata["input"]["dither"]["factor"] == 2 and tuple(net.input_shape) == (32, 32, 3)
    return load_firmware(write_firmware(net))


@pytest.fixture(scope="module")
def plain():
    b = NetworkBuilder("nqe-1mb", (12, 10, 3), seed=5, name="tiny")
    b.conv(8, bits=2)
    b.conv(4, kernel=1, bits=1, output="raw")
    b.gap()
    b.dense(3)
    return b.build({"labels": ["a", "b", "c"]})


def _same(a, b):
    assert np.array_equal(a.codes, b.codes) and a.codes.dtype == b.codes.dtype
    assert np.array_equal(a.output, b.output)
    assert list(a.taps) == list(b.taps) and all(np.array_equal(a.taps[k], b.taps[k]) for k in a.taps)


@pytest.mark.parametrize("which", ["padded", "dithered"])
def test_run_prepares_logical_frames_bit_exactly(request, backend, which):
    image = request.getfixturevalue(which)
    dev = Device(backend).load(image)
    assert dev.model_input_shape == (16, 16, 3) and dev.input_shape == tuple(image.input_shape)
    prepared = prepare_frames(image.metadata, RAW)
    assert prepared.shape[1:] == dev.input_shape
    _same(dev.run(RAW, taps=True), dev.run(prepared, taps=True))  # batch
    _same(dev.run(RAW[0], taps=True), dev.run(prepared[0], taps=True))  # single frame
    # pre-prepared frames pass unchanged, also with prepare=False (existing callers keep working)
    _same(dev.run(prepared, prepare=False), dev.run(prepared))
    d = dev.describe()
    assert d["model_input_shape"] == [16, 16, 3] and d["input_shape"] == list(dev.input_shape)
    assert d["input_prep"] == prep_from_metadata(image.metadata).to_dict()


def test_both_backends_agree_on_prepared_frames(padded, dithered, emulator_available):
    for image in (padded, dithered):
        _same(Device("reference").load(image).run(RAW), Device("emulator").load(image).run(RAW))


@pytest.mark.parametrize("which", ["padded", "dithered"])
def test_prepare_false_refuses_logical_frames(request, which):
    dev = Device("reference").load(request.getfixturevalue(which))
    with pytest.raises(InputError, match=r"prepare=False.*\(16, 16, 3\) needs prepare=True"):
        dev.run(RAW, prepare=False)
    with pytest.raises(InputError, match="prepare=False"):
        dev.run(RAW[0], prepare=False)


@pytest.mark.parametrize("which", ["padded", "dithered"])
def test_other_shapes_name_both_accepted_shapes(request, which):
    dev = Device("reference").load(request.getfixturevalue(which))
    chip = str(dev.input_shape).replace("(", r"\(").replace(")", r"\)")
    with pytest.raises(
        InputError, match=rf"model's input \(16, 16, 3\).*chip's input {chip}.*found \(15, 16, 3\)"
    ):
        dev.run(np.zeros((15, 16, 3), np.uint8))
    with pytest.raises(InputError, match="dtype must be uint8"):
        dev.run(RAW.astype(np.float32))


def test_image_without_input_prep_behaves_as_before(plain, backend):
    dev = Device(backend).load(plain)
    assert dev.model_input_shape == dev.input_shape == (12, 10, 3) and dev.input_prep.identity
    frames = RNG.integers(0, 256, (2, 12, 10, 3), dtype=np.uint8)
    _same(dev.run(frames, taps=True), dev.run(frames, taps=True, prepare=False))
    with pytest.raises(InputError, match=r"^frame shape must be \(12, 10, 3\) \(HWC\).*found \(10, 12, 3\)$"):
        dev.run(np.zeros((10, 12, 3), np.uint8))
    d = dev.describe()
    assert d["model_input_shape"] == d["input_shape"] == [12, 10, 3]
    assert d["input_prep"] == {"host_pad": None, "dither": None}


def _with_input(image, **changes) -> Network:
    net = image.network
    meta = copy.deepcopy(net.metadata)
    for key, value in changes.items():
        if value is None:
            meta["input"].pop(key, None)
        else:
            meta["input"][key] = value
    return Network(net.profile, net.input_shape, net.layers, meta)


@pytest.mark.parametrize("which", ["padded", "dithered"])
def test_logical_shape_is_derived_when_not_recorded(request, which):
    image = request.getfixturevalue(which)
    net = _with_input(image, model_shape=None)
    assert "model_shape" not in net.metadata["input"]
    assert model_input_shape(net.metadata, net.input_shape) == (16, 16, 3)
    dev = Device("reference").load(net)
    assert dev.model_input_shape == (16, 16, 3)
    _same(dev.run(RAW), Device("reference").load(image).run(RAW))


@pytest.mark.parametrize(
    "change, match",
    [
        ({"model_shape": [15, 16, 3]}, "model_shape"),
        ({"dither": {"factor": 3}}, "dither.factor"),
        ({"dither": {"factor": 2, "offsets": [[1, -3], [-1, 3]]}}, "offsets"),
    ],
)
def test_inconsistent_input_metadata_is_refused_at_load(dithered, change, match):
    with pytest.raises(FirmwareError, match=match):
        Device("reference").load(_with_input(dithered, **change))


def test_convert_inputpad_reexports_the_runtime_functions():
    from edge_sdk.convert import inputpad
    from edge_sdk.runtime import inputprep

    for name in ("DITHER_OFFSETS", "HostPad", "InputPrep", "dither_frames", "pad_frames", "prepare_frames"):
        assert getattr(inputpad, name) is getattr(inputprep, name)


def test_cli_run_and_verify_feed_logical_frames(dithered, tmp_path, capsys):
    """`edge-sdk run` and `verify` resize image files to the model's input and let the Device prepare them."""
    from PIL import Image

    from edge_sdk.cli import main
    from edge_sdk.convert.verify import verify
    from edge_sdk.demo import summarize

    fw = tmp_path / "dithered.edgefw"
    fw.write_bytes(write_firmware(dithered.network))
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, frame in enumerate(RAW):
        Image.fromarray(frame).resize((40, 24)).save(folder / f"{i}.png")  # another size: resized
    assert main(["run", str(fw), str(folder / "0.png"), "--backend", "reference"]) == 0
    dev = Device("reference").load(dithered)
    frame = np.asarray(Image.open(folder / "0.png").convert("RGB").resize((16, 16), Image.BILINEAR))
    assert summarize(dithered, dev.run(frame)) in capsys.readouterr().out
    result = verify(dithered, folder, backend="reference", labels=np.zeros(len(RAW), np.int64))
    assert result.images == len(RAW) and result.accuracy is not None
