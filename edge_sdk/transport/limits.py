"""Every size bound of wire protocol v1 in one place (see docs/protocol.md, "Bounds").

The bounds are part of the protocol: a peer that exceeds one gets a ``ProtocolError``
(and an ERROR reply or a closed connection), never an unbounded allocation.
"""

from __future__ import annotations

PROTOCOL_VERSION = 1

#: Largest framed payload (the msgpack bytes after the 4-byte length prefix).
MAX_MESSAGE = 1 << 20  # 1 MiB
#: Largest msgpack str value anywhere in a message (bytes of UTF-8).
MAX_STR = 256
#: Largest msgpack bin value anywhere in a message.
MAX_BIN = 256 * 1024
#: Largest msgpack array / map anywhere in a message.
MAX_ARRAY = 1024
MAX_MAP = 32
#: Largest msgpack ext payload (descriptor vectors, thumbnails).
MAX_EXT = 64 * 1024

#: Device identifiers: 1..64 chars of [A-Za-z0-9._-], first char alphanumeric; they are
#: also used as directory names on the server, hence the conservative charset.
MAX_DEVICE_ID = 64
#: Short identifiers (codec name, model name, agent string).
MAX_NAME = 64
#: Human-readable error text in ERROR messages.
MAX_ERROR_TEXT = 256

#: Frames sent as latent patches.
MAX_PATCHES_PER_FRAME = 4096
MAX_PATCH_BYTES = 64 * 1024
MAX_FRAME_SIDE = 8192
MAX_PATCH_SIDE = 512
ALLOWED_CHANNELS = (1, 3)

#: Descriptors and classification results.
MAX_DESCRIPTOR_DIM = 4096
MAX_TOPK = 32
MAX_THUMB_SIDE = 128

#: Handshake.
NONCE_BYTES = 32
MAC_BYTES = 32
MIN_CLIENT_NONCE = 16

#: Integer ranges (msgpack allows uint64; we keep everything within int64 for SQLite).
MAX_SEQ = (1 << 63) - 1
MAX_TIMESTAMP_NS = (1 << 63) - 1
