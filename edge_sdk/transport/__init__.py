"""Wire protocol v1 and its transports (docs/protocol.md).

``protocol`` (envelope, types, bounded encode/decode), ``framing`` (length prefix,
streaming unpacker), ``auth`` (HMAC challenge-response, credentials files), ``base``
(the transport interface) and ``tcp`` (asyncio TCP/TLS).
"""

from __future__ import annotations

from .limits import PROTOCOL_VERSION
from .protocol import DATA_TYPES, ErrorCode, Message, MsgType, decode, encode

__all__ = ["DATA_TYPES", "PROTOCOL_VERSION", "ErrorCode", "Message", "MsgType", "decode", "encode"]
