"""Section payloads -> Network: step 5 and 6 of docs/firmware-format.md section 6.

Arrays are numpy views over the image buffer (for a path, the mmap), except the
weight codes, which are unpacked from their bit stream into the int8 arrays that
``Layer.codes`` holds.  Every length is compared with the shapes it must match
before any view is taken or any array allocated.
"""

from __future__ import annotations

import json
import math

import numpy as np

from ..chips import ChipProfile, profile_from_dict
from ..errors import FirmwareError, ProfileError, TilingError
from ..network import Layer, Network
from ..tiling import Schedule, check_schedule
from .container import Container
from .format import FLAG_HAS_HOST, MAX_CHIP_CHANNELS, MAX_CHIP_LAYERS, MAX_TILES, SCHEDULE_PREAMBLE, Section
from .metadata import decode_metadata
from .packing import packed_size, pad_bits_clear, unpack_binary, unpack_signed
from .records import REF_KINDS, decode_layer, decode_schedule, schedule_tiles

_REF_SECTIONS = {
    "name": Section.STRINGS,
    "weights": Section.WEIGHTS,
    "scalars": Section.SCALARS,
    "bias": Section.BIAS,
    "host": Section.HOST,
}


def _payload(buf: memoryview, c: Container, kind: Section) -> memoryview:
    e = c.known[kind]
    return buf[e.offset : e.offset + e.length]


def decode_profile(data: memoryview, header_id: str) -> ChipProfile:
    raw = bytes(data)
    try:
        parsed = json.loads(raw.decode("ascii"))
        profile = profile_from_dict(parsed)
    except ProfileError as exc:
        raise FirmwareError(f"PROFILE: invalid chip profile: {exc}") from None
    except Exception as exc:  # JSON/Unicode errors, deep nesting, wrong value types inside the profile
        raise FirmwareError(
            f"PROFILE: expected the profile's canonical JSON, found unreadable data "
            f"({type(exc).__name__}: {exc})"
        ) from None
    canonical = profile.to_json().encode("ascii")
    if canonical != raw:
        raise FirmwareError(
            f"PROFILE: not canonical JSON (expected {len(canonical)} bytes of sorted, "
            f"space-free JSON, found {len(raw)} bytes that differ)"
        )
    if profile.id != header_id:
        raise FirmwareError(f"PROFILE: id {profile.id!r} differs from the header's profile_id {header_id!r}")
    return profile


def _expected_lengths(index: int, profile: ChipProfile, layer: Layer) -> dict[str, int]:
    """Byte length of each data reference a layer must have (0 = absent)."""
    want = dict.fromkeys(REF_KINDS, 0)
    if layer.op == "conv":
        o, c, k = layer.out_shape[2], layer.in_shape[2] // layer.groups, layer.kernel
        if layer.weight_bits not in profile.weight_modes:
            raise FirmwareError(
                f"LAYERS record {index} ({layer.name!r}): weight_bits {layer.weight_bits} is not a weight mode of "
                f"profile {profile.id!r} (has {sorted(profile.weight_modes)})"
            )
        want["weights"] = packed_size(o * c * k * k, layer.weight_bits)
        want["scalars"] = o * c * 2 if profile.weight_scale == "per_kernel" else 0
        want["bias"] = o * 4
    elif layer.op == "dense":
        n, k = layer.out_shape[2], math.prod(layer.in_shape)
        want["host"] = (n * k + n) * 4
    return want


class _Cursors:
    """Where the next array of each kind must start; checks every reference against it."""

    def __init__(self, sizes: dict[str, int]) -> None:
        self.sizes = sizes
        self.at = dict.fromkeys(sizes, 0)

    def take(self, index: int, kind: str, ref: tuple[int, int], length: int) -> int:
        start = self.at[kind]
        want = (start, length) if length else (0, 0)
        if ref != want:
            raise FirmwareError(
                f"LAYERS record {index}: {kind} reference (offset, length) expected {want}, found {ref}"
            )
        if start + length > self.sizes[kind]:
            raise FirmwareError(
                f"LAYERS record {index}: {kind} data {start}..{start + length} runs past the "
                f"{_REF_SECTIONS[kind].name} section ({self.sizes[kind]} bytes)"
            )
        self.at[kind] = start + length
        return start

    def check_consumed(self) -> None:
        for kind, size in self.sizes.items():
            if self.at[kind] != size:
                raise FirmwareError(
                    f"section {_REF_SECTIONS[kind].name}: layers use {self.at[kind]} bytes, the "
                    f"section has {size}"
                )


