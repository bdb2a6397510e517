"""Shared fixtures and the test tiers.

Tiers (pytest markers, applied by directory): ``unit`` (pure Python), ``emulator``
(needs the compiled Cython emulator), ``data`` (needs ../shared/data).  When
``CI=true`` a missing dataset or a missing extension is a failure, not a skip.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def data_root() -> Path:
    """Where the shared datasets live: $EDGE_SDK_DATA, default ../shared/data."""
    return Path(os.environ.get("EDGE_SDK_DATA", REPO.parent / "shared" / "data"))


def require(condition: bool, why: str) -> None:
    """Skip locally, fail in CI: a missing prerequisite must never pass silently there."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required in CI: {why}")
    pytest.skip(why)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    root = data_root()
    require((root / "MANIFEST.md").is_file(), f"shared datasets not found at {root} (set EDGE_SDK_DATA)")
    return root


@pytest.fixture(scope="session")
def emulator_available() -> bool:
    from edge_sdk.runtime import emulator

    require(emulator.AVAILABLE, f"Cython emulator not built: {emulator.IMPORT_ERROR}")
    return True


def pytest_collection_modifyitems(config, items):
    for item in items:
        parts = Path(str(item.fspath)).parts
        for tier in ("unit", "emulator", "data"):
            if tier in parts:
                item.add_marker(getattr(pytest.mark, tier))


# Wall-clock budget per test, by tier: network tests must never hang CI.
DEADLINES_S = {"transport": 60, "camera": 60, "server": 90}


@pytest.fixture(autouse=True)
def _deadline(request):
    """Bound network-tier tests: SIGALRM raises TimeoutError if one runs past its budget."""
    parts = Path(str(request.node.fspath)).parts
    budget = next((DEADLINES_S[p] for p in parts if p in DEADLINES_S), None)
    if budget is None:
        yield
        return

    def boom(signum, frame):
        raise TimeoutError(f"test exceeded {budget} s")

    old = signal.signal(signal.SIGALRM, boom)
    signal.setitimer(signal.ITIMER_REAL, budget)
    yield
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, old)
