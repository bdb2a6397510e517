"""The adaptive binary arithmetic coder: validation and backend selection.

Two implementations write identical bytes: ``cython`` (``edge_sdk.codec._arith``, C
loops with the GIL released) and ``reference`` (:mod:`edge_sdk.codec.arith_ref`,
pure Python, the executable spec).  ``backend="auto"`` (or ``$EDGE_SDK_CODEC_BACKEND``)
uses the extension when it is built and the reference otherwise.

Every argument is checked here before either implementation indexes anything:
planes must be a 3-D array of 0/1, the group 1..16 and dividing the plane count,
the bit count at most :data:`MAX_SYMBOLS`.  Decoding is total: a corrupt or
truncated stream either decodes to *some* bits (its CRC catches that one level up)
or raises :class:`~edge_sdk.errors.BitstreamError`; it never reads past the buffer.
"""

from __future__ import annotations

import os
from typing import Optional

import numpy as np

from ..errors import BackendError, BitstreamError, InputError
from . import arith_ref

BACKENDS = ("auto", "cython", "reference")
MAX_GROUP = arith_ref.MAX_GROUP
#: The most bits one call codes (32 Mbit; 4 MiB packed): bounds memory and time on hostile headers.
MAX_SYMBOLS = 1 << 25
BUILD_HINT = "build it with `python3 setup.py build_ext --inplace` (needs Cython>=3, numpy and a C compiler)"

try:
    from . import _arith
except Exception as _exc:  # noqa: BLE001 - ImportError, or a build for another numpy/Python ABI
    _arith = None
    AVAILABLE = False
    IMPORT_ERROR: Optional[str] = (
        f"edge_sdk.codec._arith is not built ({type(_exc).__name__}: {_exc}); {BUILD_HINT}"
    )
else:
    AVAILABLE = True
    IMPORT_ERROR = None


def resolve_backend(backend: Optional[str] = None) -> str:
    """``cython`` or ``reference`` for a requested backend (None: $EDGE_SDK_CODEC_BACKEND, default auto)."""
    name = backend or os.environ.get("EDGE_SDK_CODEC_BACKEND", "auto")
    if name not in BACKENDS:
        raise InputError(f"codec backend must be one of {BACKENDS}, found {name!r}")
    if name == "auto":
        return "cython" if AVAILABLE else "reference"
    if name == "cython" and not AVAILABLE:
        raise BackendError(IMPORT_ERROR)
    return name


def _check_group(n_planes: int, group: int) -> None:
    if isinstance(group, bool) or not isinstance(group, (int, np.integer)) or not 1 <= group <= MAX_GROUP:
        raise InputError(f"group must be an int 1..{MAX_GROUP}, found {group!r}")
    if n_planes % group:
        raise InputError(f"plane count must be a multiple of group {group}, found {n_planes}")


def _check_shape(shape) -> tuple:
    try:
        dims = tuple(int(d) for d in shape)
    except (TypeError, ValueError):
        raise InputError(f"shape must be (planes, height, width), found {shape!r}") from None
    if len(dims) != 3 or min(dims) < 0:
        raise InputError(f"shape must be 3 non-negative ints (planes, height, width), found {shape!r}")
    total = dims[0] * dims[1] * dims[2]
    if total > MAX_SYMBOLS:
        raise InputError(f"at most {MAX_SYMBOLS} bits per stream, found {total}")
    return dims


def check_planes(planes) -> np.ndarray:
    """``planes`` as a C-contiguous uint8 (P, H, W) array of 0/1 (InputError otherwise)."""
    if not isinstance(planes, np.ndarray):
        raise InputError(f"planes must be a numpy array, found {type(planes).__name__}")
    if planes.dtype not in (np.uint8, np.bool_):
        raise InputError(f"planes must be uint8 or bool, found {planes.dtype}")
    _check_shape(planes.shape)
    arr = np.ascontiguousarray(planes, dtype=np.uint8)
    if arr.size and arr.max() > 1:
        raise InputError(f"planes must hold only 0 and 1, found {int(arr.max())}")
    return arr


def encode_planes(planes: np.ndarray, group: int = 1, backend: Optional[str] = None) -> bytes:
    """Arithmetic-code 0/1 ``planes`` (P, H, W) with context model 1 (groups of ``group`` planes)."""
    arr = check_planes(planes)
    _check_group(arr.shape[0], group)
    if resolve_backend(backend) == "cython":
        return _arith.encode_planes(arr, int(group))
    return arith_ref.encode_planes(arr, int(group))


def decode_planes(data, shape, group: int = 1, backend: Optional[str] = None) -> np.ndarray:
    """Decode ``shape`` = (P, H, W) bits from ``data`` (BitstreamError if the stream is corrupt)."""
    dims = _check_shape(shape)
    _check_group(dims[0], group)
    try:
        buf = bytes(memoryview(data).cast("B"))
    except TypeError:
        raise InputError(f"data must be bytes-like, found {type(data).__name__}") from None
    if resolve_backend(backend) == "cython":
        planes, consumed, corrupt = _arith.decode_planes(buf, *dims, int(group))
    else:
        planes, consumed, corrupt = arith_ref.decode_planes(buf, dims, int(group))
    if corrupt:
        raise BitstreamError(
            f"arithmetic stream corrupt: decoder left its interval after {consumed} of {len(buf)} bytes"
        )
    if len(buf) > consumed:
        raise BitstreamError(
            f"arithmetic stream too long: {dims} bits use at most {consumed} bytes, found {len(buf)}"
        )
    return planes