def _codes(index: int, layer: Layer, profile: ChipProfile, data: memoryview) -> np.ndarray:
    mode = profile.mode(layer.weight_bits)
    shape = (layer.out_shape[2], layer.in_shape[2] // layer.groups, layer.kernel, layer.kernel)
    count = math.prod(shape)
    where = f"LAYERS record {index} ({layer.name!r}) weights"
    if not pad_bits_clear(data, mode.bits, count):
        raise FirmwareError(f"{where}: the pad bits after the last code must be zero")
    try:
        codes = (
            unpack_binary(data, mode.bits, count)
            if mode.decode == "binary"
            else unpack_signed(data, mode.bits, count)
        )
    except FirmwareError as exc:
        raise FirmwareError(f"{where}: {exc}") from None
    if mode.decode != "binary" and count and (codes.min() < mode.min or codes.max() > mode.max):
        bad = np.flatnonzero((codes < mode.min) | (codes > mode.max))[0]
        raise FirmwareError(
            f"{where}: {mode.bits}-bit {mode.decode} code {int(codes[bad])} at index {bad} is "
            f"outside the mode's {mode.min}..{mode.max}"
        )
    return codes.reshape(shape)


def _view(data: memoryview, start: int, count: int, dtype: str, shape: tuple) -> np.ndarray:
    arr = np.frombuffer(data, dtype=dtype, count=count, offset=start).reshape(shape)
    return arr if arr.dtype.isnative else arr.astype(arr.dtype.newbyteorder("="))


def decode_layers(buf: memoryview, c: Container, profile: ChipProfile) -> list[Layer]:
    e = c.known[Section.LAYERS]
    count = e.length // e.record_size
    if count != c.header.layer_count:
        raise FirmwareError(
            f"LAYERS: header layer_count is {c.header.layer_count}, the section holds {count} records"
        )
    data = {kind: _payload(buf, c, sec) for kind, sec in _REF_SECTIONS.items()}
    cursors = _Cursors({kind: len(view) for kind, view in data.items()})
    layers = []
    for i in range(count):
        at = e.offset + i * e.record_size
        rec = decode_layer(i, bytes(buf[at : at + e.record_size]))
        layer = rec.layer
        name_len = rec.refs["name"][1]  # the one length the shapes do not determine
        start = cursors.take(i, "name", rec.refs["name"], name_len)
        try:
            layer.name = bytes(data["name"][start : start + name_len]).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FirmwareError(f"LAYERS record {i}: name is not valid UTF-8 ({exc.reason})") from None
        want = _expected_lengths(i, profile, layer)
        starts = {kind: cursors.take(i, kind, rec.refs[kind], want[kind]) for kind in REF_KINDS[1:]}
        _attach_arrays(i, layer, profile, data, starts, want)
        layers.append(layer)
    cursors.check_consumed()
    return layers


def _attach_arrays(i: int, layer: Layer, profile: ChipProfile, data: dict, starts: dict, want: dict) -> None:
    if layer.op == "conv":
        w0 = starts["weights"]
        layer.codes = _codes(i, layer, profile, data["weights"][w0 : w0 + want["weights"]])
        o, c = layer.out_shape[2], layer.in_shape[2] // layer.groups
        if want["scalars"]:
            layer.scalars = _view(data["scalars"], starts["scalars"], o * c, "<i2", (o, c))
        layer.bias = _view(data["bias"], starts["bias"], o, "<i4", (o,))
    elif layer.op == "dense":
        n, k = layer.out_shape[2], math.prod(layer.in_shape)
        layer.dense_w = _view(data["host"], starts["host"], n * k, "<f4", (n, k))
        layer.dense_b = _view(data["host"], starts["host"] + n * k * 4, n, "<f4", (n,))


def decode_schedule_section(buf: memoryview, c: Container, profile: ChipProfile, n_chip: int) -> Schedule:
    e = c.known[Section.SCHEDULE]
    act_limit, w_limit = SCHEDULE_PREAMBLE.unpack(bytes(buf[e.offset : e.offset + SCHEDULE_PREAMBLE.size]))
    want = (profile.activation_sram_bytes * 8, profile.weight_sram_bytes * 8)
    if (act_limit, w_limit) != want:
        raise FirmwareError(
            f"SCHEDULE: SRAM limits expected {want[0]} activation / {want[1]} weight bits (the "
            f"profile's), found {act_limit} / {w_limit}"
        )
    count = (e.length - SCHEDULE_PREAMBLE.size) // e.record_size
    if count != n_chip:
        raise FirmwareError(f"SCHEDULE: expected one record per chip layer ({n_chip}), found {count}")
    base = e.offset + SCHEDULE_PREAMBLE.size
    records = tuple(
        decode_schedule(j, bytes(buf[base + j * e.record_size : base + (j + 1) * e.record_size]))
        for j in range(count)
    )
    return Schedule(records, act_limit, w_limit)


def decode_network(buf: memoryview, c: Container) -> Network:
    """Build and fully validate the Network an image describes."""
    profile = decode_profile(_payload(buf, c, Section.PROFILE), c.profile_id)
    layers = decode_layers(buf, c, profile)
    n_chip = sum(layer.on_chip for layer in layers)
    if n_chip > MAX_CHIP_LAYERS:
        raise FirmwareError(f"LAYERS: {n_chip} chip layers exceed the format's limit of {MAX_CHIP_LAYERS}")
    channels = sum(layer.out_shape[2] for layer in layers if layer.on_chip)
    if channels > MAX_CHIP_CHANNELS:
        raise FirmwareError(
            f"LAYERS: chip layers have {channels} output channels in all, the format's limit is {MAX_CHIP_CHANNELS}"
        )
    if bool(c.header.flags & FLAG_HAS_HOST) != (n_chip < len(layers)):
        raise FirmwareError(
            f"header flag HAS_HOST is {bool(c.header.flags & FLAG_HAS_HOST)}, but the image has "
            f"{len(layers) - n_chip} host layers"
        )
    schedule = decode_schedule_section(buf, c, profile, n_chip)
    metadata = decode_metadata(_payload(buf, c, Section.METADATA))
    net = Network(profile, tuple(c.header.input_shape), layers, metadata, schedule)
    try:
        net.validate()
    except (ProfileError, ValueError) as exc:
        raise FirmwareError(f"the stored network is not valid for profile {profile.id!r}: {exc}") from None
    tiles = schedule_tiles(net, schedule)
    if tiles > MAX_TILES:
        raise FirmwareError(f"SCHEDULE: {tiles} tiles exceed the format's limit of {MAX_TILES}")
    try:
        problems = check_schedule(net, schedule)
    except (TilingError, ValueError) as exc:
        problems = [str(exc)]
    if problems:
        raise FirmwareError("SCHEDULE does not match the network: " + "; ".join(problems))
    return net
