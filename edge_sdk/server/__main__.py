"""``python -m edge_sdk.server <serve|query|frames|credentials> ...`` (same as ``edge-sdk``)."""

from __future__ import annotations

import argparse
import sys

from .cli import register_cli


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edge_sdk.server")
    register_cli(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
