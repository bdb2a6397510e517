"""The deterministic image writer: Network -> bytes (docs/firmware-format.md).

The same network always gives the same bytes: sections are laid out in a fixed
order with zero padding, arrays are written little-endian in C order, and the
metadata is canonical msgpack (sorted keys).  The writer validates the network and
its schedule first, so that every image it produces is one the reader accepts.
"""

from __future__ import annotations

import numpy as np

from ..errors import FirmwareError, ProfileError, TilingError
from ..network import Layer, Network
from ..tiling import Schedule, check_schedule, compute_schedule
from .format import (
    ENTRY_SIZE,
    FLAG_HAS_HOST,
    HEADER_SIZE,
    MAGIC,
    MAX_CHIP_CHANNELS,
    MAX_CHIP_LAYERS,
    MAX_DIM,
    MAX_TILES,
    PROFILE_ID_SIZE,
    RECORD_SIZES,
    SCHEDULE_PREAMBLE,
    SHA_OFFSET,
    SHA_SIZE,
    VERSION_MAJOR,
    VERSION_MINOR,
    Header,
    Section,
    SectionInfo,
    align,
    crc32,
    image_sha256,
)
from .metadata import encode_metadata
from .packing import pack_binary, pack_signed
from .records import encode_layer, encode_schedule, schedule_tiles

# Arrays each op stores; any other array attribute must be None (it would be lost).
_ARRAYS = {"conv": ("codes", "scalars", "bias"), "dense": ("dense_w", "dense_b")}
_ALL_ARRAYS = ("codes", "scalars", "bias", "dense_w", "dense_b")


class _Blob:
    """An append-only section payload that hands out (offset, length) references."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0

    def add(self, data: bytes) -> tuple[int, int]:
        if not data:
            return (0, 0)
        ref = (self.size, len(data))
        self.parts.append(data)
        self.size += len(data)
        return ref

    def bytes(self) -> bytes:
        return b"".join(self.parts)


def _le(arr: np.ndarray, dtype: str) -> bytes:
    """C-order little-endian bytes of an array (bit patterns kept, e.g. NaN payloads)."""
    return np.ascontiguousarray(arr).astype(dtype, copy=False).tobytes()


def _pack_codes(net: Network, layer: Layer) -> bytes:
    mode = net.profile.mode(layer.weight_bits)
    if mode.decode == "binary":
        return pack_binary(layer.codes, mode.bits)
    return pack_signed(layer.codes, mode.bits)


def _check_arrays(index: int, layer: Layer) -> None:
    stored = _ARRAYS.get(layer.op, ())
    for attr in _ALL_ARRAYS:
        if attr not in stored and getattr(layer, attr) is not None:
            raise FirmwareError(
                f"layer {index} ({layer.name!r}): a {layer.op} layer's {attr} is not stored by "
                f"the format (expected None, found an array)"
            )


def _layer_sections(net: Network) -> dict[Section, bytes]:
    """LAYERS, WEIGHTS, SCALARS, BIAS, HOST and STRINGS payloads."""
    blobs = {kind: _Blob() for kind in ("name", "weights", "scalars", "bias", "host")}
    records = []
    for i, layer in enumerate(net.layers):
        _check_arrays(i, layer)
        refs = {"name": blobs["name"].add(str(layer.name).encode("utf-8"))}
        is_conv = layer.op == "conv"
        refs["weights"] = blobs["weights"].add(_pack_codes(net, layer) if is_conv else b"")
        scalars = _le(layer.scalars, "<i2") if is_conv and layer.scalars is not None else b""
        refs["scalars"] = blobs["scalars"].add(scalars)
        refs["bias"] = blobs["bias"].add(_le(layer.bias, "<i4") if is_conv else b"")
        host = _le(layer.dense_w, "<f4") + _le(layer.dense_b, "<f4") if layer.op == "dense" else b""
        refs["host"] = blobs["host"].add(host)
        records.append(encode_layer(i, layer, refs))
    return {
        Section.LAYERS: b"".join(records),
        Section.WEIGHTS: blobs["weights"].bytes(),
        Section.SCALARS: blobs["scalars"].bytes(),
        Section.BIAS: blobs["bias"].bytes(),
        Section.HOST: blobs["host"].bytes(),
        Section.STRINGS: blobs["name"].bytes(),
    }


def _schedule(net: Network) -> Schedule:
    """The network's schedule (computed if absent), checked as the reader will check it."""
    try:
        schedule = net.schedule if net.schedule is not None else compute_schedule(net)
        problems = check_schedule(net, schedule)
    except (TilingError, ProfileError) as exc:
        raise FirmwareError(f"cannot schedule the network: {exc}") from exc
    p = net.profile
    limits = (p.activation_sram_bytes * 8, p.weight_sram_bytes * 8)
    if (schedule.activation_sram_bits, schedule.weight_sram_bits) != limits:
        problems.append(
            f"schedule SRAM limits {schedule.activation_sram_bits}/{schedule.weight_sram_bits} bits "
            f"differ from the profile's {limits[0]}/{limits[1]}"
        )
    if net.n_chip > MAX_CHIP_LAYERS:
        problems.append(f"{net.n_chip} chip layers exceed the format's limit of {MAX_CHIP_LAYERS}")
    channels = sum(layer.out_shape[2] for layer in net.chip_layers)
    if channels > MAX_CHIP_CHANNELS:
        problems.append(
            f"chip layers have {channels} output channels in all, the format's limit is {MAX_CHIP_CHANNELS}"
        )
    tiles = schedule_tiles(net, schedule) if not problems else 0  # records are only indexable once checked
    if tiles > MAX_TILES:
        problems.append(f"{tiles} tiles exceed the format's limit of {MAX_TILES}")
    if problems:
        raise FirmwareError("the network's schedule is not valid: " + "; ".join(problems))
    return schedule


