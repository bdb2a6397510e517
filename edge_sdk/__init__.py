"""edge_sdk: deploy low-bit CNNs to small-SRAM accelerators.

The public API::

    import edge_sdk
    image = edge_sdk.load_firmware("firmware_images/sample_lightspeeur.edgefw")
    dev = edge_sdk.Device()          # the bit-exact emulator (or the numpy reference)
    dev.load(image)
    result = dev.run(frame)          # uint8 HWC frame -> RunResult(codes, output, taps)

Importing edge_sdk needs only numpy (and msgpack for firmware metadata); the
Cython emulator is optional at import time and its absence is reported clearly.
"""

from __future__ import annotations

from .chips import ChipProfile, list_profiles, load_profile
from .errors import (
    BackendError,
    ConversionError,
    EdgeSDKError,
    FirmwareError,
    InputError,
    ProfileError,
    SRAMOverflowError,
    TilingError,
    UnsupportedOpError,
)
from .network import Layer, Network
from .runtime import Device, RunResult

__version__ = "0.1.0"


def load_firmware(source):
    """Read and validate a firmware image from a path, bytes or memoryview (FirmwareError if bad)."""
    from .firmware import load_firmware as _load

    return _load(source)


__all__ = [
    "BackendError",
    "ChipProfile",
    "ConversionError",
    "Device",
    "EdgeSDKError",
    "FirmwareError",
    "InputError",
    "Layer",
    "Network",
    "ProfileError",
    "RunResult",
    "SRAMOverflowError",
    "TilingError",
    "UnsupportedOpError",
    "__version__",
    "list_profiles",
    "load_firmware",
    "load_profile",
]
