"""The camera app with a fake engine: message contents per mode, end to end with a server."""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import sqlite3
import sys
import types

import numpy as np
import pytest
from PIL import Image

from edge_sdk.camera.app import AppConfig, CameraApp, LocalSink
from edge_sdk.camera.cli import register_cli
from edge_sdk.camera.encoders import RawPatchEncoder
from edge_sdk.camera.engine import FirmwareEngine, PixelEngine, fit_to_input, load_engine
from edge_sdk.camera.sources import CapturedFrame, ImageFilesSource, SyntheticSource
from edge_sdk.camera.status import LiveStatus
from edge_sdk.errors import InputError
from edge_sdk.server.assembler import assemble
from edge_sdk.server.decoders import FrameGeometry
from edge_sdk.server.run import BackgroundServer
from edge_sdk.server.server import ServerConfig
from edge_sdk.transport import auth
from edge_sdk.transport.protocol import MsgType


class FakeEngine:
    name = "fake-net"
    input_shape = (16, 24, 3)
    labels = ["zero", "one", "two", "three"]

    def __init__(self):
        self.inputs = []

    def run(self, frame):
        assert frame.shape == self.input_shape and frame.dtype == np.uint8
        self.inputs.append(frame)
        return np.array([0.1, 0.7, -1.0, 0.4, -0.2, 0.3, -0.5, 0.05], np.float32)


def frame(h=40, w=60, value=None):
    img = (
        np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
        if value is None
        else np.full((h, w, 3), value, np.uint8)
    )
    return CapturedFrame(0, 123456789, img)


def test_classify_message_has_topk_names_and_frame_tags():
    eng = FakeEngine()
    app = CameraApp(eng, LocalSink(), AppConfig("classify", topk=3))
    (item,), infer = app.build(frame(), 42)
    assert item.type == MsgType.CLASSIFICATION and item.frame == 42 and item.ts == 123456789
    assert item.body["cls"] == [1, 3, 5] and item.body["names"] == ["one", "three", "5"]  # no label for 5
    assert item.body["score"] == pytest.approx([0.7, 0.4, 0.3]) and item.body["model"] == "fake-net"
    assert infer >= 0 and len(eng.inputs) == 1


def test_lores_stream_feeds_the_network_when_present():
    eng = FakeEngine()
    f = frame(value=10)
    f.lores = np.full((16, 24, 3), 250, np.uint8)
    CameraApp(eng, LocalSink(), AppConfig("classify")).build(f, 1)
    assert int(eng.inputs[0].mean()) == 250


@pytest.mark.parametrize("kind", ["f16", "i8", "bin"])
def test_retrieve_sends_normalised_descriptor_and_thumbnail(kind):
    app = CameraApp(FakeEngine(), LocalSink(), AppConfig("retrieve", descriptor=kind, thumbnail=20))
    (item,), _ = app.build(frame(), 7)
    vec = item.body["vec"]
    if kind == "bin":
        assert list(vec.unpack()) == [1, 1, 0, 1, 0, 1, 0, 1]
    else:
        v = vec.astype(np.float64) / (127.0 if kind == "i8" else 1.0)
        assert np.linalg.norm(v) == pytest.approx(1.0, abs=0.02) and int(np.argmax(v)) == 1
    assert item.body["thumb"].shape == (13, 20, 3)


def test_compress_roundtrips_through_the_server_decoder():
    img = frame(h=50, w=70)
    app = CameraApp(FakeEngine(), LocalSink(), AppConfig("compress"), encoder=RawPatchEncoder(16))
    items, infer = app.build(img, 3)
    assert infer == 0.0 and items[0].type == MsgType.FRAME_BEGIN and items[-1].type == MsgType.FRAME_END
    b = items[0].body
    assert (b["w"], b["h"], b["n"]) == (70, 50, 20) and len(items) == 22
    g = FrameGeometry(b["w"], b["h"], b["c"], b["patch"], b["n"], b["codec"])
    out, report = assemble(g, {it.body["i"]: it.body["p"] for it in items[1:-1]})
    assert np.array_equal(out, img.image) and report.missing == []


def test_compress_downscales_to_max_side():
    app = CameraApp(FakeEngine(), LocalSink(), AppConfig("compress", max_side=32))
    items, _ = app.build(frame(h=40, w=80), 1)
    assert (items[0].body["w"], items[0].body["h"]) == (32, 16)


def test_bad_configuration_is_rejected():
    with pytest.raises(InputError, match="mode"):
        AppConfig("detect")
    with pytest.raises(InputError, match="descriptor"):
        AppConfig("retrieve", descriptor="f64")
    with pytest.raises(InputError, match="patch size"):
        RawPatchEncoder(200)


