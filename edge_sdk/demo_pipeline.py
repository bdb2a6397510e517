"""The end-to-end part of `make demo`: server, camera app (compress + retrieve), index query.

Everything runs on loopback in a work folder (default ``./demo_out``): it provisions a
device credential, starts ``edge-sdk serve`` in the background, runs the camera app on the
bundled sample pictures in compress mode (patch latents -> the server's full-frame decoder
-> PNG frames) and in retrieve mode (descriptors from the firmware -> the index), queries
the index with a stored frame, writes a report, and stops the server it started.
"""

from __future__ import annotations

import json
import shutil
from contextlib import redirect_stdout
from io import StringIO
from pathlib import Path
from typing import Any

SAMPLES = Path(__file__).with_name("samples")


def _camera(args: list[str]) -> dict[str, Any]:
    """Run the camera app quietly; its last stdout line is its JSON report."""
    from .camera.cli import main as camera_main

    out = StringIO()
    with redirect_stdout(out):
        code = camera_main(args)
    lines = [ln for ln in out.getvalue().splitlines() if ln.startswith("{")]
    report = json.loads(lines[-1]) if lines else {}
    if code != 0:
        raise RuntimeError(f"camera app exited with status {code}: {out.getvalue()[-500:]}")
    return report


def run_pipeline(firmware: Path, work: Path, frames: int = 6, k: int = 3) -> dict[str, Any]:
    """Run the whole pipeline; returns the report (also written to ``work/report.json``)."""
    from .server.run import ServerProcess
    from .transport.auth import provision

    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    provision(work / "server-credentials.json", "demo-cam", work / "device-credentials.json")
    server = ServerProcess(work / "server", work / "server-credentials.json", port=0, http_port=0).start()
    try:
        host, port = server.address
        common = [
            "--source",
            str(SAMPLES),
            "--loop",
            "--frames",
            str(frames),
            "--server",
            f"{host}:{port}",
            "--credentials",
            str(work / "device-credentials.json"),
            "--spool",
            str(work / "spool"),
            "--no-progress",
        ]
        compress = _camera(common + ["--mode", "compress", "--codec", "baseline"])
        retrieve = _camera(common + ["--mode", "retrieve", "--firmware", str(firmware)])
    finally:
        status = server.stop()
    report = {"firmware": str(firmware), "compress": compress, "retrieve": retrieve, "server_exit": status}
    report.update(_query(work / "server", k))
    (work / "report.json").write_text(json.dumps(report, indent=1))
    return report


def _query(data: Path, k: int) -> dict[str, Any]:
    """Stored frames, and the top-k neighbours of the newest frame that has a descriptor."""
    from .server.query import QueryService

    service = QueryService(data)
    frames = service.recent_frames("demo-cam", 100)
    described = [f for f in frames if any(kind != "frame" for kind in f.get("kinds", []))]
    decoded = [f["png"] for f in frames if f.get("png")]
    hits = []
    if described:
        probe = described[0]
        hits = [h.to_json() for h in service.search_frame("demo-cam", int(probe["frame"]), k)]
    return {
        "decoded_frames": decoded,
        "query_frame": described[0]["frame"] if described else None,
        "search_results": hits,
    }
