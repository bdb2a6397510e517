"""The emulator backend: the Cython kernels behind the backend contract.

(Placeholder while the Cython kernels are written: AVAILABLE is False.)
"""

from __future__ import annotations

import warnings

AVAILABLE = False
IMPORT_ERROR = "the Cython emulator has not been written yet"


def warn_missing() -> None:
    warnings.warn(f"edge_sdk: fast emulator unavailable ({IMPORT_ERROR}); using the numpy reference backend",
                  RuntimeWarning, stacklevel=3)


class EmulatorBackend:  # replaced by the real implementation
    def __init__(self) -> None:
        from ..errors import BackendError

        raise BackendError(f"emulator backend unavailable: {IMPORT_ERROR}")
