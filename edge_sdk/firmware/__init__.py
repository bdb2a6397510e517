"""Firmware image format v1: the deterministic writer and the validating reader.

    from edge_sdk.firmware import write_firmware, load_firmware
    data = write_firmware(net)            # bytes, identical for identical networks
    image = load_firmware(data)           # or a path (memory-mapped); FirmwareError if bad
    image.network, image.profile, image.metadata, image.describe()

The byte-level specification is docs/firmware-format.md.
"""

from __future__ import annotations

from .format import VERSION_MAJOR, VERSION_MINOR
from .image import FirmwareImage
from .reader import load_firmware
from .writer import write_firmware

FORMAT_VERSION = (VERSION_MAJOR, VERSION_MINOR)

__all__ = ["FORMAT_VERSION", "FirmwareImage", "load_firmware", "write_firmware"]
