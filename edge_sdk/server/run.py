"""Running the server: in the foreground, in a background thread, or as a subprocess.

The three shapes ``make demo`` and the tests need, all on loopback with port 0 allowed:

* :func:`serve` — foreground until SIGINT/SIGTERM (what ``edge-sdk serve`` runs);
  writes a *ready file* (JSON: pid, host, port, http_port) once it listens.
* :class:`BackgroundServer` — an :class:`EdgeServer` on its own event loop thread.
* :class:`ServerProcess` — ``python -m edge_sdk.server serve ...`` as a child process,
  started and stopped (SIGTERM, graceful) or killed (SIGKILL) programmatically.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Optional

from .server import EdgeServer, ServerConfig


def _write_ready(path: Path, server: EdgeServer) -> None:
    host, port = server.address
    info = {
        "pid": os.getpid(),
        "host": host,
        "port": port,
        "http_port": server.http.address[1] if server.http else None,
    }
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(info))
    os.replace(tmp, path)


async def serve_async(config: ServerConfig, ready_file: Optional[Path] = None) -> None:
    server = EdgeServer(config)
    await server.start()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lambda: loop.create_task(server.stop()))
    if ready_file is not None:
        _write_ready(Path(ready_file), server)
    host, port = server.address
    print(
        f"edge-sdk server listening on {host}:{port}"
        + (f", HTTP on {server.http.address[1]}" if server.http else ""),
        flush=True,
    )
    await server.wait_stopped()


def serve(config: ServerConfig, ready_file: Optional[Path] = None) -> int:
    """Run until SIGINT/SIGTERM, then shut down gracefully; returns an exit status."""
    asyncio.run(serve_async(config, ready_file))
    return 0


class BackgroundServer:
    """An EdgeServer on a private event-loop thread (``with BackgroundServer(cfg) as s:``)."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.server: Optional[EdgeServer] = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="edge-server", daemon=True)

    def start(self, timeout: float = 30.0) -> BackgroundServer:
        self._thread.start()
        self.server = EdgeServer(self.config)
        asyncio.run_coroutine_threadsafe(self.server.start(), self._loop).result(timeout)
        return self

    @property
    def address(self) -> tuple[str, int]:
        return self.server.address

    @property
    def http_address(self) -> Optional[tuple[str, int]]:
        return self.server.http.address if self.server and self.server.http else None

    def call(self, fn, timeout: float = 30.0):
        """Run ``fn()`` on the server's loop thread and return its result."""

        async def wrap():
            return fn()

        return asyncio.run_coroutine_threadsafe(wrap(), self._loop).result(timeout)

    def stop(self, timeout: float = 30.0) -> None:
        if self.server is not None:
            asyncio.run_coroutine_threadsafe(self.server.stop(timeout), self._loop).result(timeout + 5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)
        self._loop.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class ServerProcess:
    """``edge-sdk serve`` as a child process (loopback only; see module docstring)."""

    def __init__(
        self,
        data_dir: Path,
        credentials: Path,
        *,
        port: int = 0,
        http_port: Optional[int] = None,
        log_file: Optional[Path] = None,
    ) -> None:
        self.data_dir, self.credentials = Path(data_dir), Path(credentials)
        self.port, self.http_port = port, http_port
        self.log_file = log_file or self.data_dir / "server.log"
        self.ready_file = self.data_dir / "server.ready.json"
        self.proc: Optional[subprocess.Popen] = None
        self.info: dict = {}

    def start(self, timeout: float = 30.0) -> ServerProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.ready_file.unlink(missing_ok=True)
        cmd = [
            sys.executable,
            "-m",
            "edge_sdk.server",
            "serve",
            "--data",
            str(self.data_dir),
            "--credentials",
            str(self.credentials),
        ]
        cmd += ["--host", "127.0.0.1", "--port", str(self.port), "--ready-file", str(self.ready_file)]
        if self.http_port is not None:
            cmd += ["--http-port", str(self.http_port)]
        log = open(self.log_file, "ab")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=_child_env())
        log.close()
        deadline = time.monotonic() + timeout
        while not self.ready_file.exists():
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with status {self.proc.returncode}; see {self.log_file}")
            if time.monotonic() > deadline:
                self.kill()
                raise TimeoutError(f"server not ready after {timeout} s; see {self.log_file}")
            time.sleep(0.05)
        self.info = json.loads(self.ready_file.read_text())
        self.port = self.info["port"]  # a restart reuses the port the devices know
        return self

    @property
    def address(self) -> tuple[str, int]:
        return self.info["host"], self.info["port"]

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM (graceful shutdown), SIGKILL if it does not exit in time."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return -9

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def _child_env() -> dict:
    """The child must import this very edge_sdk, installed or not."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env
