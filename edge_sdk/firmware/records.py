"""LAYERS and SCHEDULE records: Layer <-> fixed-size bytes (docs/firmware-format.md 5.2, 5.5).

Encoding checks that every field fits its type (the writer never silently
truncates); decoding checks every field the format itself constrains (reserved
bytes, enumerations, index ranges, shapes).  Profile-dependent rules are left to
``Network.validate`` and ``tiling.check_schedule``, which the reader runs later.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import FirmwareError
from ..network import OP_CODES, OP_NAMES, Layer, Network
from ..tiling import LayerSchedule, Schedule
from .format import LAYER, MAX_DIM, OUTPUT_CODES, OUTPUT_NAMES, SCHEDULE

REF_KINDS = ("name", "weights", "scalars", "bias", "host")

_U8, _U16, _U32 = (0, 255), (0, MAX_DIM), (0, (1 << 32) - 1)
_I32 = (-(1 << 31), (1 << 31) - 1)


@dataclass
class LayerRecord:
    """A decoded LAYERS record: the Layer's scalar fields plus its data references."""

    layer: Layer
    refs: dict[str, tuple[int, int]]  # kind -> (offset, length) in its section


def _fit(where: str, field: str, value, bounds: tuple[int, int]) -> int:
    try:
        v = int(value)
    except (TypeError, ValueError):
        raise FirmwareError(f"{where}: field {field} must be an integer, found {value!r}") from None
    if v != value or not bounds[0] <= v <= bounds[1]:
        raise FirmwareError(f"{where}: field {field} = {value!r} does not fit {bounds[0]}..{bounds[1]}")
    return v


def _fit_all(where: str, field: str, values, n: int, bounds: tuple[int, int]) -> list[int]:
    values = tuple(values)
    if len(values) != n:
        raise FirmwareError(f"{where}: field {field} needs {n} values, found {len(values)}")
    return [_fit(where, f"{field}[{i}]", v, bounds) for i, v in enumerate(values)]


def encode_layer(index: int, layer: Layer, refs: dict[str, tuple[int, int]]) -> bytes:
    """The 96-byte record of one layer; FirmwareError names any field that does not fit."""
    where = f"layer {index} ({layer.name!r})"
    if layer.op not in OP_CODES or layer.output not in OUTPUT_CODES:
        raise FirmwareError(f"{where}: op {layer.op!r} / output {layer.output!r} cannot be stored")
    inputs = list(layer.inputs)
    if not 1 <= len(inputs) <= 2:
        raise FirmwareError(f"{where}: 1 or 2 inputs can be stored, found {len(inputs)}")
    scale = float(layer.out_scale)
    if not math.isfinite(scale) or scale <= 0:
        raise FirmwareError(f"{where}: out_scale must be finite and > 0, found {layer.out_scale!r}")
    fields = [
        OP_CODES[layer.op],
        OUTPUT_CODES[layer.output],
        _fit(where, "weight_bits", layer.weight_bits, _U8),
        _fit(where, "act_bits", layer.act_bits, _U8),
        _fit(where, "kernel", layer.kernel, _U8),
        _fit(where, "stride", layer.stride, _U8),
        len(inputs),
        0,
        *_fit_all(where, "pad", layer.pad, 4, _U8),
        _fit(where, "shift", layer.shift, _I32),
        *_fit_all(where, "inputs", inputs + [-1] * (2 - len(inputs)), 2, _I32),
        *_fit_all(where, "in_shape", layer.in_shape, 3, _U16),
        *_fit_all(where, "out_shape", layer.out_shape, 3, _U16),
        _fit(where, "groups", layer.groups, _U16),
        0,
        *_fit_all(where, "mults", layer.mults, 2, _I32),
        scale,
    ]
    for kind in REF_KINDS:
        fields += [
            _fit(where, f"{kind} offset", refs[kind][0], _U32),
            _fit(where, f"{kind} length", refs[kind][1], _U32),
        ]
    return LAYER.pack(*fields)


def _bad(index: int, message: str) -> FirmwareError:
    return FirmwareError(f"LAYERS record {index}: {message}")


