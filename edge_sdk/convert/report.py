"""The conversion report: per layer what runs where and why, bits, bytes, SQNR and SRAM use.

Memory is bits x count (docs/datasheet.md section 5): codes at the layer's
width, per-kernel scalars and biases at the profile's widths.  SQNR is measured
against the float model on calibration images (``sqnr.py``); SRAM occupancy is
the tiling schedule's peak per layer.  ``table()`` renders text, ``to_json()``
JSON, ``plot(path)`` a PNG when matplotlib is importable.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Optional

from ..network import Network
from ..tiling import layer_tiles
from .partition import Placement
from .plan_types import Plan


@dataclass
class LayerRow:
    index: int
    name: str
    op: str
    target: str
    why: str
    source_ops: list[str]
    out_shape: list[int]
    weight_bits: int
    weight_count: int
    code_bytes: float
    scalar_bytes: float
    bias_bytes: float
    sqnr_db: Optional[float]
    act_sram_bits: int = 0
    act_sram_pct: float = 0.0
    weight_sram_bits: int = 0
    weight_sram_pct: float = 0.0
    tiles: int = 0

    @property
    def total_bytes(self) -> float:
        return self.code_bytes + self.scalar_bytes + self.bias_bytes


@dataclass
class ConversionReport:
    model: str
    profile: str
    layers: list[LayerRow]
    ops: list[dict[str, str]]  # every float-graph op: where it runs and why
    notes: list[str] = field(default_factory=list)
    calibration: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def weight_bytes(self) -> float:
        return sum(r.total_bytes for r in self.layers)

    def to_dict(self) -> dict[str, Any]:
        rows = []
        for r in self.layers:
            d = asdict(r)
            d["total_bytes"] = r.total_bytes
            d["sqnr_db"] = None if r.sqnr_db is None or not math.isfinite(r.sqnr_db) else round(r.sqnr_db, 3)
            rows.append(d)
        return {
            "model": self.model,
            "profile": self.profile,
            "layers": rows,
            "ops": self.ops,
            "notes": self.notes,
            "calibration": self.calibration,
            "options": self.options,
            "totals": {
                "weight_bytes": self.weight_bytes,
                "chip_layers": sum(r.target == "chip" for r in self.layers),
                "host_layers": sum(r.target == "host" for r in self.layers),
            },
        }

    def to_json(self, indent: int = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False, default=str)

    def table(self) -> str:
        head = [
            "#",
            "layer",
            "op",
            "where",
            "bits",
            "weights",
            "bytes",
            "SQNR dB",
            "act SRAM",
            "w SRAM",
            "tiles",
            "from",
        ]
        rows = [head]
        for r in self.layers:
            sq = "-" if r.sqnr_db is None else ("inf" if not math.isfinite(r.sqnr_db) else f"{r.sqnr_db:.1f}")
            rows.append(
                [
                    str(r.index),
                    r.name,
                    r.op,
                    r.target,
                    str(r.weight_bits or "-"),
                    str(r.weight_count),
                    f"{r.total_bytes:.0f}",
                    sq,
                    f"{r.act_sram_pct:.2f}%" if r.target == "chip" else "-",
                    f"{r.weight_sram_pct:.2f}%" if r.target == "chip" else "-",
                    str(r.tiles or "-"),
                    ",".join(r.source_ops),
                ]
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
        lines = [
            f"{self.model} -> {self.profile}: {sum(r.target == 'chip' for r in self.layers)} chip layers, "
            f"{sum(r.target == 'host' for r in self.layers)} host layers, weights {self.weight_bytes:.0f} bytes"
        ]
        lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
        lines.append("ops (model op -> where, why):")
        lines += [f"  {o['node']:24s} {o['op']:20s} {o['target']:5s} {o['why']}" for o in self.ops]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def plot(self, path: str) -> bool:
        """Save a PNG (bits, bytes and SQNR per chip layer); False if matplotlib is missing."""
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            return False
        chip = [r for r in self.layers if r.target == "chip"]
        fig, axes = plt.subplots(3, 1, figsize=(max(6, len(chip) * 0.6), 7), sharex=True)
        names = [r.name for r in chip]
        axes[0].bar(names, [r.weight_bits for r in chip])
        axes[0].set_ylabel("weight bits")
        axes[1].bar(names, [r.total_bytes for r in chip])
        axes[1].set_ylabel("bytes")
        axes[2].plot(names, [r.sqnr_db if r.sqnr_db is not None else float("nan") for r in chip], "o-")
        axes[2].set_ylabel("SQNR dB")
        axes[2].tick_params(axis="x", rotation=60)
        fig.suptitle(f"{self.model} on {self.profile}")
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return True


def placement_rows(placements: list[Placement], plan: Plan) -> list[dict[str, str]]:
    """Every float-graph op: where it runs, why, and which chip layer carries it."""
    carried = {n: pl.name for pl in plan.layers for n in pl.nodes}
    rows = []
    for p in placements:
        why = p.reason
        layer = carried.get(p.node.name)
        if p.target == "chip" and layer is not None:
            folded = p.node.op == "add" and not layer.startswith("add")
            why = (
                f"folded into {layer}: the shortcut reaches it as extra channels (no add layer)"
                if folded
                else f"{why}; runs as {layer}"
            )
        rows.append({"node": p.node.name, "op": p.node.source, "target": p.target, "why": why})
    return rows


def _why(placements: list[Placement], nodes: list[str]) -> str:
    reasons = {p.node.name: p.reason for p in placements}
    found = [reasons[n] for n in nodes if n in reasons]
    return found[0] if found else ""


def build_report(
    net: Network,
    plan: Plan,
    placements: list[Placement],
    sqnr: dict[str, float],
    model: str,
    notes: list[str],
    calibration: dict,
    options: dict,
) -> ConversionReport:
    p = net.profile
    host_nodes = [h.node for h in plan.host]
    rows = []
    for i, layer in enumerate(net.layers):
        nodes = plan.layers[i].nodes if layer.on_chip else [host_nodes[i - net.n_chip]]
        n = layer.weight_count
        kernels = n // (layer.kernel * layer.kernel) if n else 0
        row = LayerRow(
            i,
            layer.name,
            layer.op,
            "chip" if layer.on_chip else "host",
            _why(placements, nodes),
            nodes,
            list(layer.out_shape),
            layer.weight_bits,
            n if n else (0 if layer.dense_w is None else int(layer.dense_w.size)),
            n * layer.weight_bits / 8,
            kernels * p.scalar_bits / 8 if layer.scalars is not None else 0.0,
            (layer.out_shape[2] * p.bias_bits / 8) if layer.bias is not None else 0.0,
            sqnr.get(layer.name),
        )
        if layer.dense_w is not None:  # host weights stay float32
            row.code_bytes, row.bias_bytes = layer.dense_w.size * 4.0, layer.dense_b.size * 4.0
        if layer.on_chip and net.schedule is not None:
            ls = net.schedule.for_layer(i)
            row.act_sram_bits, row.weight_sram_bits = ls.act_bits, ls.weight_bits
            row.act_sram_pct = 100.0 * ls.act_bits / (p.activation_sram_bytes * 8)
            row.weight_sram_pct = 100.0 * ls.weight_bits / (p.weight_sram_bytes * 8)
            row.tiles = len(layer_tiles(net, i, ls.band_rows, ls.group_channels))
        rows.append(row)
    ops = placement_rows(placements, plan)
    return ConversionReport(model, p.id, rows, ops, list(notes), calibration, options)
