"""Long fuzz run against a real server process (outside CI; CI runs tests/server/test_fuzz.py).

    python tools/fuzz_server.py --minutes 30            # rounds until the time is up
    python tools/fuzz_server.py --rounds 20 --json fuzz.json

Each round is ``--pre`` pre-auth cases plus ``--post`` post-auth messages with a new
seed (see edge_sdk/server/fuzz.py), against the *same* server process, while a
well-behaved device streams frames.  After every round it prints the round's counts,
the good device's ack latency and the server's RSS; at the end it checks the totals:
no silent case, every good frame acknowledged, RSS growth after the first round below
``--rss-limit-mib``, the server alive and stopping cleanly.  Exit status 1 on failure.
Loopback only; the server's data lives in a temporary directory unless ``--keep DIR``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

from edge_sdk.server.fuzz import proc_rss_kib, run_fuzz
from edge_sdk.server.run import ServerProcess
from edge_sdk.transport import auth


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=0.0, help="run rounds until this much time has passed")
    p.add_argument("--rounds", type=int, default=10, help="number of rounds when --minutes is 0")
    p.add_argument("--pre", type=int, default=2000)
    p.add_argument("--post", type=int, default=8000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rss-limit-mib", type=float, default=64.0)
    p.add_argument("--keep", help="keep the server data directory here")
    p.add_argument("--json", help="write the per-round reports here")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse(argv)
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="edge-fuzz-"))
    work.mkdir(parents=True, exist_ok=True)
    auth.provision(work / "server.json", "fuzzer", work / "fuzzer.json")
    auth.provision(work / "server.json", "cam1", work / "cam1.json")
    fuzz_creds = auth.DeviceCredentials.load(work / "fuzzer.json")
    good_creds = auth.DeviceCredentials.load(work / "cam1.json")
    server = ServerProcess(work / "srv", work / "server.json").start()
    rounds, t0, ok = [], time.monotonic(), True
    print(
        f"{'round':>5} {'msgs':>7} {'silent':>6} {'pre err/closed':>15} {'post err/ack/closed':>20} {'good sent/acked':>16} {'good p99 ms':>11} {'rss MiB':>8}"
    )
    try:
        i = 0
        while (args.minutes and time.monotonic() - t0 < 60 * args.minutes) or (
            not args.minutes and i < args.rounds
        ):
            rep = asyncio.run(
                run_fuzz(
                    "127.0.0.1",
                    server.address[1],
                    fuzz_creds,
                    good_creds,
                    str(work / "spool"),
                    n_pre=args.pre,
                    n_post=args.post,
                    seed=args.seed + i,
                    rss=lambda: proc_rss_kib(server.proc.pid),
                )
            ).to_json()
            rounds.append(rep)
            pre, post = rep["pre_auth"], rep["post_auth"]
            print(
                f"{i:>5} {rep['total']:>7} {rep['silent']:>6} {pre.get('error', 0):>8}/{pre.get('closed', 0):<6} "
                f"{post.get('error', 0):>9}/{post.get('ack', 0)}/{post.get('closed', 0):<4} {rep['good_frames_sent']:>8}/{rep['good_frames_acked']:<7} "
                f"{rep['good_ack_ms'].get('p99', 0):>11} {rep['rss_kib']['max'] / 1024:>8.1f}",
                flush=True,
            )
            if server.proc.poll() is not None:
                print("FAIL: the server died", file=sys.stderr)
                ok = False
                break
            i += 1
    finally:
        code = server.stop(60)
    total = sum(r["total"] for r in rounds)
    silent = sum(r["silent"] for r in rounds)
    lost = sum(r["good_frames_sent"] - r["good_frames_acked"] for r in rounds)
    growth = (
        (max(r["rss_kib"]["max"] for r in rounds) - rounds[0]["rss_kib"]["max"]) / 1024 if rounds else 0.0
    )
    print(
        f"\n{total} fuzzed messages in {time.monotonic() - t0:.0f} s; silent {silent}; good frames not acked {lost}; "
        f"RSS growth after round 0 {growth:.1f} MiB; server exit {code}"
    )
    ok = ok and silent == 0 and lost == 0 and growth < args.rss_limit_mib and code == 0
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {"rounds": rounds, "total": total, "silent": silent, "rss_growth_mib": growth, "ok": ok},
                indent=1,
            )
        )
    print("OK" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
