"""`edge-sdk convert` and `edge-sdk verify` (wired into edge_sdk/cli.py through ``register_cli``).

    edge-sdk convert MODEL.tflite -p lightspeeur-2803 -o OUT.edgefw [--bits 5 | --budget-bits N]
                     [--calib DATA] [--json REPORT.json] [--plot REPORT.png] [--set KEY=VALUE ...]
    edge-sdk verify IMAGE.edgefw --data DATA [--reference MODEL.tflite] [--json]

DATA is a .npz with ``x`` (and ``y``) arrays (``file.npz:key`` for another
array), a folder of images, or one image file; images are resized to the
model's input.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..errors import ConversionError


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _options(args: argparse.Namespace) -> dict[str, Any]:
    opts: dict[str, Any] = {}
    for item in args.set or []:
        if "=" not in item:
            raise ConversionError(f"--set {item!r}: expected KEY=VALUE")
        key, value = item.split("=", 1)
        opts[key.strip().replace("-", "_")] = _value(value)
    if args.bits is not None:
        opts["bits"] = int(args.bits) if args.bits.isdigit() else args.bits
    if args.budget_bits is not None:
        opts["budget_bits"] = args.budget_bits
    for name in ("labels", "name"):
        if getattr(args, name):
            opts[name] = getattr(args, name)
    return opts


def cmd_convert(args: argparse.Namespace) -> int:
    from ..firmware import write_firmware
    from .api import convert_detailed

    result = convert_detailed(
        args.model,
        profile=args.profile,
        calib=args.calib,
        calib_limit=args.calib_limit,
        progress=not args.quiet and sys.stderr.isatty(),
        **_options(args),
    )
    data = write_firmware(result.network)
    Path(args.output).write_bytes(data)
    report = result.report
    if args.json:
        Path(args.json).write_text(report.to_json() + "\n")
    if args.plot and not report.plot(args.plot):
        print("edge-sdk convert: matplotlib is not installed; no plot written", file=sys.stderr)
    if not args.quiet:
        print(report.table())
        print(f"wrote {args.output} ({len(data)} bytes)")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from .verify import verify

    result = verify(
        args.image,
        args.data,
        reference=args.reference,
        backend=args.backend,
        limit=args.limit,
        jump_db=args.jump_db,
    )
    print(json.dumps(result.to_dict(), indent=2) if args.json else result.summary())
    return 0


def register_cli(subparsers: Any) -> None:
    """Add the `convert` and `verify` subcommands."""
    p = subparsers.add_parser(
        "convert",
        help="convert a .tflite model into a firmware image",
        description="Convert a .tflite model for a chip profile; prints the report.",
    )
    p.add_argument("model", help=".tflite model (float32 or int8/uint8)")
    p.add_argument("-p", "--profile", default="lightspeeur-2803", help="chip profile id or profile JSON path")
    p.add_argument("-o", "--output", required=True, help="firmware image to write (.edgefw)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--bits", help="weight bits: N for every layer, or NAME=N,...,default=N")
    group.add_argument("--budget-bits", type=int, help="weight memory budget in bits (picks bits per layer)")
    p.add_argument("--calib", help="calibration images: .npz (x), file.npz:key, folder or image file")
    p.add_argument("--calib-limit", type=int, help="use at most this many calibration images")
    p.add_argument("--labels", help="class labels file (one per line), stored in the image")
    p.add_argument("--name", help="model name stored in the image (default: the file name)")
    p.add_argument("--json", help="write the report as JSON to this file")
    p.add_argument("--plot", help="write a PNG plot of the report (needs matplotlib)")
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="any other conversion option (docs/converter.md), e.g. --set calib_method=mse",
    )
    p.add_argument("--quiet", action="store_true", help="no report, no progress bars")
    p.set_defaults(func=cmd_convert)

    v = subparsers.add_parser(
        "verify",
        help="compare a firmware image with its reference model",
        description="Emulator vs reference on the same inputs: top-1 agreement, accuracy, "
        "per-layer SQNR and the first layer where the error jumps.",
    )
    v.add_argument("image", help="firmware image (.edgefw)")
    v.add_argument("--reference", help="the .tflite the image was converted from")
    v.add_argument("--data", required=True, help=".npz with x [, y], file.npz:key, folder or image file")
    v.add_argument("--limit", type=int, help="use at most this many images")
    v.add_argument("--backend", default="auto", choices=["auto", "emulator", "reference"])
    v.add_argument("--jump-db", type=float, default=6.0, help="SQNR drop that counts as an error jump")
    v.add_argument("--json", action="store_true", help="print JSON")
    v.set_defaults(func=cmd_verify)
