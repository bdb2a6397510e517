"""Canonical msgpack for the METADATA section (docs/firmware-format.md section 5.7).

One metadata mapping has exactly one encoding: map keys are strings in sorted
order, tuples become arrays, numpy scalars and arrays become their Python values.
The reader re-encodes what it decoded and requires identical bytes, which rejects
duplicate keys, unsorted maps, non-minimal integers, float32 values and extension
types in one rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgpack
import numpy as np

from ..errors import FirmwareError
from .format import MAX_METADATA_DEPTH


def canonical(obj: Any, path: str = "metadata", depth: int = 0) -> Any:
    """A plain-Python copy of ``obj`` in canonical form (FirmwareError names the bad path)."""
    if depth > MAX_METADATA_DEPTH:
        raise FirmwareError(f"{path}: nested deeper than {MAX_METADATA_DEPTH} levels")
    if obj is None or isinstance(obj, (bool, str, bytes)):
        return obj
    if isinstance(obj, int):
        if not -(1 << 63) <= obj < 1 << 64:
            raise FirmwareError(f"{path}: integer {obj} does not fit 64 bits")
        return int(obj)
    if isinstance(obj, float):
        return float(obj)
    if isinstance(obj, (bytearray, memoryview)):
        return bytes(obj)
    if isinstance(obj, np.generic):
        return canonical(obj.item(), path, depth)
    if isinstance(obj, np.ndarray):
        return canonical(obj.tolist(), path, depth)
    if isinstance(obj, (list, tuple)):
        return [canonical(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(obj)]
    if isinstance(obj, Mapping):
        bad = [k for k in obj if not isinstance(k, str)]
        if bad:
            raise FirmwareError(f"{path}: map keys must be strings, found {type(bad[0]).__name__} {bad[0]!r}")
        return {k: canonical(obj[k], f"{path}[{k!r}]", depth + 1) for k in sorted(obj)}
    raise FirmwareError(
        f"{path}: cannot store a {type(obj).__name__} in metadata "
        "(use None, bool, int, float, str, bytes, lists and str-keyed maps)"
    )


def encode_metadata(metadata: Mapping[str, Any]) -> bytes:
    """The canonical msgpack bytes of a metadata mapping."""
    if not isinstance(metadata, Mapping):
        raise FirmwareError(f"network metadata must be a mapping, found {type(metadata).__name__}")
    return msgpack.packb(canonical(metadata), use_bin_type=True)


def decode_metadata(data) -> dict[str, Any]:
    """Decode METADATA bytes and check that they are canonical (FirmwareError otherwise)."""
    raw = bytes(data)
    try:
        obj = msgpack.unpackb(raw, raw=False, use_list=True, strict_map_key=True)
    except Exception as exc:  # msgpack raises several unrelated types for malformed input
        raise FirmwareError(f"METADATA: expected one msgpack map, found undecodable data ({exc})") from None
    if not isinstance(obj, dict):
        raise FirmwareError(f"METADATA: expected a msgpack map, found {type(obj).__name__}")
    try:
        again = encode_metadata(obj)
    except FirmwareError as exc:
        raise FirmwareError(f"METADATA: not storable: {exc}") from None
    if again != raw:
        raise FirmwareError(
            f"METADATA: not in canonical form (expected the {len(again)}-byte canonical "
            f"encoding of its contents, found {len(raw)} different bytes)"
        )
    return obj
