"""Run every benchmarks/bench_*.py module's ``main(argv)`` in turn.

    python -m benchmarks.run                    # all benchmarks, full length (make bench)
    python -m benchmarks.run --quick            # shorter runs (smoke test)
    python -m benchmarks.run --json out.json    # also write every module's results as JSON
    python -m benchmarks.run --only runtime     # just benchmarks/bench_runtime.py

Options after ``--`` are passed to every module unchanged.  A failing module is reported
and the others still run; the exit status is 1 if any failed.
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent


def discover() -> list[str]:
    """Names (without the ``bench_`` prefix) of the benchmark modules, sorted."""
    return sorted(p.stem[len("bench_") :] for p in HERE.glob("bench_*.py"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--quick", action="store_true", help="shorter runs (fewer frames / repetitions)")
    ap.add_argument("--json", metavar="OUT", help="write all results to this JSON file")
    ap.add_argument("--only", nargs="+", metavar="NAME", help="run only these modules (e.g. runtime server)")
    ap.add_argument("--list", action="store_true", help="list the benchmark modules and exit")
    ap.add_argument("rest", nargs=argparse.REMAINDER, help="-- then options for every module")
    args = ap.parse_args(argv)
    names = discover()
    if args.list:
        print("\n".join(names))
        return 0
    if args.only:
        unknown = sorted(set(args.only) - set(names))
        if unknown:
            ap.error(f"unknown benchmark(s) {unknown}; available: {names}")
        names = [n for n in names if n in args.only]
    forwarded = (["--quick"] if args.quick else []) + [a for a in args.rest if a != "--"]
    results: dict = {
        "meta": {
            "python": platform.python_version(),
            "machine": platform.machine(),
            "platform": platform.platform(),
            "quick": args.quick,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
        },
        "benchmarks": {},
    }
    failed = []
    for name in names:
        print(f"\n=== bench_{name} ===", flush=True)
        t0 = time.perf_counter()
        try:
            module = importlib.import_module(f"benchmarks.bench_{name}")
            try:
                out = module.main(list(forwarded))
            except SystemExit as exc:
                if exc.code != 2 or "--quick" not in forwarded:
                    raise
                # argparse usage error: a module that does not take --quick yet runs at its full length
                print(f"(bench_{name} does not accept --quick: running it without)", flush=True)
                out = module.main([a for a in forwarded if a != "--quick"])
            results["benchmarks"][name] = {
                "ok": True,
                "seconds": round(time.perf_counter() - t0, 2),
                "results": out,
            }
        except SystemExit as exc:  # argparse in a module
            ok = exc.code in (0, None)
            results["benchmarks"][name] = {
                "ok": ok,
                "seconds": round(time.perf_counter() - t0, 2),
                "error": None if ok else f"exit {exc.code}",
            }
            if not ok:
                failed.append(name)
        except Exception as exc:  # noqa: BLE001 - report and go on with the others
            traceback.print_exc()
            results["benchmarks"][name] = {
                "ok": False,
                "seconds": round(time.perf_counter() - t0, 2),
                "error": f"{type(exc).__name__}: {exc}",
            }
            failed.append(name)
        print(f"--- bench_{name}: {time.perf_counter() - t0:.1f} s", flush=True)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))
        print(f"\nresults written to {args.json}")
    if failed:
        print(f"\nFAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