def test_run_local_counts_frames_and_bytes():
    status = LiveStatus(5, stream=io.StringIO(), interval=0)
    report = asyncio.run(
        CameraApp(PixelEngine(), LocalSink(), AppConfig("retrieve", frames=5), status).run(
            SyntheticSource(64, 48)
        )
    )
    assert report["frames"] == 5 and report["bytes_total"] > 5 * 192 and report["bytes_per_frame"] > 0
    assert "frames 5/5" in status.stream.getvalue()


def test_status_line_and_percentiles():
    s = LiveStatus(10, stream=io.StringIO(), interval=0)
    for i in range(5):
        s.frame_done(1000 + i, 0.002)
        s.acked(0.01 * (i + 1))
    s.queue_depth, s.connected = 7, False
    snap = s.snapshot()
    assert snap["latency_ms_p50"] == 30.0 and snap["queue_depth"] == 7 and snap["bytes_per_frame"] == 1002
    assert "OFFLINE" in s.line() and "queue 7" in s.line()


def test_fit_to_input_resizes_and_converts_channels():
    img = np.zeros((10, 20, 3), np.uint8)
    assert fit_to_input(img, (5, 7, 3)).shape == (5, 7, 3)
    assert fit_to_input(img, (5, 7, 1)).shape == (5, 7, 1)
    with pytest.raises(InputError):
        fit_to_input(img.astype(np.float32), (5, 7, 3))


def test_firmware_engine_uses_the_core_api_exactly(monkeypatch, tmp_path):
    calls = {}

    class Image_:
        input_shape = (10, 10, 3)  # the chip's input: the model's, padded on the host by the Device
        metadata = {"labels": ["a", "b"], "model_name": "tiny"}

    class Device:
        model_input_shape = (8, 8, 3)  # what Device.run takes (it applies the image's input prep)

        def __init__(self, backend):
            calls["backend"] = backend

        def load(self, img):
            calls["loaded"] = img

        def run(self, frame):
            calls["frame"] = frame
            return types.SimpleNamespace(output=np.array([[1, 2]], np.float64), codes=np.array([1, 2]))

    fake = types.SimpleNamespace(
        load_firmware=lambda p: calls.setdefault("path", p) and Image_(), Device=Device
    )
    monkeypatch.setitem(sys.modules, "edge_sdk", fake)
    (tmp_path / "m.edgefw").write_bytes(b"x")
    eng = FirmwareEngine(tmp_path / "m.edgefw")
    out = eng.run(eng.prepare(np.zeros((30, 40, 3), np.uint8)))
    assert calls["backend"] == "auto" and calls["frame"].shape == (8, 8, 3)
    assert out.dtype == np.float32 and out.tolist() == [1.0, 2.0]
    assert eng.labels == ["a", "b"] and eng.name == "tiny"


def test_missing_firmware_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="firmware image not found"):
        load_engine(tmp_path / "nope.edgefw")


# ----------------------------------------------------------------------------- end to end


def cli(argv):
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd", required=True)
    register_cli(sub)
    from edge_sdk.server.cli import register_cli as register_server_cli

    register_server_cli(sub)
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture
def served(tmp_path):
    auth.provision(tmp_path / "server.json", "cam1", tmp_path / "cam1.json")
    store = auth.CredentialStore.load(tmp_path / "server.json")
    bs = BackgroundServer(ServerConfig(tmp_path / "srv", store)).start()
    yield bs, tmp_path
    bs.stop()


def photos(tmp_path, n=4):
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(9)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (60, 90, 3), dtype=np.uint8)).save(folder / f"p{i}.png")
    return folder


def test_camera_cli_compress_and_retrieve_then_query(served, capsys):
    bs, tmp = served
    folder = photos(tmp)
    common = [
        "--source",
        str(folder),
        "--server",
        f"127.0.0.1:{bs.address[1]}",
        "--credentials",
        str(tmp / "cam1.json"),
        "--spool",
        str(tmp / "spool"),
        "--no-progress",
    ]
    assert cli(["camera", "--mode", "compress", "--codec", "raw", *common]) == 0
    assert cli(["camera", "--mode", "retrieve", "--report", str(tmp / "report.json"), *common]) == 0
    report = json.loads((tmp / "report.json").read_text())
    assert (
        report["frames"] == 4
        and report["pending"] == 0
        and report["acked"] == 4
        and report["latency_ms_p50"] is not None
    )
    assert bs.server.post.wait_idle(20)
    conn = sqlite3.connect(bs.server.data_dir / "edge.db")
    pngs = [r[0] for r in conn.execute("SELECT png FROM frames WHERE png IS NOT NULL ORDER BY frame")]
    assert len(pngs) == 4
    first = np.asarray(Image.open(bs.server.data_dir / pngs[0]))
    assert np.array_equal(first, np.asarray(Image.open(folder / "p0.png")))  # raw codec: lossless
    capsys.readouterr()
    # Query by image: the pixels stand-in computes the same descriptor the camera sent.
    assert (
        cli(
            [
                "query",
                "--data",
                str(bs.server.data_dir),
                "--image",
                str(folder / "p2.png"),
                "-k",
                "2",
                "--json",
            ]
        )
        == 0
    )
    hits = json.loads(capsys.readouterr().out)
    retrieve_frames = [r[0] for r in conn.execute("SELECT frame FROM descriptors ORDER BY frame")]
    assert hits[0]["frame"] == retrieve_frames[2] and hits[0]["score"] == pytest.approx(1.0, abs=0.01)
    assert hits[0]["thumb"].startswith("thumbs/cam1/")


