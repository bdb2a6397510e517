"""FirmwareImage: a loaded, fully validated image and its description for `edge-sdk inspect`."""

from __future__ import annotations

import math
from typing import Any

from ..chips import ChipProfile
from ..network import Layer, Network
from ..tiling import LayerSchedule, weight_bits
from .format import SectionInfo


class FirmwareImage:
    """A validated firmware image.

    ``network`` is ready to run (its arrays are views over the image buffer, which
    this object keeps alive); ``sections`` lists the table entries (type, flags,
    offset, length, CRC-32); ``version`` is the image's (major, minor).
    """

    def __init__(
        self,
        network: Network,
        version: tuple[int, int],
        sha256: bytes,
        sections: list[SectionInfo],
        size: int,
        buffer: Any = None,
    ) -> None:
        self.network = network
        self.version = version
        self.sha256 = sha256.hex()
        self.sections = sections
        self.size = size
        self._buffer = buffer  # the bytes or mmap that the arrays view

    @property
    def profile(self) -> ChipProfile:
        return self.network.profile

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.network.input_shape)

    @property
    def metadata(self) -> dict[str, Any]:
        return self.network.metadata

    def __repr__(self) -> str:
        return (
            f"FirmwareImage(v{self.version[0]}.{self.version[1]}, profile={self.profile.id!r}, "
            f"layers={len(self.network.layers)}, size={self.size}, sha256={self.sha256[:16]}...)"
        )

    def describe(self) -> dict[str, Any]:
        """Everything `edge-sdk inspect` shows, as plain JSON-able data."""
        net = self.network
        layers = [_describe_layer(net, i, layer) for i, layer in enumerate(net.layers)]
        return {
            "format_version": f"{self.version[0]}.{self.version[1]}",
            "size": self.size,
            "sha256": self.sha256,
            "profile": _describe_profile(net.profile),
            "input_shape": list(net.input_shape),
            "layers": layers,
            "totals": _totals(net, layers),
            "metadata": _jsonable(net.metadata),
            "sections": [s.to_dict() for s in self.sections],
        }


def _describe_profile(p: ChipProfile) -> dict[str, Any]:
    return {
        "id": p.id,
        "profile_version": p.profile_version,
        "description": p.description,
        "weight_modes": {str(b): m.decode for b, m in sorted(p.weight_modes.items())},
        "activation_bits": p.activation_bits,
        "weight_sram_bytes": p.weight_sram_bytes,
        "activation_sram_bytes": p.activation_sram_bytes,
    }


def _pct(used: int, limit: int) -> float:
    return round(100.0 * used / limit, 2) if limit else 0.0


def _describe_layer(net: Network, i: int, layer: Layer) -> dict[str, Any]:
    entry = layer.summary(i)
    if layer.on_chip:
        entry.update(_chip_memory(net, i, layer, net.schedule.for_layer(i)))
    else:
        params = 0 if layer.dense_w is None else int(layer.dense_w.size + layer.dense_b.size)
        entry.update({"host_params": params, "host_param_bytes": params * 4})
    return entry


def _chip_memory(net: Network, i: int, layer: Layer, ls: LayerSchedule) -> dict[str, Any]:
    """Weight memory (bits x count) and the schedule's SRAM use of one chip layer."""
    p = net.profile
    o = layer.out_shape[2]
    per_kernel = p.weight_scale == "per_kernel"
    n_scalars = 0 if layer.scalars is None else int(layer.scalars.size)
    w_total = weight_bits(net, layer, o)
    tiles = math.ceil(layer.out_shape[0] / ls.band_rows) * math.ceil(o / ls.group_channels)
    return {
        "weight_count": layer.weight_count,
        "weight_memory": {
            "code_bits": layer.weight_count * layer.weight_bits,
            "scalar_bits": n_scalars * p.scalar_bits if per_kernel else 0,
            "bias_bits": (o * p.bias_bits) if layer.op == "conv" else 0,
            "total_bits": w_total,
            "total_bytes": math.ceil(w_total / 8),
        },
        "schedule": {
            "band_rows": ls.band_rows,
            "group_channels": ls.group_channels,
            "tiles": tiles,
            "weights_resident": ls.weights_resident,
            "act_sram_bits": ls.act_bits,
            "act_sram_pct": _pct(ls.act_bits, net.schedule.activation_sram_bits),
            "weight_sram_bits": ls.weight_bits,
            "weight_sram_pct": _pct(ls.weight_bits, net.schedule.weight_sram_bits),
        },
    }


def _totals(net: Network, layers: list[dict[str, Any]]) -> dict[str, Any]:
    chip = [e for e in layers if e["target"] == "chip"]
    host = [e for e in layers if e["target"] == "host"]
    w_bits = sum(e["weight_memory"]["total_bits"] for e in chip)
    return {
        "layers": len(layers),
        "chip_layers": len(chip),
        "host_layers": len(host),
        "weights": sum(e["weight_count"] for e in chip),
        "chip_weight_bits": w_bits,
        "chip_weight_bytes": math.ceil(w_bits / 8),
        "chip_weight_pct_of_sram": _pct(w_bits, net.profile.weight_sram_bytes * 8),
        "host_params": sum(e["host_params"] for e in host),
        "host_param_bytes": sum(e["host_param_bytes"] for e in host),
        "tiles": sum(e["schedule"]["tiles"] for e in chip),
        "peak_act_sram_pct": max((e["schedule"]["act_sram_pct"] for e in chip), default=0.0),
        "peak_weight_sram_pct": max((e["schedule"]["weight_sram_pct"] for e in chip), default=0.0),
    }


def _jsonable(obj: Any) -> Any:
    """Metadata for JSON output: bytes shown as hex strings."""
    if isinstance(obj, bytes):
        return {"hex": obj.hex()}
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return repr(obj)
    return obj
