"""Fixtures for server tests: credentials, a loopback server, bounded asyncio runs.

Every test is bounded (tests/conftest.py: DEADLINES_S).  Servers bind
127.0.0.1 on ephemeral ports only.
"""

from __future__ import annotations

import pytest

from edge_sdk.server.run import BackgroundServer
from edge_sdk.server.server import ServerConfig
from edge_sdk.transport.auth import CredentialStore


@pytest.fixture
def store():
    s = CredentialStore({})
    s.creds = {d: s.add_device(d) for d in ("cam1", "cam2", "fuzzer")}
    return s


@pytest.fixture
def server(tmp_path, store):
    bs = BackgroundServer(ServerConfig(tmp_path / "srv", store, http_port=0, handshake_timeout=3.0)).start()
    yield bs
    bs.stop()
