"""The hello handshake on top of any :class:`~edge_sdk.transport.base.Connection`.

See :mod:`edge_sdk.transport.auth` for the cryptography and docs/protocol.md for the
byte layout.  Both sides bound every step with a timeout so a silent peer cannot hold a
connection (or a server slot) open forever.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from ..errors import AuthError, ProtocolError
from . import limits
from .auth import CredentialStore, DeviceCredentials, device_mac, new_nonce, server_mac
from .base import Connection
from .protocol import ErrorCode, Message, MsgType, error_code_for, error_message


@dataclass(frozen=True)
class Session:
    """What the server granted at AUTH_OK."""

    device: str
    max_message: int
    window: int


async def client_handshake(conn: Connection, creds: DeviceCredentials, timeout: float) -> Session:
    """Authenticate ``creds`` to the server on ``conn`` (AuthError if refused)."""
    client_nonce = new_nonce()
    await conn.send(Message(MsgType.HELLO, creds.device, body={"nonce": client_nonce, "agent": "edge-sdk"}))
    challenge = await conn.recv(timeout)
    _raise_if_error(challenge, creds.device)
    if challenge.type != MsgType.CHALLENGE:
        raise ProtocolError(f"handshake: expected CHALLENGE, found {challenge.type.name}")
    server_nonce = challenge.body["nonce"]
    mac = device_mac(creds.secret, creds.device, client_nonce, server_nonce)
    await conn.send(Message(MsgType.AUTH, creds.device, body={"mac": mac}))
    ok = await conn.recv(timeout)
    _raise_if_error(ok, creds.device)
    if ok.type != MsgType.AUTH_OK:
        raise ProtocolError(f"handshake: expected AUTH_OK, found {ok.type.name}")
    expected = server_mac(creds.secret, creds.device, client_nonce, server_nonce)
    if not hmac.compare_digest(expected, ok.body["mac"]):
        raise AuthError(
            "the server could not prove it knows this device's secret (wrong server or wrong credentials)"
        )
    return Session(creds.device, ok.body.get("max_msg", limits.MAX_MESSAGE), ok.body.get("window", 64))


def _raise_if_error(msg: Message, device: str) -> None:
    if msg.type != MsgType.ERROR:
        return
    code = msg.body["code"]
    if code in (ErrorCode.AUTH_FAILED, ErrorCode.REPLAY):
        raise AuthError(f"server rejected credentials for device {device!r}: {msg.body['msg']}")
    raise ProtocolError(f"server refused the handshake (code {code}): {msg.body['msg']}")


async def server_handshake(conn: Connection, store: CredentialStore, timeout: float, window: int) -> Session:
    """Run the server side; on any failure send an ERROR and raise (the caller closes)."""
    hello = await _recv_or_reply(conn, timeout)
    if hello.type != MsgType.HELLO:
        await _reply(conn, ErrorCode.NOT_AUTHENTICATED, f"expected HELLO first, found {hello.type.name}")
        raise AuthError(f"{hello.type.name} before HELLO")
    device = hello.device
    try:
        store.check_fresh(device, hello.body["nonce"])
    except AuthError as exc:
        await _reply(conn, ErrorCode.REPLAY, str(exc), device)
        raise
    server_nonce = new_nonce()
    await conn.send(Message(MsgType.CHALLENGE, device, body={"nonce": server_nonce}))
    auth = await _recv_or_reply(conn, timeout)
    if auth.type != MsgType.AUTH or auth.device != device:
        await _reply(
            conn, ErrorCode.NOT_AUTHENTICATED, "expected AUTH from the device that said HELLO", device
        )
        raise AuthError("bad handshake order")
    try:
        proof = store.verify(device, hello.body["nonce"], server_nonce, auth.body["mac"])
    except AuthError as exc:
        await _reply(conn, ErrorCode.AUTH_FAILED, str(exc), device)
        raise
    await conn.send(
        Message(MsgType.AUTH_OK, device, body={"mac": proof, "max_msg": limits.MAX_MESSAGE, "window": window})
    )
    return Session(device, limits.MAX_MESSAGE, window)


async def _recv_or_reply(conn: Connection, timeout: float) -> Message:
    try:
        return await conn.recv(timeout)
    except ProtocolError as exc:
        await _reply(conn, error_code_for(exc), str(exc))
        raise


async def _reply(conn: Connection, code: ErrorCode, text: str, device: str = "") -> None:
    try:
        await conn.send(error_message(code, text, device=device))
    except (ConnectionError, OSError):
        pass  # the peer is already gone; the caller closes anyway
