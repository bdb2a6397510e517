"""Per-device shared-secret HMAC challenge-response (the hello handshake of protocol v1).

Handshake (docs/protocol.md, "Authentication")::

    device -> server  HELLO      d=<id>, nonce=Nc (16..64 random bytes)
    server -> device  CHALLENGE  nonce=Ns (32 random bytes, fresh per connection)
    device -> server  AUTH       mac = HMAC-SHA256(K, "edge-sdk/v1/device\\0" id "\\0" Nc Ns)
    server -> device  AUTH_OK    mac = HMAC-SHA256(K, "edge-sdk/v1/server\\0" id "\\0" Nc Ns)

Replays fail twice over: Ns is fresh, so a recorded AUTH never matches a new challenge,
and the server remembers recent (id, Nc) pairs, so a recorded HELLO is refused before
any challenge is issued.  Unknown devices get a challenge like everyone else (keyed with
a random dummy secret) so the server does not reveal which ids exist.  The AUTH_OK mac
lets the device check it talks to a server that knows its key before it drops acked
messages from its spool.

Credentials files are JSON, readable by the owner only (we refuse group/world-readable
secrets)::

    server: {"version": 1, "devices": {"cam1": "<64 hex chars>", ...}}
    device: {"version": 1, "device": "cam1", "secret": "<64 hex chars>"}
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import stat
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Union

from ..errors import AuthError, ProtocolError
from . import limits
from .protocol import check_device_id

PathLike = Union[str, "os.PathLike[str]"]
SECRET_BYTES = 32
_DEVICE_LABEL = b"edge-sdk/v1/device\0"
_SERVER_LABEL = b"edge-sdk/v1/server\0"


def _mac(label: bytes, secret: bytes, device: str, client_nonce: bytes, server_nonce: bytes) -> bytes:
    msg = label + device.encode() + b"\0" + client_nonce + server_nonce
    return hmac.new(secret, msg, hashlib.sha256).digest()


def device_mac(secret: bytes, device: str, client_nonce: bytes, server_nonce: bytes) -> bytes:
    """The proof a device sends in AUTH."""
    return _mac(_DEVICE_LABEL, secret, device, client_nonce, server_nonce)


def server_mac(secret: bytes, device: str, client_nonce: bytes, server_nonce: bytes) -> bytes:
    """The proof the server sends back in AUTH_OK (mutual authentication)."""
    return _mac(_SERVER_LABEL, secret, device, client_nonce, server_nonce)


def new_nonce(n: int = limits.NONCE_BYTES) -> bytes:
    return secrets.token_bytes(n)


@dataclass(frozen=True)
class DeviceCredentials:
    """What a device holds: its id and its secret."""

    device: str
    secret: bytes

    @classmethod
    def load(cls, path: PathLike) -> DeviceCredentials:
        data = _read_json(path)
        device = data.get("device")
        try:
            check_device_id(device)
        except ValueError as exc:
            raise AuthError(f"{path}: {exc}") from None
        return cls(device, _parse_secret(data.get("secret"), path))

    def save(self, path: PathLike) -> None:
        _write_private_json(path, {"version": 1, "device": self.device, "secret": self.secret.hex()})


class CredentialStore:
    """The server's table of device secrets, plus the replay cache of client nonces."""

    def __init__(self, secrets_by_device: dict[str, bytes], replay_cache: int = 65536) -> None:
        for device in secrets_by_device:
            check_device_id(device)
        self._secrets = dict(secrets_by_device)
        self._seen: OrderedDict[tuple[str, bytes], None] = OrderedDict()
        self._replay_cache = replay_cache
        # Unknown ids get a challenge keyed with this so their failure looks like a wrong key.
        self._dummy = secrets.token_bytes(SECRET_BYTES)

    @classmethod
    def load(cls, path: PathLike) -> CredentialStore:
        data = _read_json(path)
        devices = data.get("devices")
        if not isinstance(devices, dict):
            raise AuthError(f"{path}: expected a 'devices' map, found {type(devices).__name__}")
        try:
            return cls({str(d): _parse_secret(s, path) for d, s in devices.items()})
        except ProtocolError as exc:  # a malformed device id in the file
            raise AuthError(f"{path}: {exc}") from None

    def save(self, path: PathLike) -> None:
        _write_private_json(
            path, {"version": 1, "devices": {d: s.hex() for d, s in sorted(self._secrets.items())}}
        )

    def add_device(self, device: str) -> DeviceCredentials:
        """Create (or rotate) a device's secret and return its credentials."""
        creds = DeviceCredentials(check_device_id(device), secrets.token_bytes(SECRET_BYTES))
        self._secrets[device] = creds.secret
        return creds

    def devices(self) -> list[str]:
        return sorted(self._secrets)

    def secret_for(self, device: str) -> bytes:
        """The device's secret, or the dummy (verification will then fail) if unknown."""
        return self._secrets.get(device, self._dummy)

    def check_fresh(self, device: str, client_nonce: bytes) -> None:
        """Refuse a (device, client nonce) pair seen before: that HELLO is a replay."""
        key = (device, client_nonce)
        if key in self._seen:
            raise AuthError(f"replayed hello from {device!r}: client nonce already used")
        self._seen[key] = None
        if len(self._seen) > self._replay_cache:
            self._seen.popitem(last=False)

    def verify(self, device: str, client_nonce: bytes, server_nonce: bytes, mac: bytes) -> bytes:
        """Check a device's AUTH mac; return the server's proof for AUTH_OK."""
        known = device in self._secrets
        secret = self.secret_for(device)
        expected = device_mac(secret, device, client_nonce, server_nonce)
        # compare_digest first, then the membership test, so timing does not tell which failed.
        if not hmac.compare_digest(expected, mac) or not known:
            raise AuthError(f"authentication failed for device {device!r}")
        return server_mac(secret, device, client_nonce, server_nonce)


def _parse_secret(value: object, path: PathLike) -> bytes:
    try:
        secret = bytes.fromhex(str(value))
    except ValueError:
        secret = b""
    if len(secret) < 16:
        raise AuthError(f"{path}: expected a hex secret of >= 16 bytes, found {type(value).__name__}")
    return secret


def _read_json(path: PathLike) -> dict:
    p = Path(path)
    try:
        mode = p.stat().st_mode
        text = p.read_text("utf-8")
    except OSError as exc:
        raise AuthError(f"cannot read credentials file {p}: {exc.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise AuthError(
            f"credentials file {p} is readable by others (mode {stat.S_IMODE(mode):o}); chmod 600 it"
        )
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise AuthError(f"credentials file {p} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("version") != 1:
        raise AuthError(f"credentials file {p}: expected a JSON object with version 1")
    return data


def _write_private_json(path: PathLike, data: dict) -> None:
    """Write atomically with mode 0600 (the file never exists with wider permissions)."""
    p = Path(path)
    tmp = p.with_name(p.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, p)


def provision(server_file: PathLike, device: str, device_file: PathLike) -> DeviceCredentials:
    """Add ``device`` to the server's credentials file (created if absent), write its own file."""
    store = CredentialStore.load(server_file) if Path(server_file).exists() else CredentialStore({})
    creds = store.add_device(device)
    store.save(server_file)
    creds.save(device_file)
    return creds
