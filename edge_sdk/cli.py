"""`edge-sdk`: a thin command line over the library (each subcommand lives with its module).

edge-sdk inspect IMAGE [--json]         firmware image contents (edge_sdk.firmware.cli)
edge-sdk run IMAGE FRAME...             run images through the device
edge-sdk profiles                       the shipped chip profiles
edge-sdk convert / verify               the converter (edge_sdk.convert.cli)
edge-sdk serve / query / frames         the server (edge_sdk.server.cli)
edge-sdk camera                         the camera demo app (edge_sdk.camera.cli)
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from typing import Optional

from .errors import EdgeSDKError

# Modules that add subcommands; one that cannot be imported (an extra not installed)
# only loses its own subcommands.
_PLUGINS = (
    "edge_sdk.firmware.cli",
    "edge_sdk.convert.cli",
    "edge_sdk.server.cli",
    "edge_sdk.camera.cli",
    "edge_sdk.retrieval.cli",
    "edge_sdk.codec.cli",
)


def _cmd_profiles(args: argparse.Namespace) -> int:
    from .chips import list_profiles, load_profile

    rows = [load_profile(p) for p in list_profiles()]
    if args.json:
        print(json.dumps([p.raw for p in rows], indent=2))
        return 0
    for p in rows:
        modes = "/".join(str(b) for b in sorted(p.weight_modes))
        print(
            f"{p.id:18s} weights {modes}-bit, activations {p.activation_bits}-bit, "
            f"SRAM {p.weight_sram_bytes} B weights + {p.activation_sram_bytes} B activations"
        )
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from .demo import load_frame, summarize
    from .firmware import load_firmware
    from .runtime import Device

    image = load_firmware(args.image)
    dev = Device(args.backend).load(image)
    for path in args.frames:
        # the model's input size; the Device applies the image's input prep (padding, dithering)
        frame = load_frame(path, dev.model_input_shape)
        print(f"{path}: {summarize(image, dev.run(frame))}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edge-sdk", description="edge_sdk: low-bit CNN accelerator toolkit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser("profiles", help="list the shipped chip profiles")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_profiles)
    p = sub.add_parser("run", help="run image files through a firmware image on the device")
    p.add_argument("image", help="firmware image (.edgefw)")
    p.add_argument("frames", nargs="+", help="image files (resized to the model's input)")
    p.add_argument("--backend", default="auto", choices=["auto", "emulator", "reference"])
    p.set_defaults(func=_cmd_run)
    for name in _PLUGINS:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        register = getattr(module, "register_cli", None)
        if register is not None:
            register(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except EdgeSDKError as exc:
        print(f"edge-sdk {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"edge-sdk {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `edge-sdk inspect IMAGE | head`: the reader left, nothing to report
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
