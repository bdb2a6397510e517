"""`edge-sdk inspect IMAGE [--json]`: what a firmware image contains.

Prints the profile, one row per layer (op, chip/host, shapes, weight and
activation bits, weight memory as bits x count, tiles and SRAM occupancy from the
schedule), totals with the host/chip split, the metadata and the SHA-256.  A bad
image gives a one-line error on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any, Optional

from ..errors import FirmwareError
from .reader import load_firmware

EXIT_BAD_IMAGE = 2


def register_cli(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``inspect`` subcommand to an argparse subparsers object."""
    p = subparsers.add_parser(
        "inspect",
        help="show a firmware image's contents",
        description="Validate a firmware image and show its profile, layers, memory use, schedule and metadata.",
    )
    p.add_argument("image", help="path to a .edgefw firmware image")
    p.add_argument("--json", action="store_true", help="print the description as JSON")
    p.set_defaults(func=cmd_inspect)
    return p


def cmd_inspect(args: argparse.Namespace) -> int:
    """Run ``inspect``: 0 on success, 2 for an image that cannot be loaded."""
    try:
        image = load_firmware(args.image)
    except FirmwareError as exc:
        one_line = " ".join(str(exc).split())
        print(f"edge-sdk inspect: {args.image}: invalid firmware image: {one_line}", file=sys.stderr)
        return EXIT_BAD_IMAGE
    desc = image.describe()
    if args.json:
        print(json.dumps(desc, indent=2, sort_keys=False))
    else:
        print(format_description(desc, str(args.image)))
    return 0


def _shape(s: list[int]) -> str:
    return "x".join(str(v) for v in s)


def _layer_row(e: dict[str, Any]) -> list[str]:
    if e["target"] == "chip":
        m, s = e["weight_memory"], e["schedule"]
        weights = "-"
        if e["op"] == "conv":
            weights = (
                f"{m['code_bits']}+{m['scalar_bits']}+{m['bias_bits']} = {m['total_bits']} b "
                f"({m['total_bytes']} B)"
            )
        act = f"{s['act_sram_bits']} b {s['act_sram_pct']:.2f}%"
        wts = f"{s['weight_sram_bits']} b {s['weight_sram_pct']:.2f}%" + (
            " R" if s["weights_resident"] else ""
        )
        tiles = f"{s['tiles']} ({s['band_rows']}r x {s['group_channels']}c)"
    else:
        weights = f"{e['host_params']} f32 ({e['host_param_bytes']} B)" if e["host_params"] else "-"
        act, wts, tiles = "-", "-", "-"
    wbits = str(e["weight_bits"]) if e["weight_bits"] else "-"
    abits = str(e["act_bits"]) if e["act_bits"] else "-"
    return [
        str(e["index"]),
        e["name"],
        e["op"],
        e["target"],
        f"{_shape(e['in_shape'])} -> {_shape(e['out_shape'])}",
        wbits,
        weights,
        abits,
        tiles,
        act,
        wts,
    ]


_HEADINGS = [
    "#",
    "name",
    "op",
    "target",
    "in -> out",
    "w",
    "weight memory (codes+scalars+bias)",
    "a",
    "tiles",
    "act SRAM",
    "weight SRAM",
]


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]


def format_description(d: dict[str, Any], label: str = "") -> str:
    """The human-readable report of FirmwareImage.describe()."""
    p, t = d["profile"], d["totals"]
    lines = [
        f"image      {label}",
        f"format     v{d['format_version']}, {d['size']} bytes, {len(d['sections'])} sections",
        f"sha256     {d['sha256']}",
        f"profile    {p['id']} (v{p['profile_version']}): weight SRAM {p['weight_sram_bytes']} B, activation SRAM "
        f"{p['activation_sram_bytes']} B, {p['activation_bits']}-bit activations",
        f"input      {_shape(d['input_shape'])}",
        "",
    ]
    lines += _table([_HEADINGS] + [_layer_row(e) for e in d["layers"]])
    lines += [
        "",
        f"totals     {t['layers']} layers: {t['chip_layers']} chip, {t['host_layers']} host",
        f"  chip     {t['weights']} weights, {t['chip_weight_bits']} bits = {t['chip_weight_bytes']} bytes "
        f"({t['chip_weight_pct_of_sram']:.2f}% of weight SRAM), {t['tiles']} tiles, peak activation SRAM "
        f"{t['peak_act_sram_pct']:.2f}%, peak weight SRAM {t['peak_weight_sram_pct']:.2f}%",
        f"  host     {t['host_params']} parameters = {t['host_param_bytes']} bytes (float32)",
        "metadata" + ("" if d["metadata"] else "   (none)"),
    ]
    lines += [f"  {key}: {json.dumps(value, ensure_ascii=False)}" for key, value in d["metadata"].items()]
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Direct entry point: ``python3 -m edge_sdk.firmware.cli inspect IMAGE [--json]``."""
    parser = argparse.ArgumentParser(prog="edge-sdk", description="firmware image tools")
    sub = parser.add_subparsers(dest="command", required=True)
    register_cli(sub)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
