"""`edge-sdk convert` and `edge-sdk verify` through the real command line entry point."""

import json

import numpy as np
import pytest

from edge_sdk.cli import main
from edge_sdk.convert.tflite_writer import tiny_cnn, tiny_resnet
from edge_sdk.firmware import load_firmware

pytest.importorskip("ai_edge_litert")


@pytest.fixture()
def files(tmp_path):
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (100, 4, 4, 3)).astype(np.float32)
    x = np.clip(np.repeat(np.repeat(base, 4, 1), 4, 2) + rng.normal(0, 20, (100, 16, 16, 3)), 0, 255).astype(
        np.uint8
    )
    np.savez(tmp_path / "cal.npz", x=x[:70])
    np.savez(tmp_path / "test.npz", x=x[70:], y=rng.integers(0, 5, 30))
    (tmp_path / "m.tflite").write_bytes(tiny_resnet())
    return tmp_path


def test_convert_then_verify(files, capsys):
    out = files / "m.edgefw"
    rc = main(
        [
            "convert",
            str(files / "m.tflite"),
            "-p",
            "lightspeeur-2803",
            "-o",
            str(out),
            "--bits",
            "5",
            "--calib",
            str(files / "cal.npz"),
            "--json",
            str(files / "r.json"),
            "--set",
            "recon_images=32",
            "--name",
            "tiny",
        ]
    )
    assert rc == 0
    text = capsys.readouterr().out
    assert "folded into" in text and "wrote" in text
    report = json.loads((files / "r.json").read_text())
    assert report["profile"] == "lightspeeur-2803" and report["layers"][0]["weight_bits"] == 5
    image = load_firmware(out.read_bytes())
    assert image.metadata["model_name"] == "tiny"

    rc = main(
        [
            "verify",
            str(out),
            "--reference",
            str(files / "m.tflite"),
            "--data",
            str(files / "test.npz"),
            "--json",
            "--backend",
            "reference",
        ]
    )
    assert rc == 0
    result = json.loads(capsys.readouterr().out)
    assert result["images"] == 30 and result["top1_agreement"] >= 0.8
    assert result["accuracy"] is not None and result["reference_accuracy"] is not None
    assert set(result["layer_sqnr_db"]) == {"conv0", "conv1", "conv2", "conv3", "conv4"}
    assert all(v > 10 for v in result["layer_sqnr_db"].values())


def test_verify_without_reference_reports_accuracy(files, capsys):
    out = files / "c.edgefw"
    (files / "c.tflite").write_bytes(tiny_cnn())
    assert (
        main(
            [
                "convert",
                str(files / "c.tflite"),
                "-o",
                str(out),
                "--calib",
                str(files / "cal.npz"),
                "--quiet",
                "--set",
                "recon_images=32",
            ]
        )
        == 0
    )
    assert main(["verify", str(out), "--data", str(files / "test.npz"), "--backend", "reference"]) == 0
    text = capsys.readouterr().out
    assert "accuracy:" in text and "agreement" not in text


def test_convert_errors_are_reported_not_raised(files, capsys):
    rc = main(
        [
            "convert",
            str(files / "m.tflite"),
            "-o",
            str(files / "x.edgefw"),
            "--bits",
            "4",
            "--calib",
            str(files / "cal.npz"),
        ]
    )
    assert rc == 2 and "4-bit" in capsys.readouterr().err
