"""HMAC challenge-response primitives and credentials files."""

from __future__ import annotations

import hashlib
import hmac
import os

import pytest

from edge_sdk.errors import AuthError
from edge_sdk.transport import auth


def test_device_mac_is_hmac_sha256_of_the_documented_message():
    secret, cn, sn = b"k" * 32, b"c" * 16, b"s" * 32
    want = hmac.new(secret, b"edge-sdk/v1/device\0cam1\0" + cn + sn, hashlib.sha256).digest()
    assert auth.device_mac(secret, "cam1", cn, sn) == want
    assert auth.server_mac(secret, "cam1", cn, sn) != want  # distinct labels: no reflection


def test_verify_accepts_right_mac_and_returns_server_proof():
    store = auth.CredentialStore({})
    creds = store.add_device("cam1")
    cn, sn = os.urandom(32), os.urandom(32)
    proof = store.verify("cam1", cn, sn, auth.device_mac(creds.secret, "cam1", cn, sn))
    assert proof == auth.server_mac(creds.secret, "cam1", cn, sn)


@pytest.mark.parametrize("case", ["wrong_secret", "unknown_device", "other_challenge", "other_device"])
def test_verify_rejects(case):
    store = auth.CredentialStore({})
    creds = store.add_device("cam1")
    store.add_device("cam2")
    cn, sn = os.urandom(32), os.urandom(32)
    secret, device, sn_used = creds.secret, "cam1", sn
    if case == "wrong_secret":
        secret = os.urandom(32)
    elif case == "unknown_device":
        device = "ghost"
    elif case == "other_challenge":
        sn_used = os.urandom(32)
    mac = auth.device_mac(secret, device, cn, sn_used)
    claimed = "cam2" if case == "other_device" else device
    with pytest.raises(AuthError, match="authentication failed"):
        store.verify(claimed, cn, sn, mac)


def test_unknown_device_even_with_dummy_secret_mac_fails():
    store = auth.CredentialStore({})
    cn, sn = os.urandom(32), os.urandom(32)
    with pytest.raises(AuthError):
        store.verify("ghost", cn, sn, auth.device_mac(store.secret_for("ghost"), "ghost", cn, sn))


def test_replayed_client_nonce_is_rejected_and_cache_is_bounded():
    store = auth.CredentialStore({}, replay_cache=4)
    store.check_fresh("cam1", b"a" * 16)
    with pytest.raises(AuthError, match="replayed hello"):
        store.check_fresh("cam1", b"a" * 16)
    store.check_fresh("cam2", b"a" * 16)  # per device
    for i in range(10):
        store.check_fresh("cam1", bytes([i]) * 16)
    assert len(store._seen) == 4


def test_credentials_files_roundtrip_with_private_mode(tmp_path):
    creds = auth.provision(tmp_path / "server.json", "cam1", tmp_path / "cam1.json")
    auth.provision(tmp_path / "server.json", "cam2", tmp_path / "cam2.json")
    assert oct((tmp_path / "cam1.json").stat().st_mode & 0o777) == "0o600"
    assert auth.DeviceCredentials.load(tmp_path / "cam1.json") == creds
    store = auth.CredentialStore.load(tmp_path / "server.json")
    assert store.devices() == ["cam1", "cam2"] and store.secret_for("cam1") == creds.secret


def test_world_readable_credentials_are_refused(tmp_path):
    auth.provision(tmp_path / "server.json", "cam1", tmp_path / "cam1.json")
    os.chmod(tmp_path / "cam1.json", 0o644)
    with pytest.raises(AuthError, match="readable by others"):
        auth.DeviceCredentials.load(tmp_path / "cam1.json")


@pytest.mark.parametrize(
    "text,match",
    [
        ("not json", "not valid JSON"),
        ('{"version": 2}', "version 1"),
        ('{"version": 1, "device": "cam1", "secret": "abcd"}', ">= 16 bytes"),
    ],
)
def test_malformed_credentials_files(tmp_path, text, match):
    p = tmp_path / "c.json"
    p.write_text(text)
    os.chmod(p, 0o600)
    with pytest.raises(AuthError, match=match):
        auth.DeviceCredentials.load(p)


def test_missing_credentials_file_is_a_clear_auth_error(tmp_path):
    with pytest.raises(AuthError, match="cannot read credentials file"):
        auth.DeviceCredentials.load(tmp_path / "nope.json")
