"""The pluggable full-frame decoder interface, and the trivial ``raw`` decoder.

A frame arrives as a grid of latent patches (row-major, ``ceil(h/p) x ceil(w/p)``
patches of ``p x p`` pixels).  A :class:`FrameDecoder` turns the patches it has into one
``HxWxC`` uint8 image.  Decoders are registered by codec name (FRAME_BEGIN ``codec``).

The learned full-frame decoder (latents of all patches decoded together, so no block
seams) comes later; it will register itself with ``handles_missing = True`` because it
can inpaint a missing patch from its neighbours' latents.  For other decoders the
assembler conceals missing patches itself (see :mod:`edge_sdk.server.assembler`).

``raw`` codec (for tests and the demo until the learned codec lands): each payload is
exactly ``p*p*c`` uint8 pixels of one patch, row-major HWC.  Patches on the right and
bottom border are padded to ``p x p`` by the encoder (edge replication) and cropped here.
A payload of any other length is reported as *corrupt* and concealed like a missing one.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..errors import EdgeSDKError


class DecoderError(ValueError, EdgeSDKError):
    """No decoder for a codec, or a decoder failed on a frame."""


@dataclass(frozen=True)
class FrameGeometry:
    """Where each patch of a frame goes."""

    width: int
    height: int
    channels: int
    patch: int
    n_patches: int
    codec: str

    @property
    def grid(self) -> tuple[int, int]:
        """(rows, cols) of the patch grid."""
        return -(-self.height // self.patch), -(-self.width // self.patch)

    def box(self, idx: int) -> tuple[int, int, int, int]:
        """Pixel box (y0, x0, y1, x1) of patch ``idx``, clipped to the frame."""
        rows, cols = self.grid
        r, c = divmod(idx, cols)
        y0, x0 = r * self.patch, c * self.patch
        return y0, x0, min(y0 + self.patch, self.height), min(x0 + self.patch, self.width)


@dataclass
class DecodedFrame:
    """A decoder's output: the image and the patch indices it could not use."""

    image: np.ndarray
    corrupt: list


class FrameDecoder(abc.ABC):
    """Turns a frame's latent patches into an image."""

    #: The FRAME_BEGIN codec name this decoder handles.
    codec: str = ""
    #: True if the decoder fills missing patches itself (no assembler concealment).
    handles_missing: bool = False

    @abc.abstractmethod
    def decode(self, geometry: FrameGeometry, patches: Mapping[int, bytes]) -> DecodedFrame:
        """Decode the available ``patches`` (index -> payload); missing ones may be left as zeros."""


class RawPatchDecoder(FrameDecoder):
    """``raw``: payloads are uncompressed uint8 pixels (see the module docstring)."""

    codec = "raw"

    def decode(self, geometry: FrameGeometry, patches: Mapping[int, bytes]) -> DecodedFrame:
        g = geometry
        image = np.zeros((g.height, g.width, g.channels), np.uint8)
        expected = g.patch * g.patch * g.channels
        corrupt = []
        for idx, payload in patches.items():
            if len(payload) != expected or not 0 <= idx < g.n_patches:
                corrupt.append(idx)
                continue
            y0, x0, y1, x1 = g.box(idx)
            tile = np.frombuffer(payload, np.uint8).reshape(g.patch, g.patch, g.channels)
            image[y0:y1, x0:x1] = tile[: y1 - y0, : x1 - x0]
        return DecodedFrame(image, sorted(corrupt))


_REGISTRY: dict[str, Callable[[], FrameDecoder]] = {"raw": RawPatchDecoder}


def register_decoder(codec: str, factory: Callable[[], FrameDecoder]) -> None:
    """Make ``codec`` decodable (a later registration replaces an earlier one)."""
    _REGISTRY[codec] = factory


def get_decoder(codec: str) -> FrameDecoder:
    if codec not in _REGISTRY and codec.startswith("ours-baseline"):
        # The codec package registers its decoders on first use, so the server needs no codec import otherwise.
        from ..codec.server_plugin import register_baseline

        register_baseline()
    if codec not in _REGISTRY and codec.startswith("ours-nqe"):
        from ..codec.server_plugin import register_learned

        register_learned()
    try:
        return _REGISTRY[codec]()
    except KeyError:
        raise DecoderError(
            f"no frame decoder for codec {codec!r}: expected one of {sorted(_REGISTRY)}"
        ) from None


def codecs() -> list[str]:
    return sorted(_REGISTRY)
