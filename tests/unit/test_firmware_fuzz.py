"""The reader under a mutation fuzz loop: only FirmwareError, and accepted images are canonical.

10,000+ mutations of the two golden images (bit flips, byte changes, structured
field edits, record swaps, truncations, extensions), 90 % of them with the CRCs and
SHA-256 recomputed afterwards so the section and network checks are reached.  The
long-running version is tools/fuzz_firmware.py.
"""

from __future__ import annotations

import time

import pytest

from edge_sdk.firmware import write_firmware
from edge_sdk.firmware.fuzz import FuzzReport, check_one, run_fuzz
from edge_sdk.firmware.samples import GOLDEN_PROFILES, golden_network, random_network

ITERATIONS = 10_000


@pytest.fixture(scope="module")
def seeds() -> list[bytes]:
    return [write_firmware(golden_network(p)) for p in GOLDEN_PROFILES]


def test_reader_survives_mutation_fuzzing(seeds):
    start = time.perf_counter()
    report = run_fuzz(seeds, iterations=ITERATIONS, seed=12345)
    elapsed = time.perf_counter() - start
    print(report.summary())
    assert report.iterations == ITERATIONS
    assert not report.failures, "\n".join(report.failures[:10])
    assert not any(k.startswith("CRASH") for k in report.outcomes)
    # The fuzz loop must reach past the checksums: most rejections come from deep checks.
    assert report.deep > ITERATIONS // 4, report.summary()
    assert {"field", "bitflip", "truncate", "extend", "swap"} <= set(report.kinds)
    assert report.slowest < 2.0 and elapsed < 60


def test_fuzzing_a_larger_random_network(seeds):
    data = write_firmware(random_network("lightspeeur-2803", 5, host_head=True))
    report = run_fuzz([data], iterations=1000, seed=7)
    assert not report.failures, "\n".join(report.failures[:10])


def test_oracle_flags_other_exceptions(monkeypatch, seeds):
    import edge_sdk.firmware.fuzz as fuzz

    def boom(_data):
        raise KeyError("x")

    monkeypatch.setattr(fuzz, "load_firmware", boom)
    report = FuzzReport()
    check_one(seeds[0], report, "t")
    assert report.failures and "KeyError" in report.failures[0]
