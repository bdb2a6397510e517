"""Every exception edge_sdk raises on purpose.

Each error derives from :class:`EdgeSDKError` *and* from the builtin exception a
caller would naturally catch (``ValueError`` for bad data, ``RuntimeError`` for an
unavailable backend, ...), so ``except EdgeSDKError`` and ``except ValueError`` both
work.  Messages always say what was expected and what was found.
"""

from __future__ import annotations


class EdgeSDKError(Exception):
    """Base class of every error raised by edge_sdk."""


class ProfileError(ValueError, EdgeSDKError):
    """A chip profile is missing, malformed, or a network violates it."""


class FirmwareError(ValueError, EdgeSDKError):
    """A firmware image is truncated, corrupt, inconsistent or of a newer version."""


class TilingError(ValueError, EdgeSDKError):
    """No tiling schedule fits the chip's SRAM (names the layer, its need and the limit)."""


class InputError(ValueError, EdgeSDKError):
    """An input array has the wrong type, shape, dtype or value range."""


class UnsupportedOpError(ValueError, EdgeSDKError):
    """An operator that neither the chip nor the host fallback can run."""

    def __init__(self, op: str, layer: str, reason: str = "") -> None:
        self.op = op
        self.layer = layer
        detail = f": {reason}" if reason else ""
        super().__init__(f"unsupported op {op!r} in layer {layer!r}{detail}")


class BackendError(RuntimeError, EdgeSDKError):
    """A runtime backend is unavailable or was used out of order."""


class SRAMOverflowError(BackendError):
    """A tile's working set does not fit the chip's SRAM (a schedule violation)."""


class ConversionError(ValueError, EdgeSDKError):
    """A model could not be converted (bad model file, impossible options)."""


class ProtocolError(ValueError, EdgeSDKError):
    """A wire message is malformed, too large, of an unknown version or type."""


class AuthError(PermissionError, EdgeSDKError):
    """A device presented missing, wrong or replayed credentials."""


class BitstreamError(ValueError, EdgeSDKError):
    """A compressed latent bitstream is truncated, corrupt or of a newer version."""


class DatasetError(FileNotFoundError, EdgeSDKError):
    """A dataset or model file that a tool needs is missing or malformed."""
