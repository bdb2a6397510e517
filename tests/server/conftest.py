"""Every test here is bounded: a SIGALRM fires if one runs past its budget."""

from __future__ import annotations

import signal

import pytest

TEST_BUDGET_S = 60


@pytest.fixture(autouse=True)
def _deadline():
    def boom(signum, frame):
        raise TimeoutError(f"test exceeded {TEST_BUDGET_S} s")

    old = signal.signal(signal.SIGALRM, boom)
    signal.setitimer(signal.ITIMER_REAL, TEST_BUDGET_S)
    yield
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, old)