def _schedule_section(net: Network, schedule: Schedule) -> bytes:
    limits = (schedule.activation_sram_bits, schedule.weight_sram_bits)
    if not all(0 <= v < 1 << 64 for v in limits):
        raise FirmwareError(
            f"SRAM sizes of {limits[0]} / {limits[1]} bits do not fit the format's u64 fields"
        )
    pre = SCHEDULE_PREAMBLE.pack(*limits)
    return pre + b"".join(encode_schedule(ls) for ls in schedule.layers)


def _header(net: Network, flags: int, n_sections: int, total: int) -> Header:
    pid = net.profile.id.encode("utf-8")
    if not 1 <= len(pid) <= PROFILE_ID_SIZE or not all(0x20 <= ch < 0x7F for ch in pid):
        raise FirmwareError(
            f"profile id must be 1..{PROFILE_ID_SIZE} printable ASCII characters, found {net.profile.id!r}"
        )
    return Header(
        MAGIC,
        VERSION_MAJOR,
        VERSION_MINOR,
        HEADER_SIZE,
        total,
        flags,
        n_sections,
        ENTRY_SIZE,
        len(net.layers),
        tuple(int(v) for v in net.input_shape),
        bytes(18),
        pid.ljust(PROFILE_ID_SIZE, b"\0"),
        bytes(SHA_SIZE),
    )


def _assemble(net: Network, payloads: dict[Section, bytes], flags: int) -> bytes:
    table_end = HEADER_SIZE + len(payloads) * ENTRY_SIZE
    entries, offset = [], align(table_end)
    for kind in sorted(payloads):
        data = payloads[kind]
        entries.append(SectionInfo(int(kind), 0, crc32(data), offset, len(data), RECORD_SIZES[kind]))
        offset = align(offset + len(data))
    image = bytearray(offset)
    image[:HEADER_SIZE] = _header(net, flags, len(entries), offset).pack()
    image[HEADER_SIZE:table_end] = b"".join(e.pack() for e in entries)
    for e in entries:
        image[e.offset : e.offset + e.length] = payloads[Section(e.type)]
    image[SHA_OFFSET : SHA_OFFSET + SHA_SIZE] = image_sha256(image)
    return bytes(image)


def write_firmware(network: Network) -> bytes:
    """Encode a validated network (with its schedule, computed if missing) as a v1.0 image."""
    if not isinstance(network, Network):
        raise FirmwareError(f"write_firmware expects a Network, found {type(network).__name__}")
    try:
        network.validate()
    except ProfileError as exc:
        raise FirmwareError(f"the network is not valid for its profile: {exc}") from exc
    if max(network.input_shape) > MAX_DIM:
        raise FirmwareError(f"input shape dimensions must be at most {MAX_DIM}, found {network.input_shape}")
    schedule = _schedule(network)
    payloads = _layer_sections(network)
    payloads[Section.PROFILE] = network.profile.to_json().encode("ascii")
    payloads[Section.SCHEDULE] = _schedule_section(network, schedule)
    payloads[Section.METADATA] = encode_metadata(network.metadata)
    flags = FLAG_HAS_HOST if network.n_chip < len(network.layers) else 0
    return _assemble(network, payloads, flags)
