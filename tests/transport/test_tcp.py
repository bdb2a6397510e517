"""The handshake over real loopback TCP (and TLS): accepted, refused, replayed."""

from __future__ import annotations

import asyncio
import shutil
import subprocess

import pytest

from edge_sdk.errors import AuthError
from edge_sdk.transport import auth
from edge_sdk.transport.framing import frame_message, read_frame
from edge_sdk.transport.handshake import client_handshake, server_handshake
from edge_sdk.transport.protocol import ErrorCode, Message, MsgType, decode
from edge_sdk.transport.tcp import (
    TcpClientTransport,
    TcpServerTransport,
    client_ssl_context,
    server_ssl_context,
)


def run(coro, timeout=20):
    return asyncio.run(asyncio.wait_for(coro, timeout))


class HandshakeServer:
    """A loopback server that only runs the handshake and records the outcome."""

    def __init__(self, store, ssl_context=None):
        self.store = store
        self.outcomes = []
        self.transport = TcpServerTransport("127.0.0.1", 0, ssl_context)

    async def _handler(self, conn):
        try:
            session = await server_handshake(conn, self.store, 5, 16)
            self.outcomes.append(("ok", session.device))
            await conn.send(Message(MsgType.ACK, session.device, 1))
        except Exception as exc:  # noqa: BLE001 - the test inspects every outcome
            self.outcomes.append((type(exc).__name__, str(exc)))

    async def __aenter__(self):
        await self.transport.start(self._handler)
        return self

    async def __aexit__(self, *exc):
        await self.transport.stop()

    @property
    def port(self):
        return self.transport.address()[1]


def test_good_credentials_authenticate_both_ways():
    store = auth.CredentialStore({})
    creds = store.add_device("cam1")

    async def go():
        async with HandshakeServer(store) as srv:
            conn = await TcpClientTransport("127.0.0.1", srv.port).connect(5)
            session = await client_handshake(conn, creds, 5)
            assert session.device == "cam1" and session.window == 16
            assert (await conn.recv(5)).type == MsgType.ACK
            await conn.close()
            return srv.outcomes

    assert run(go()) == [("ok", "cam1")]


@pytest.mark.parametrize("case", ["wrong_secret", "unknown_device"])
def test_bad_credentials_are_refused_with_auth_error(case):
    store = auth.CredentialStore({})
    good = store.add_device("cam1")
    bad = (
        auth.DeviceCredentials("cam1", b"x" * 32)
        if case == "wrong_secret"
        else auth.DeviceCredentials("ghost", good.secret)
    )

    async def go():
        async with HandshakeServer(store) as srv:
            conn = await TcpClientTransport("127.0.0.1", srv.port).connect(5)
            with pytest.raises(AuthError, match="server rejected credentials"):
                await client_handshake(conn, bad, 5)
            await conn.close()
            await asyncio.sleep(0.05)
            return srv.outcomes

    outcomes = run(go())
    assert outcomes and outcomes[0][0] == "AuthError"


def test_client_detects_a_server_that_does_not_know_its_key():
    real = auth.CredentialStore({})
    creds = real.add_device("cam1")
    impostor = auth.CredentialStore({"cam1": b"y" * 32})

    async def go():
        async with HandshakeServer(impostor) as srv:
            conn = await TcpClientTransport("127.0.0.1", srv.port).connect(5)
            with pytest.raises(AuthError):
                await client_handshake(conn, creds, 5)
            await conn.close()

    run(go())


async def _raw_session(port, hello: bytes, auth_frame_for):
    """Send a HELLO frame, answer the challenge with ``auth_frame_for(challenge)``; return replies."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(hello)
    replies = [decode(await read_frame(reader))]
    if replies[0].type == MsgType.CHALLENGE:
        writer.write(auth_frame_for(replies[0]))
        replies.append(decode(await read_frame(reader)))
    writer.close()
    return replies


def test_replayed_hello_and_auth_are_rejected():
    store = auth.CredentialStore({})
    creds = store.add_device("cam1")
    nonce = b"n" * 32
    hello = frame_message(Message(MsgType.HELLO, "cam1", body={"nonce": nonce}))
    recorded = {}

    def honest(challenge):
        mac = auth.device_mac(creds.secret, "cam1", nonce, challenge.body["nonce"])
        recorded["auth"] = frame_message(Message(MsgType.AUTH, "cam1", body={"mac": mac}))
        return recorded["auth"]

    async def go():
        async with HandshakeServer(store) as srv:
            first = await _raw_session(srv.port, hello, honest)
            replay = await _raw_session(srv.port, hello, lambda ch: recorded["auth"])
            # Even if the server forgot the nonce (a restart), the recorded AUTH does not match a fresh challenge.
            store._seen.clear()
            replay_after_restart = await _raw_session(srv.port, hello, lambda ch: recorded["auth"])
            return first, replay, replay_after_restart

    first, replay, after = run(go())
    assert [m.type for m in first] == [MsgType.CHALLENGE, MsgType.AUTH_OK]
    assert replay[0].type == MsgType.ERROR and replay[0].body["code"] == ErrorCode.REPLAY
    assert after[-1].type == MsgType.ERROR and after[-1].body["code"] == ErrorCode.AUTH_FAILED


def test_data_before_hello_is_refused():
    store = auth.CredentialStore({})
    store.add_device("cam1")

    async def go():
        async with HandshakeServer(store) as srv:
            data = frame_message(Message(MsgType.FRAME_END, "cam1", 1, body={"n": 0}))
            return await _raw_session(srv.port, data, None)

    (reply,) = run(go())
    assert reply.type == MsgType.ERROR and reply.body["code"] == ErrorCode.NOT_AUTHENTICATED


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.skip("openssl CLI not available to make a test certificate")
    d = tmp_path_factory.mktemp("tls")
    cmd = [
        "openssl",
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "1",
    ]
    cmd += [
        "-keyout",
        str(d / "key.pem"),
        "-out",
        str(d / "cert.pem"),
        "-subj",
        "/CN=localhost",
        "-addext",
        "subjectAltName=IP:127.0.0.1,DNS:localhost",
    ]
    subprocess.run(cmd, check=True, capture_output=True, timeout=30)
    return d / "cert.pem", d / "key.pem"


def test_handshake_over_tls(tls_files):
    cert, key = tls_files
    store = auth.CredentialStore({})
    creds = store.add_device("cam1")

    async def go():
        async with HandshakeServer(store, server_ssl_context(str(cert), str(key))) as srv:
            transport = TcpClientTransport("127.0.0.1", srv.port, client_ssl_context(str(cert)))
            assert transport.describe().startswith("tls://")
            conn = await transport.connect(5)
            assert (await client_handshake(conn, creds, 5)).device == "cam1"
            await conn.close()
            # A client that does not trust the certificate never gets to the handshake.
            with pytest.raises(OSError):
                await TcpClientTransport("127.0.0.1", srv.port, client_ssl_context()).connect(5)

    run(go())
