"""``edge-sdk camera`` (and examples/camera_demo.py): run the camera app from the command line.

Exit status: 0 done (everything acknowledged when a server was given), 2 bad input
(missing file, camera or firmware), 3 server unreachable or not everything acknowledged
in time (the rest stays spooled for the next run), 4 credentials refused.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Optional

from ..errors import AuthError, EdgeSDKError
from .app import MODES, AppConfig, CameraApp, ClientSink, LocalSink
from .engine import load_engine
from .sources import open_source
from .status import LiveStatus

EXIT_INPUT, EXIT_SERVER, EXIT_AUTH = 2, 3, 4


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--source", default="synthetic", help="image, folder, video file, 'synthetic[:WxH]' or 'picamera[:N]'"
    )
    p.add_argument("--mode", choices=MODES, default="retrieve")
    p.add_argument(
        "--frames", type=int, default=None, help="stop after N frames (default: until the source ends)"
    )
    p.add_argument("--loop", action="store_true", help="repeat file sources until --frames")
    p.add_argument(
        "--firmware", help="firmware image (.edgefw); without it the 'pixels' stand-in runs (not a network)"
    )
    p.add_argument("--server", help="HOST:PORT of `edge-sdk serve`; without it results stay local")
    p.add_argument("--credentials", help="this device's credentials file (needed with --server)")
    p.add_argument("--tls-ca", help="CA certificate to verify a TLS server with (enables TLS)")
    p.add_argument("--spool", help="spool directory (default ~/.cache/edge_sdk/spool/<device>)")
    p.add_argument("--descriptor", choices=["f16", "i8", "bin", "f32"], default="f16")
    p.add_argument("--thumbnail", type=int, default=48, help="thumbnail side sent with descriptors (0: none)")
    p.add_argument("--patch", type=int, default=32, help="patch side in compress mode")
    p.add_argument(
        "--codec",
        choices=["baseline", "learned", "raw"],
        default="baseline",
        help="compress mode: 'baseline' (non-learned bit-plane latents), 'learned' (the nqe-1mb encoder "
        "firmware, binary latents; see --codec-channels) or 'raw' pixels",
    )
    p.add_argument(
        "--codec-channels",
        type=int,
        default=16,
        help="learned codec: latent channels per 4x4 position (8/16/32/64 = 0.125/0.25/0.5/1 bpp raw)",
    )
    p.add_argument(
        "--max-side", type=int, default=640, help="compress mode: downscale frames to this longer side"
    )
    p.add_argument("--connect-timeout", type=float, default=10.0)
    p.add_argument(
        "--flush-timeout", type=float, default=60.0, help="how long to wait for the last acks at the end"
    )
    p.add_argument("--report", help="write the final report as JSON here")
    p.add_argument("--no-progress", action="store_true")


def register_cli(subparsers) -> None:
    p = subparsers.add_parser("camera", help="capture, run the chip, send results to a server")
    add_arguments(p)
    p.set_defaults(func=cmd_camera)


def cmd_camera(args) -> int:
    try:
        report = asyncio.run(run_camera(args))
    except AuthError as exc:
        return _fail(str(exc), EXIT_AUTH)
    except ConnectionError as exc:
        return _fail(str(exc), EXIT_SERVER)
    except (EdgeSDKError, OSError, ValueError) as exc:
        return _fail(str(exc), EXIT_INPUT)
    if args.report:
        Path(args.report).write_text(json.dumps(report, indent=1))
    print(json.dumps(report))
    if report.get("pending"):
        return _fail(
            f"{report['pending']} messages not acknowledged yet; they stay in {report['spool']} for the next run",
            EXIT_SERVER,
        )
    return 0


def _fail(text: str, code: int) -> int:
    print(f"error: {text}", file=sys.stderr)
    return code


async def run_camera(args) -> dict:
    """Run the app as the CLI does; returns the report (raises the typed errors)."""
    engine = load_engine(args.firmware)
    cfg = AppConfig(args.mode, args.frames, args.descriptor, thumbnail=args.thumbnail, max_side=args.max_side)
    status = LiveStatus(args.frames, enabled=not args.no_progress)
    from .encoders import ENCODERS

    encoder = (
        ENCODERS[args.codec](args.patch, args.codec_channels)
        if args.codec == "learned"
        else ENCODERS[args.codec](args.patch)
    )
    h, w = engine.input_shape[:2]
    source = open_source(args.source, loop=args.loop, lores_size=(w, h))
    try:
        if not args.server:
            report = await CameraApp(engine, LocalSink(), cfg, status, encoder).run(source)
            status.close()
            return report
        client = _make_client(args)
        try:
            await client.wait_connected(args.connect_timeout)
            report = await CameraApp(engine, ClientSink(client, status), cfg, status, encoder).run(source)
            drained = await client.flush(args.flush_timeout)
            status.queue_depth = client.pending()
            status.close()
            report.update(status.snapshot())
            report.update(
                server=args.server,
                device=client.device,
                spool=str(client.spool.dir),
                pending=0 if drained else client.pending(),
            )
            report["acked"] = client.stats.acked
            return report
        finally:
            await client.close()
    finally:
        source.close()


def _make_client(args):
    from ..client import DeviceClient
    from ..transport.auth import DeviceCredentials
    from ..transport.tcp import TcpClientTransport, client_ssl_context

    if not args.credentials:
        raise AuthError(
            "--server needs --credentials (a device credentials file from `edge-sdk credentials add`)"
        )
    creds = DeviceCredentials.load(args.credentials)
    host, sep, port = args.server.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"--server: expected HOST:PORT, found {args.server!r}")
    ssl_ctx = client_ssl_context(args.tls_ca) if args.tls_ca else None
    spool = args.spool or os.path.join(os.path.expanduser("~"), ".cache", "edge_sdk", "spool", creds.device)
    return DeviceClient(
        TcpClientTransport(host, int(port), ssl_ctx), creds, spool, connect_timeout=args.connect_timeout
    )


def main(argv: Optional[list] = None) -> int:
    """Entry point of examples/camera_demo.py."""
    p = argparse.ArgumentParser(
        prog="camera_demo", description="edge_sdk camera demo: capture, run the chip, send compact results."
    )
    add_arguments(p)
    return cmd_camera(p.parse_args(argv))
