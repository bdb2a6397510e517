"""Golden images: the committed bytes of format 1.0 that the writer must reproduce exactly.

The images in tests/unit/golden/ are ``write_firmware(golden_network(profile))``
(edge_sdk/firmware/samples.py; weights from a pure-Python LCG, so they depend on
nothing but that file and the format).  Their SHA-256 is pinned here, so they
cannot be regenerated silently: after a *deliberate* format change, run
``python3 -m edge_sdk.firmware.samples tests/unit/golden`` and update PINNED by hand.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from edge_sdk.firmware import load_firmware, write_firmware
from edge_sdk.firmware.samples import golden_network

GOLDEN = Path(__file__).with_name("golden")
PINNED = {
    "lightspeeur-2803": "6584ffb06b15b168b62461555237f35b573145d37447d7bdeddeb2b63a6c73fb",
    "nqe-1mb": "5ca2caf1ccc7630903a5112952a24c28e003b663f63b0f31a0414930338addd0",
}


@pytest.mark.parametrize("profile", sorted(PINNED))
def test_golden_file_is_the_pinned_one(profile):
    data = (GOLDEN / f"{profile}.edgefw").read_bytes()
    assert hashlib.sha256(data).hexdigest() == PINNED[profile]


@pytest.mark.parametrize("profile", sorted(PINNED))
def test_writer_reproduces_the_golden_bytes(profile):
    data = (GOLDEN / f"{profile}.edgefw").read_bytes()
    assert write_firmware(golden_network(profile)) == data


@pytest.mark.parametrize("profile", sorted(PINNED))
def test_golden_image_loads_and_reencodes_identically(profile):
    path = GOLDEN / f"{profile}.edgefw"
    image = load_firmware(path)
    assert image.version == (1, 0) and image.profile.id == profile
    assert write_firmware(image.network) == path.read_bytes()


def test_golden_header_bytes():
    """Spot-check the documented header layout on the committed bytes."""
    data = (GOLDEN / "lightspeeur-2803.edgefw").read_bytes()
    assert data[:8] == bytes.fromhex("89 45 46 57 0D 0A 1A 0A")
    assert data[8:12] == bytes.fromhex("0100 0000")  # version 1.0, little-endian u16s
    assert int.from_bytes(data[12:16], "little") == 128
    assert int.from_bytes(data[16:24], "little") == len(data)
    assert int.from_bytes(data[24:28], "little") == 1  # HAS_HOST
    assert data[64:96].rstrip(b"\0") == b"lightspeeur-2803"
    nqe = (GOLDEN / "nqe-1mb.edgefw").read_bytes()
    assert int.from_bytes(nqe[24:28], "little") == 0  # chip only
