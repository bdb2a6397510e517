"""The camera app with a real firmware image on the chip emulator: MNIST digits, classify mode.

MNIST test digits are written as PNG files, read back by the folder source, run through
``firmware_images/mnist_lightspeeur_1bit.edgefw`` with ``Device(backend="auto")``, sent
to a loopback server, and the stored results are compared with the true labels.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
from pathlib import Path

import numpy as np
from PIL import Image

from edge_sdk.camera.cli import register_cli
from edge_sdk.server.run import BackgroundServer
from edge_sdk.server.server import ServerConfig
from edge_sdk.transport import auth

FIRMWARE = Path(__file__).resolve().parents[2] / "firmware_images" / "mnist_lightspeeur_1bit.edgefw"
N = 100


def test_classify_mnist_digits_end_to_end(shared_data, tmp_path):
    assert FIRMWARE.is_file(), f"shipped firmware missing: {FIRMWARE}"
    d = np.load(shared_data / "mnist" / "mnist.npz")
    x, y = d["x_test"][:N], d["y_test"][:N]
    folder = tmp_path / "digits"
    folder.mkdir()
    for i, img in enumerate(x):
        Image.fromarray(img).save(folder / f"{i:04d}.png")
    auth.provision(tmp_path / "server.json", "cam1", tmp_path / "cam1.json")
    bs = BackgroundServer(
        ServerConfig(tmp_path / "srv", auth.CredentialStore.load(tmp_path / "server.json"))
    ).start()
    try:
        parser = argparse.ArgumentParser()
        register_cli(parser.add_subparsers(dest="cmd", required=True))
        argv = [
            "camera",
            "--source",
            str(folder),
            "--mode",
            "classify",
            "--firmware",
            str(FIRMWARE),
            "--no-progress",
        ]
        argv += [
            "--server",
            f"127.0.0.1:{bs.address[1]}",
            "--credentials",
            str(tmp_path / "cam1.json"),
            "--spool",
            str(tmp_path / "spool"),
        ]
        argv += ["--report", str(tmp_path / "report.json")]
        args = parser.parse_args(argv)
        assert args.func(args) == 0
    finally:
        bs.stop()
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["frames"] == N and report["engine"] == "mnist_lightspeeur_1bit" and report["pending"] == 0
    conn = sqlite3.connect(tmp_path / "srv" / "edge.db")
    top1 = [json.loads(r[0])[0] for r in conn.execute("SELECT cls FROM results ORDER BY frame")]
    assert len(top1) == N
    accuracy = float(np.mean(np.asarray(top1) == y))
    assert accuracy >= 0.95, accuracy  # 0.995 on the first 200 digits when measured