def test_camera_cli_errors(served, capsys):
    bs, tmp = served
    base = [
        "camera",
        "--source",
        "synthetic",
        "--frames",
        "2",
        "--no-progress",
        "--spool",
        str(tmp / "spool"),
        "--connect-timeout",
        "1",
    ]
    assert cli([*base, "--server", "127.0.0.1:9", "--credentials", str(tmp / "cam1.json")]) == 3
    assert "server unreachable at tcp://127.0.0.1:9" in capsys.readouterr().err
    bad = auth.DeviceCredentials("cam1", b"z" * 32)
    bad.save(tmp / "bad.json")
    assert cli([*base, "--server", f"127.0.0.1:{bs.address[1]}", "--credentials", str(tmp / "bad.json")]) == 4
    assert "server rejected credentials" in capsys.readouterr().err
    assert cli([*base, "--server", f"127.0.0.1:{bs.address[1]}"]) == 4
    assert "needs --credentials" in capsys.readouterr().err
    assert cli([*base, "--firmware", str(tmp / "none.edgefw")]) == 2
    assert "firmware image not found" in capsys.readouterr().err
    assert cli(["camera", "--source", "picamera", "--frames", "1", "--no-progress"]) == 2
    assert "picamera2 is not available" in capsys.readouterr().err


def test_local_mode_over_image_files(tmp_path, capsys):
    folder = photos(tmp_path, n=3)
    assert cli(["camera", "--source", str(folder), "--mode", "classify", "--no-progress"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["frames"] == 3 and report["connected"] is None
    src = ImageFilesSource(sorted(folder.iterdir()))
    assert len(list(src)) == 3


def test_firmware_engine_reads_the_labels_of_converted_images(shared_data, tmp_path):
    """Converted images keep their class names under metadata["output"]["labels"]."""
    from edge_sdk.convert import convert

    labels = [f"class {i}" for i in range(10)]
    with np.load(shared_data / "cifar10" / "cifar10_train_20k.npz") as d:
        calib = d["x_jpeg"][:32]
    blob = convert(
        shared_data / "models" / "mlperf_tiny" / "pretrainedResnet.tflite",
        profile="lightspeeur-2803",
        calib=calib,
        bits=5,
        labels=labels,
    )
    (tmp_path / "resnet8.edgefw").write_bytes(blob)
    assert FirmwareEngine(tmp_path / "resnet8.edgefw").labels == labels


def test_camera_cli_compress_with_the_learned_codec(served):
    """Device: the shipped nqe-1mb encoder firmware; server: the numpy full-frame decoder (ours-nqe-L16)."""
    from edge_sdk.codec import metrics

    bs, tmp = served
    folder = tmp / "smooth"
    folder.mkdir()
    y, x = np.mgrid[0:64, 0:96]
    img = np.stack([128 + 60 * np.sin(x / 11.0), 128 + 60 * np.cos(y / 9.0), 100 + x], -1).astype(np.uint8)
    Image.fromarray(img).save(folder / "s0.png")
    args = [
        "camera",
        "--mode",
        "compress",
        "--codec",
        "learned",
        "--codec-channels",
        "16",
        "--source",
        str(folder),
    ]
    args += ["--server", f"127.0.0.1:{bs.address[1]}", "--credentials", str(tmp / "cam1.json")]
    args += ["--spool", str(tmp / "spool"), "--no-progress", "--report", str(tmp / "report.json")]
    assert cli(args) == 0
    assert json.loads((tmp / "report.json").read_text())["acked"] >= 1
    assert bs.server.post.wait_idle(20)
    conn = sqlite3.connect(bs.server.data_dir / "edge.db")
    pngs = [r[0] for r in conn.execute("SELECT png FROM frames WHERE png IS NOT NULL")]
    assert len(pngs) == 1
    decoded = np.asarray(Image.open(bs.server.data_dir / pngs[0]))
    assert decoded.shape == img.shape and metrics.psnr(img, decoded) > 18
