"""CLI of the server side: ``serve``, ``query``, ``frames`` and ``credentials``.

``register_cli(subparsers)`` adds the subcommands to an argparse parser; each sets
``func(args) -> int``.  ``query`` and ``frames`` read a data directory directly (safe
while the server runs: SQLite WAL readers never block it) or ask a running server's
HTTP endpoint with ``--url``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import EdgeSDKError
from ..transport import auth

DEFAULT_DATA = "edge_server_data"
DEFAULT_PORT = 7878


def register_cli(subparsers) -> None:
    p = subparsers.add_parser(
        "serve", help="run the ingestion server (foreground; SIGINT/SIGTERM stop it cleanly)"
    )
    p.add_argument("--data", default=DEFAULT_DATA, help="data directory (SQLite, PNGs, index)")
    p.add_argument("--credentials", required=True, help="server credentials file (see `credentials add`)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="0 picks a free port (see --ready-file)")
    p.add_argument(
        "--http-port", type=int, default=None, help="also serve the JSON query API on loopback (0: free port)"
    )
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--ready-file", help="write {pid, host, port, http_port} as JSON here once listening")
    p.add_argument("--log-level", default="WARNING")
    p.set_defaults(func=cmd_serve)

    q = subparsers.add_parser("query", help="top-k retrieval by stored frame, descriptor file or image")
    _add_source(q)
    q.add_argument("-k", type=int, default=5)
    what = q.add_mutually_exclusive_group(required=True)
    what.add_argument("--frame", help="DEVICE:FRAME_ID of a stored frame")
    what.add_argument("--vector", help=".npy file with a float feature vector")
    what.add_argument(
        "--image", help="image file; its descriptor is computed with --firmware (or the pixels stand-in)"
    )
    q.add_argument(
        "--kind", default=None, help="descriptor kind: f16, i8, bin, f32 (default: as stored / f16)"
    )
    q.add_argument("--firmware", help="firmware image for --image (default: the 'pixels' stand-in engine)")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_query)

    f = subparsers.add_parser("frames", help="list recent frames per device")
    _add_source(f)
    f.add_argument("--device")
    f.add_argument("--limit", type=int, default=20)
    f.add_argument("--json", action="store_true")
    f.set_defaults(func=cmd_frames)

    c = subparsers.add_parser("credentials", help="provision device credentials")
    c.add_argument("action", choices=["add", "list"])
    c.add_argument("device", nargs="?")
    c.add_argument("--server-file", required=True, help="the server's credentials file (created if absent)")
    c.add_argument("--device-file", help="where to write the new device's credentials (mode 0600)")
    c.set_defaults(func=cmd_credentials)


def _add_source(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default=DEFAULT_DATA, help="server data directory to read")
    p.add_argument("--url", help="query a running server instead, e.g. http://127.0.0.1:8080")


def cmd_serve(args) -> int:
    from .run import serve
    from .server import ServerConfig

    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.WARNING),
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    cfg = ServerConfig(
        Path(args.data),
        Path(args.credentials),
        args.host,
        args.port,
        args.http_port,
        args.tls_cert,
        args.tls_key,
    )
    try:
        return serve(cfg, Path(args.ready_file) if args.ready_file else None)
    except (EdgeSDKError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def cmd_frames(args) -> int:
    try:
        if args.url:
            qs = urllib.parse.urlencode(
                {k: v for k, v in (("device", args.device), ("limit", args.limit)) if v is not None}
            )
            frames = _http_json(f"{args.url}/frames?{qs}")["frames"]
        else:
            frames = _service(args).recent_frames(args.device, args.limit)
    except (EdgeSDKError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(frames, indent=1))
        return 0
    print(f"{'device':<16} {'frame':>20} {'size':>10} {'kinds':<16} png")
    for fr in frames:
        size = f"{fr['width']}x{fr['height']}" if fr["width"] else "-"
        print(
            f"{fr['device']:<16} {fr['frame']:>20} {size:>10} {','.join(fr['kinds']):<16} {fr['png'] or '-'}"
        )
    return 0


def cmd_query(args) -> int:
    try:
        hits = _run_query(args)
    except (EdgeSDKError, OSError, ValueError, LookupError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(hits, indent=1))
        return 0
    print(f"{'rank':>4} {'score':>8} {'device':<16} {'frame':>20} thumb")
    for rank, h in enumerate(hits, 1):
        print(f"{rank:>4} {h['score']:>8.4f} {h['device']:<16} {h['frame']:>20} {h.get('thumb') or '-'}")
    return 0


def _run_query(args) -> list:
    if args.frame:
        device, _, frame = args.frame.rpartition(":")
        if not device:
            raise ValueError(f"--frame: expected DEVICE:FRAME_ID, found {args.frame!r}")
        if args.url:
            qs = urllib.parse.urlencode(
                {
                    "device": device,
                    "frame": int(frame),
                    "k": args.k,
                    **({"kind": args.kind} if args.kind else {}),
                }
            )
            return _http_json(f"{args.url}/search?{qs}")["hits"]
        return [h.to_json() for h in _service(args).search_frame(device, int(frame), args.k, args.kind)]
    vector = (
        np.load(args.vector).astype(np.float64).reshape(-1)
        if args.vector
        else _image_vector(args.image, args.firmware)
    )
    kind = args.kind or "f16"
    if args.url:
        return _http_json(f"{args.url}/search", {"vector": vector.tolist(), "kind": kind, "k": args.k})[
            "hits"
        ]
    return [h.to_json() for h in _service(args).search_vector(vector, kind, args.k)]


def _image_vector(path: str, firmware: Optional[str]) -> np.ndarray:
    from ..camera.engine import load_engine
    from ..camera.sources import load_image

    engine = load_engine(firmware)
    return engine.run(engine.prepare(load_image(path))).astype(np.float64)


def _service(args):
    from .query import QueryService

    return QueryService(Path(args.data))


def _http_json(url: str, body: Optional[dict] = None, timeout: float = 30.0) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        detail = json.loads(exc.read() or b"{}").get("error", exc.reason)
        raise ValueError(f"{url}: HTTP {exc.code}: {detail}") from None


def cmd_credentials(args) -> int:
    try:
        if args.action == "list":
            for d in auth.CredentialStore.load(args.server_file).devices():
                print(d)
            return 0
        if not args.device or not args.device_file:
            print("error: `credentials add` needs DEVICE and --device-file", file=sys.stderr)
            return 2
        auth.provision(args.server_file, args.device, args.device_file)
        print(f"added {args.device}: server file {args.server_file}, device file {args.device_file}")
        return 0
    except (EdgeSDKError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
