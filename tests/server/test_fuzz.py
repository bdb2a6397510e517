"""Hostile input against a running server process: 10,000 fuzzed messages (CI-sized).

The long version is tools/fuzz_server.py.  Here: 2,000 pre-auth cases (a fresh
connection each) and 8,000 post-auth messages, while a well-behaved device streams
frames the whole time.  Every case must get an error reply or a closed connection
(``silent == 0``), the good device must get every frame acknowledged, and the server's
resident memory must stay bounded.
"""

from __future__ import annotations

import asyncio
import sqlite3

from edge_sdk.server.fuzz import proc_rss_kib, run_fuzz
from edge_sdk.server.run import ServerProcess
from edge_sdk.transport import auth

RSS_GROWTH_LIMIT_KIB = 64 * 1024


def test_ten_thousand_fuzzed_messages(tmp_path):
    auth.provision(tmp_path / "server.json", "fuzzer", tmp_path / "fuzzer.json")
    auth.provision(tmp_path / "server.json", "cam1", tmp_path / "cam1.json")
    server = ServerProcess(tmp_path / "srv", tmp_path / "server.json").start()
    try:
        report = asyncio.run(
            asyncio.wait_for(
                run_fuzz(
                    "127.0.0.1",
                    server.address[1],
                    auth.DeviceCredentials.load(tmp_path / "fuzzer.json"),
                    auth.DeviceCredentials.load(tmp_path / "cam1.json"),
                    str(tmp_path / "spool"),
                    n_pre=2000,
                    n_post=8000,
                    seed=1234,
                    rss=lambda: proc_rss_kib(server.proc.pid),
                ),
                75,
            )
        )
        assert server.proc.poll() is None, "the server died"
    finally:
        code = server.stop(30)
    rep = report.to_json()
    print(rep)
    assert rep["total"] >= 10_000
    assert rep["silent"] == 0, rep
    assert rep["pre_auth"].get("error", 0) + rep["pre_auth"].get("closed", 0) == 2000
    assert rep["post_auth"].get("error", 0) > 7000  # nearly all mutations are refused, not accepted
    assert len(rep["cases"]) == 8  # every pre-auth case kind was exercised
    assert rep["good_frames_sent"] > 10 and rep["good_frames_acked"] == rep["good_frames_sent"]
    assert rep["rss_kib"]["max"] - rep["rss_kib"]["first"] < RSS_GROWTH_LIMIT_KIB
    assert code == 0
    conn = sqlite3.connect(tmp_path / "srv" / "edge.db")
    good = conn.execute("SELECT count(*) FROM frames WHERE device='cam1' AND decoded=1").fetchone()[0]
    assert good == rep["good_frames_sent"]
    log = (tmp_path / "srv" / "server.log").read_text()
    assert "Traceback" not in log and "failed" not in log.replace("authentication failed", "").replace(
        "handshake failed", ""
    )
