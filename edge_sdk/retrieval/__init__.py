"""Retrieval descriptors on the chip: RNIP / NIP pooling, wire encodings, evaluation (docs/retrieval.md)."""

from .encoding import ENCODINGS, decode, encode, encoded_size
from .rnip import Describer, RNIPConfig, Whitening, nip, rnip, whole_image

__all__ = [
    "ENCODINGS",
    "Describer",
    "RNIPConfig",
    "Whitening",
    "decode",
    "encode",
    "encoded_size",
    "nip",
    "rnip",
    "whole_image",
]
