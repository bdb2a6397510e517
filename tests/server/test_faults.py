"""Fault injection with real processes on 127.0.0.1: SIGKILL the server, kill the device.

Server and device each run as a subprocess.  The server is SIGKILLed twice mid-stream
and restarted on the same port; the device is SIGKILLed once and restarted on the same
spool.  Afterwards every frame must be stored exactly once with pixel-exact content, and
every sequence number the device saw acknowledged must be in the server's database.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from edge_sdk.client.simulate import frame_image
from edge_sdk.server.run import ServerProcess, _child_env
from edge_sdk.transport import auth

N_FRAMES = 60


def wait_for(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.02)


def line_count(path: Path) -> int:
    try:
        return len(path.read_text().split())
    except FileNotFoundError:
        return 0


def progress(path: Path) -> int:
    try:
        return int(path.read_text() or -1)
    except (FileNotFoundError, ValueError):
        return -1


def start_device(tmp: Path, port: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "edge_sdk.client.simulate", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--credentials", str(tmp / "cam1.json"), "--spool", str(tmp / "spool"), "--frames", str(N_FRAMES)]
    cmd += [
        "--interval",
        "0.03",
        "--progress",
        str(tmp / "progress"),
        "--acked",
        str(tmp / "acked.log"),
        "--flush-timeout",
        "40",
    ]
    log = open(tmp / "device.log", "ab")  # noqa: SIM115 - handed to the child
    try:
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=_child_env())
    finally:
        log.close()


def test_sigkill_server_and_restart_device_lose_and_duplicate_nothing(tmp_path):
    auth.provision(tmp_path / "server.json", "cam1", tmp_path / "cam1.json")
    server = ServerProcess(tmp_path / "srv", tmp_path / "server.json").start()
    port = server.address[1]
    device = start_device(tmp_path, port)
    restarted = None
    try:
        acked = tmp_path / "acked.log"
        wait_for(lambda: line_count(acked) >= 120, 30, "first acks")
        server.proc.send_signal(signal.SIGKILL)  # mid-stream, no chance to clean up
        server.proc.wait(10)
        time.sleep(0.3)
        server.start()  # same port: the device only knows that one

        wait_for(lambda: progress(tmp_path / "progress") >= N_FRAMES // 2, 30, "half the frames spooled")
        os.kill(device.pid, signal.SIGKILL)
        device.wait(10)
        restarted = start_device(tmp_path, port)

        wait_for(lambda: progress(tmp_path / "progress") >= 3 * N_FRAMES // 4, 30, "three quarters spooled")
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(10)
        server.start()

        assert restarted.wait(60) == 0, (tmp_path / "device.log").read_text()
    finally:
        for p in (device, restarted):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait(10)
        assert server.stop(30) == 0  # graceful: SIGTERM, drains post-processing

    conn = sqlite3.connect(tmp_path / "srv" / "edge.db")
    frames = conn.execute(
        "SELECT frame, n_patches, decoded, png, missing FROM frames ORDER BY frame"
    ).fetchall()
    assert [f[0] for f in frames] == list(range(N_FRAMES))  # every frame, once
    assert all(f[1] == 12 and f[2] == 1 for f in frames)
    assert conn.execute("SELECT count(*) FROM patches").fetchone()[0] == N_FRAMES * 12
    assert conn.execute("SELECT count(*), count(DISTINCT frame) FROM descriptors").fetchone() == (
        N_FRAMES,
        N_FRAMES,
    )
    seen = {r[0] for r in conn.execute("SELECT seq FROM seen WHERE device='cam1'")}
    acked_seqs = {int(s) for s in (tmp_path / "acked.log").read_text().split()}
    assert acked_seqs and acked_seqs <= seen  # nothing acknowledged was lost
    for k, _, _, png, _ in frames:  # pixel-exact content
        assert np.array_equal(np.asarray(Image.open(tmp_path / "srv" / png)), frame_image(k))
    log = (tmp_path / "device.log").read_text()
    assert "drained=True" in log
