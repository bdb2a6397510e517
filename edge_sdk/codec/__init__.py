"""Patch-by-patch latent compression: patches, GF(2) bit-planes, arithmetic coder, bitstream, evaluation."""
