#!/usr/bin/env python3
"""Long-running mutation fuzzer of the firmware reader (outside CI).

    python3 tools/fuzz_firmware.py --seconds 600
    python3 tools/fuzz_firmware.py --iterations 1000000 --seed 7 --image my.edgefw

Mutates valid images (the two golden networks and a few random networks, plus any
--image given) and reports the count of every outcome.  Exit code 1 if any
mutation made the reader raise something other than FirmwareError, fall back to
its safety net, or accept a non-canonical image; each failure is printed with the
seed and iteration that reproduce it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge_sdk.firmware import write_firmware  # noqa: E402
from edge_sdk.firmware.fuzz import run_fuzz  # noqa: E402
from edge_sdk.firmware.samples import GOLDEN_PROFILES, golden_network, random_network  # noqa: E402


def seed_images(extra: list[str], n_random: int) -> list[bytes]:
    images = [write_firmware(golden_network(p)) for p in GOLDEN_PROFILES]
    images += [write_firmware(random_network(p, s)) for s in range(n_random) for p in GOLDEN_PROFILES]
    images += [Path(path).read_bytes() for path in extra]
    return images


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, help="stop after this many mutations")
    parser.add_argument("--seconds", type=float, help="stop after this many seconds")
    parser.add_argument(
        "--seed", type=int, default=0, help="random seed (a failure names the seed to replay)"
    )
    parser.add_argument(
        "--image", action="append", default=[], help="also mutate this valid image (repeatable)"
    )
    parser.add_argument(
        "--random-networks", type=int, default=3, help="random networks per profile to mutate"
    )
    args = parser.parse_args(argv)
    if args.iterations is None and args.seconds is None:
        args.seconds = 60.0
    images = seed_images(args.image, args.random_networks)
    print(f"fuzzing {len(images)} seed images (seed {args.seed})", flush=True)
    report = run_fuzz(
        images,
        iterations=args.iterations,
        seconds=args.seconds,
        seed=args.seed,
        progress=lambda r: print(
            f"  {r.iterations} mutations, {len(r.failures)} failures, {r.seconds:.0f} s", flush=True
        ),
    )
    print(report.summary())
    print("mutation kinds: " + ", ".join(f"{k} {n}" for k, n in sorted(report.kinds.items())))
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
