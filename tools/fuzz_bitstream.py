#!/usr/bin/env python3
"""Long-running mutation fuzzer of the latent-bitstream reader (outside CI).

    python3 tools/fuzz_bitstream.py --iterations 1000000 --seed 7
    python3 tools/fuzz_bitstream.py --seconds 600 --backend reference

Mutates small valid streams (edge_sdk.codec.fuzz) in chunks of fresh seeds and prints
the count of every outcome.  Exit code 1 if any mutation made the reader raise
something other than BitstreamError or accept latents that contradict the header;
each failure is printed with the seed, iteration and bytes that reproduce it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge_sdk.codec import fuzz  # noqa: E402
from edge_sdk.codec.arith import resolve_backend  # noqa: E402

CHUNK = 5000


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, help="stop after this many mutations")
    parser.add_argument("--seconds", type=float, help="stop after this many seconds")
    parser.add_argument("--seed", type=int, default=0, help="first seed (chunk k uses seed + k)")
    parser.add_argument("--backend", choices=["auto", "cython", "reference"], default="auto")
    args = parser.parse_args(argv)
    if args.iterations is None and args.seconds is None:
        args.iterations = 100_000
    backend = resolve_backend(args.backend)
    total, failures, start, chunk = fuzz.FuzzReport(), [], time.perf_counter(), 0
    while (args.iterations is None or total.iterations < args.iterations) and (
        args.seconds is None or time.perf_counter() - start < args.seconds
    ):
        n = CHUNK if args.iterations is None else min(CHUNK, args.iterations - total.iterations)
        report = fuzz.run(n, seed=args.seed + chunk, backend=backend)
        total.iterations += report.iterations
        total.outcomes.update(report.outcomes)  # Counter.update adds the counts
        failures += report.failures
        chunk += 1
    total.seconds, total.failures = time.perf_counter() - start, failures
    print(f"backend: {backend}")
    print(total.summary())
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
