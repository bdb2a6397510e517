"""Chip profiles: the data that pins down what an accelerator computes.

Profiles are JSON files in ``edge_sdk/chips/profiles/`` (data, not code).  A profile
fixes the ops, the weight modes and how their codes decode, the activation width,
the rounding of the requantizer, the accumulator width and the SRAM sizes.  The
meaning of every field is in docs/datasheet.md.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import ProfileError

PROFILE_DIR = Path(__file__).with_name("profiles")
ROUNDINGS = ("half_away_from_zero", "floor")
DECODES = ("binary", "linear", "pow2")
INPUT_CONVERSIONS = ("round_shift", "identity")


@dataclass(frozen=True)
class WeightMode:
    """How the b-bit weight codes of one mode decode to integer weight levels."""

    bits: int
    decode: str  # binary: field 0/1 -> -1/+1; linear: code; pow2: sign(c)*2^(|c|-1)
    min: int
    max: int

    def level(self, code: int) -> int:
        """Integer level of a signed code (before the per-kernel scalar)."""
        if self.decode == "pow2" and code != 0:
            return (1 if code > 0 else -1) << (abs(code) - 1)
        return code

    @property
    def max_level(self) -> int:
        return max(abs(self.level(self.min)), abs(self.level(self.max)))


@dataclass(frozen=True)
class ChipProfile:
    id: str
    profile_version: int
    description: str
    ops: tuple[str, ...]
    kernels: tuple[int, ...]
    strides: tuple[int, ...]
    groups: str  # "none" | "depthwise" | "any"
    max_pad: int
    max_feature_size: int
    channels_min: int
    channels_max: int
    layer_budget: tuple[int, int]
    weight_scale: str  # "per_kernel" | "per_layer"
    scalar_bits: int
    weight_int_max: int
    weight_modes: Mapping[int, WeightMode]
    shift_min: int
    shift_max: int
    bias_bits: int
    multiplier_bits: int
    activation_bits: int
    input_bits: int
    input_channels: tuple[int, ...]
    input_conversion: str
    input_shift: int
    accumulator_bits: int
    rounding: str
    weight_sram_bytes: int
    activation_sram_bytes: int
    feature_sizes: tuple[int, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def act_max(self) -> int:
        return (1 << self.activation_bits) - 1

    @property
    def max_layers(self) -> int:
        return self.layer_budget[0] * self.layer_budget[1]

    def mode(self, bits: int) -> WeightMode:
        try:
            return self.weight_modes[bits]
        except KeyError:
            raise ProfileError(
                f"profile {self.id!r} has no {bits}-bit weight mode (has {sorted(self.weight_modes)})"
            ) from None

    def with_sram(
        self, *, weight_bytes: int | None = None, activation_bytes: int | None = None
    ) -> ChipProfile:
        """A copy with other SRAM sizes (the sizes are configurable per chip variant)."""
        raw = json.loads(json.dumps(self.raw))
        if weight_bytes is not None:
            raw["sram"]["weight_bytes"] = int(weight_bytes)
        if activation_bytes is not None:
            raw["sram"]["activation_bytes"] = int(activation_bytes)
        return profile_from_dict(raw)

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, no spaces): what a firmware image embeds."""
        return json.dumps(self.raw, sort_keys=True, separators=(",", ":"))


