"""`make demo` end to end: the chip part is bit-exact, the pipeline part loses nothing and stops cleanly."""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_demo_runs_end_to_end(tmp_path):
    out = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "edge_sdk.demo", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "bit-exact vs reference: yes" in proc.stdout
    report = json.loads((out / "report.json").read_text())
    for mode in ("compress", "retrieve"):
        assert report[mode]["frames"] == 6 and report[mode]["pending"] == 0
    assert report["server_exit"] == 0
    assert len(report["decoded_frames"]) == 6
    assert all((out / "server" / png).is_file() for png in report["decoded_frames"])
    assert report["search_results"] and report["search_results"][0]["frame"] == report["query_frame"]
