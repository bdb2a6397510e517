"""The server side: ingestion (``serve``), storage, frame assembly, descriptor index, queries.

Heavy optional dependencies (faiss, Pillow) are imported by the submodules that need
them, so ``import edge_sdk.server`` stays cheap.
"""

from __future__ import annotations

__all__ = ["BackgroundServer", "EdgeServer", "ServerConfig", "ServerProcess", "serve"]


def __getattr__(name: str):
    if name in ("EdgeServer", "ServerConfig"):
        from . import server

        return getattr(server, name)
    if name in ("BackgroundServer", "ServerProcess", "serve"):
        from . import run

        return getattr(run, name)
    raise AttributeError(name)