def _need(d: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    if key not in d:
        raise ProfileError(f"profile {where}: missing field {key!r}")
    value = d[key]
    if kind is int and isinstance(value, bool) or not isinstance(value, kind):
        raise ProfileError(
            f"profile {where}: field {key!r} must be {kind.__name__}, found {type(value).__name__}"
        )
    return value


def _modes(d: Mapping[str, Any], where: str) -> dict[int, WeightMode]:
    modes = {}
    for key, spec in _need(d, "weight_modes", dict, where).items():
        if not str(key).isdigit() or not 1 <= int(key) <= 8:
            raise ProfileError(f"profile {where}: weight mode key must be a bit width 1..8, found {key!r}")
        mode = WeightMode(
            int(key),
            _need(spec, "decode", str, where),
            _need(spec, "min", int, where),
            _need(spec, "max", int, where),
        )
        if mode.decode not in DECODES:
            raise ProfileError(f"profile {where}: decode must be one of {DECODES}, found {mode.decode!r}")
        lo = 0 if mode.decode == "binary" else -(1 << (mode.bits - 1))
        hi = 1 if mode.decode == "binary" else (1 << (mode.bits - 1)) - 1
        if mode.decode != "binary" and not (lo <= mode.min <= 0 <= mode.max <= hi):
            raise ProfileError(
                f"profile {where}: {key}-bit code range {mode.min}..{mode.max} exceeds {lo}..{hi}"
            )
        modes[mode.bits] = mode
    return modes


def profile_from_dict(d: Mapping[str, Any]) -> ChipProfile:
    """Validate a profile mapping (as parsed from JSON) and build a ChipProfile."""
    if not isinstance(d, Mapping):
        raise ProfileError(f"profile must be a JSON object, found {type(d).__name__}")
    where = repr(d.get("id", "?"))
    sram = _need(d, "sram", dict, where)
    inp = _need(d, "input", dict, where)
    channels = _need(d, "channels", dict, where)
    budget = _need(d, "layer_budget", dict, where)
    shift = _need(d, "shift_range", list, where)
    p = ChipProfile(
        id=_need(d, "id", str, where),
        profile_version=_need(d, "profile_version", int, where),
        description=_need(d, "description", str, where),
        ops=tuple(_need(d, "ops", list, where)),
        kernels=tuple(_need(d, "kernels", list, where)),
        strides=tuple(_need(d, "strides", list, where)),
        groups=_need(d, "groups", str, where),
        max_pad=_need(d, "max_pad", int, where),
        max_feature_size=_need(d, "max_feature_size", int, where),
        channels_min=_need(channels, "min", int, where),
        channels_max=_need(channels, "max", int, where),
        layer_budget=(_need(budget, "major", int, where), _need(budget, "sub", int, where)),
        weight_scale=_need(d, "weight_scale", str, where),
        scalar_bits=_need(d, "scalar_bits", int, where),
        weight_int_max=_need(d, "weight_int_max", int, where),
        weight_modes=_modes(d, where),
        shift_min=int(shift[0]) if len(shift) == 2 else -1,
        shift_max=int(shift[1]) if len(shift) == 2 else -1,
        bias_bits=_need(d, "bias_bits", int, where),
        multiplier_bits=_need(d, "multiplier_bits", int, where),
        activation_bits=_need(d, "activation_bits", int, where),
        input_bits=_need(inp, "bits", int, where),
        input_channels=tuple(_need(inp, "channels", list, where)),
        input_conversion=_need(inp, "conversion", str, where),
        input_shift=_need(inp, "shift", int, where),
        accumulator_bits=_need(d, "accumulator_bits", int, where),
        rounding=_need(d, "rounding", str, where),
        weight_sram_bytes=_need(sram, "weight_bytes", int, where),
        activation_sram_bytes=_need(sram, "activation_bytes", int, where),
        feature_sizes=tuple(d.get("feature_sizes", ())),
        raw=json.loads(json.dumps(d)),
    )
    _check_ranges(p, where)
    return p


def _check_ranges(p: ChipProfile, where: str) -> None:
    checks = [
        (p.rounding in ROUNDINGS, f"rounding must be one of {ROUNDINGS}, found {p.rounding!r}"),
        (p.input_conversion in INPUT_CONVERSIONS, f"input conversion must be one of {INPUT_CONVERSIONS}"),
        (
            p.weight_scale in ("per_kernel", "per_layer"),
            f"weight_scale must be per_kernel|per_layer, found {p.weight_scale!r}",
        ),
        (p.groups in ("none", "depthwise", "any"), f"groups must be none|depthwise|any, found {p.groups!r}"),
        (
            0 <= p.shift_min <= p.shift_max <= 24,
            f"shift_range must be [lo, hi] within 0..24, found {p.shift_min}..{p.shift_max}",
        ),
        (1 <= p.activation_bits <= 8, f"activation_bits must be 1..8, found {p.activation_bits}"),
        (p.input_bits == 8, f"input bits must be 8, found {p.input_bits}"),
        (p.accumulator_bits == 32, f"accumulator_bits must be 32, found {p.accumulator_bits}"),
        (
            2 <= p.bias_bits <= 32 and 2 <= p.multiplier_bits <= 16,
            "bias_bits must be 2..32, multiplier_bits 2..16",
        ),
        (1 <= p.weight_int_max <= 32767, f"weight_int_max must be 1..32767, found {p.weight_int_max}"),
        (p.weight_sram_bytes > 0 and p.activation_sram_bytes > 0, "SRAM sizes must be positive"),
        (
            set(p.kernels) <= {1, 3} and set(p.strides) <= {1, 2},
            "kernels must be within {1,3}, strides within {1,2}",
        ),
        (
            set(p.ops) <= {"conv", "maxpool", "add"},
            f"unknown chip ops {sorted(set(p.ops) - {'conv', 'maxpool', 'add'})}",
        ),
        (p.weight_scale == "per_layer" or p.scalar_bits >= 2, "per_kernel scaling needs scalar_bits >= 2"),
    ]
    for ok, message in checks:
        if not ok:
            raise ProfileError(f"profile {where}: {message}")
    for mode in p.weight_modes.values():
        if p.weight_scale == "per_layer" and mode.max_level > p.weight_int_max:
            raise ProfileError(
                f"profile {where}: {mode.bits}-bit levels exceed weight_int_max {p.weight_int_max}"
            )


def list_profiles() -> list[str]:
    """Ids of the profiles shipped with edge_sdk."""
    return sorted(path.stem for path in PROFILE_DIR.glob("*.json"))


def load_profile(name_or_path: str | Path | ChipProfile) -> ChipProfile:
    """Load a shipped profile by id (``"nqe-1mb"``) or a profile JSON file by path."""
    if isinstance(name_or_path, ChipProfile):
        return name_or_path
    path = Path(name_or_path)
    if not path.suffix == ".json":
        path = PROFILE_DIR / f"{name_or_path}.json"
        if not path.is_file():
            raise ProfileError(
                f"unknown chip profile {str(name_or_path)!r}; shipped profiles: {list_profiles()}"
            )
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ProfileError(f"cannot read profile {path}: {exc}") from exc
    return profile_from_dict(data)


def profile_from_json(text: str) -> ChipProfile:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProfileError(f"embedded profile is not valid JSON: {exc}") from exc
    return profile_from_dict(data)


__all__ = [
    "ChipProfile",
    "WeightMode",
    "list_profiles",
    "load_profile",
    "profile_from_dict",
    "profile_from_json",
    "replace",
]