def decode_layer(index: int, raw: bytes) -> LayerRecord:
    """Decode one record's known prefix and check the format-level field rules."""
    v = LAYER.unpack(raw[: LAYER.size])
    op_code, out_code, wbits, abits, kernel, stride, n_inputs, res0 = v[0:8]
    pad, shift, inputs = tuple(v[8:12]), v[12], v[13:15]
    in_shape, out_shape, groups, res1, mults, scale = (
        tuple(v[15:18]),
        tuple(v[18:21]),
        v[21],
        v[22],
        v[23:25],
        v[25],
    )
    if op_code not in OP_NAMES:
        raise _bad(index, f"op code must be one of {sorted(OP_NAMES)}, found {op_code}")
    op = OP_NAMES[op_code]
    if out_code not in OUTPUT_NAMES:
        raise _bad(index, f"output must be 0 (act) or 1 (raw), found {out_code}")
    if res0 or res1:
        raise _bad(index, f"reserved fields must be zero, found {res0} and {res1}")
    want_inputs = 2 if op == "add" else 1
    if n_inputs != want_inputs:
        raise _bad(index, f"{op} takes {want_inputs} input(s), n_inputs is {n_inputs}")
    if any(not -1 <= s < index for s in inputs[:n_inputs]) or any(s != -1 for s in inputs[n_inputs:]):
        raise _bad(index, f"inputs must be -1..{index - 1} (unused slot -1), found {tuple(inputs)}")
    for name, shape in (("in_shape", in_shape), ("out_shape", out_shape)):
        if min(shape) < 1:
            raise _bad(index, f"{name} dimensions must be 1..{MAX_DIM}, found {shape}")
    if op == "conv" and min(kernel, stride, groups) < 1:
        raise _bad(index, f"conv kernel, stride and groups must be >= 1, found {kernel}, {stride}, {groups}")
    if op == "conv" and (in_shape[2] % groups or out_shape[2] % groups):
        raise _bad(index, f"groups {groups} must divide channels {in_shape[2]} -> {out_shape[2]}")
    if not math.isfinite(scale) or scale <= 0:
        raise _bad(index, f"out_scale must be finite and > 0, found {scale!r}")
    layer = Layer(
        "",
        op,
        tuple(inputs[:n_inputs]),
        in_shape,
        out_shape,
        kernel=kernel,
        stride=stride,
        pad=pad,
        groups=groups,
        weight_bits=wbits,
        act_bits=abits,
        output=OUTPUT_NAMES[out_code],
        shift=shift,
        mults=tuple(mults),
        out_scale=scale,
    )
    refs = {kind: (v[26 + 2 * k], v[27 + 2 * k]) for k, kind in enumerate(REF_KINDS)}
    return LayerRecord(layer, refs)


def encode_schedule(ls: LayerSchedule) -> bytes:
    """The 32-byte SCHEDULE record of one chip layer."""
    where = f"schedule of layer {ls.layer}"
    u64 = (0, (1 << 64) - 1)
    return SCHEDULE.pack(
        _fit(where, "layer", ls.layer, _U32),
        _fit(where, "band_rows", ls.band_rows, _U32),
        _fit(where, "group_channels", ls.group_channels, _U32),
        1 if ls.weights_resident else 0,
        bytes(3),
        _fit(where, "act_bits", ls.act_bits, u64),
        _fit(where, "weight_bits", ls.weight_bits, u64),
    )


def decode_schedule(index: int, raw: bytes) -> LayerSchedule:
    """Decode one SCHEDULE record's known prefix (format-level rules only)."""
    layer, rows, chn, resident, reserved, act, wts = SCHEDULE.unpack(raw[: SCHEDULE.size])
    if layer != index:
        raise FirmwareError(f"SCHEDULE record {index}: expected layer index {index}, found {layer}")
    if resident > 1 or any(reserved):
        raise FirmwareError(
            f"SCHEDULE record {index}: weights_resident must be 0/1 and reserved bytes zero, "
            f"found {resident} and {reserved.hex()}"
        )
    if rows < 1 or chn < 1:
        raise FirmwareError(
            f"SCHEDULE record {index}: band_rows and group_channels must be >= 1, found {rows} and {chn}"
        )
    return LayerSchedule(layer, rows, chn, bool(resident), act, wts)


def schedule_tiles(net: Network, schedule: Schedule) -> int:
    """Total tiles of a schedule: ceil(H_out / band) * ceil(C_out / group) per chip layer."""
    total = 0
    for ls in schedule.layers:
        ho, _, co = net.layers[ls.layer].out_shape
        total += -(-ho // max(ls.band_rows, 1)) * -(-co // max(ls.group_channels, 1))
    return total
