"""Wire protocol v1: the envelope, the message types, and bounded encode/decode.

A message is one msgpack map (the *envelope*) carried in one length-prefixed frame
(:mod:`edge_sdk.transport.framing`).  docs/protocol.md is the byte-level reference;
this module is its executable form.  Rules enforced here:

* every size is bounded (:mod:`edge_sdk.transport.limits`), and the msgpack Unpacker
  is configured with those bounds *before* it parses, so a hostile length field never
  allocates;
* map keys must be strings (``strict_map_key``); unknown envelope and body fields are
  ignored, so v1 peers can add optional fields without breaking each other;
* a wrong version or an unknown type raises :class:`ProtocolError` naming what was
  expected and what was found.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import Any, Callable

import msgpack
import numpy as np

from ..errors import ProtocolError
from . import ext, limits
from .limits import PROTOCOL_VERSION

_DEVICE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class MsgType(enum.IntEnum):
    """Message type codes (envelope field ``t``)."""

    HELLO = 1
    CHALLENGE = 2
    AUTH = 3
    AUTH_OK = 4
    FRAME_BEGIN = 10
    LATENT_PATCH = 11
    FRAME_END = 12
    DESCRIPTOR = 13
    CLASSIFICATION = 14
    ACK = 20
    ERROR = 21


#: Types a device may send after authenticating; each is spooled, acked and deduplicated.
DATA_TYPES = frozenset(
    {MsgType.FRAME_BEGIN, MsgType.LATENT_PATCH, MsgType.FRAME_END, MsgType.DESCRIPTOR, MsgType.CLASSIFICATION}
)


class ErrorCode(enum.IntEnum):
    """Codes carried in ERROR bodies; ``RETRYABLE`` ones mean "send it again later"."""

    MALFORMED = 1
    UNSUPPORTED_VERSION = 2
    UNKNOWN_TYPE = 3
    TOO_LARGE = 4
    AUTH_FAILED = 5
    REPLAY = 6
    NOT_AUTHENTICATED = 7
    INVALID = 8
    BUSY = 9
    SHUTTING_DOWN = 10


RETRYABLE = frozenset({ErrorCode.BUSY, ErrorCode.SHUTTING_DOWN})


@dataclass(frozen=True)
class Message:
    """One decoded protocol message (the envelope plus its type-checked body)."""

    type: MsgType
    device: str
    seq: int = 0
    frame: int = 0
    ts: int = 0
    body: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- field checks


def _int(lo: int, hi: int) -> Callable[[str, Any], int]:
    def check(name: str, v: Any) -> int:
        # bool is an int subclass in Python; a msgpack true must not pass as 1.
        if type(v) is not int or not lo <= v <= hi:
            raise ProtocolError(f"field {name!r}: expected int in {lo}..{hi}, found {_show(v)}")
        return v

    return check


def _bin(lo: int, hi: int) -> Callable[[str, Any], bytes]:
    def check(name: str, v: Any) -> bytes:
        if not isinstance(v, bytes) or not lo <= len(v) <= hi:
            raise ProtocolError(f"field {name!r}: expected bin of {lo}..{hi} bytes, found {_show(v)}")
        return v

    return check


def _str(hi: int) -> Callable[[str, Any], str]:
    def check(name: str, v: Any) -> str:
        if not isinstance(v, str) or len(v.encode("utf-8", "surrogatepass")) > hi:
            raise ProtocolError(f"field {name!r}: expected str of <= {hi} bytes, found {_show(v)}")
        return v

    return check


def _float(name: str, v: Any) -> float:
    if type(v) not in (int, float) or not np.isfinite(v):
        raise ProtocolError(f"field {name!r}: expected finite number, found {_show(v)}")
    return float(v)


def _list(item: Callable[[str, Any], Any], hi: int) -> Callable[[str, Any], list]:
    def check(name: str, v: Any) -> list:
        if not isinstance(v, list) or len(v) > hi:
            raise ProtocolError(f"field {name!r}: expected list of <= {hi} items, found {_show(v)}")
        return [item(f"{name}[{i}]", x) for i, x in enumerate(v)]

    return check


def _vector(name: str, v: Any) -> Any:
    if isinstance(v, ext.PackedBits) or (isinstance(v, np.ndarray) and v.ndim == 1):
        return v
    raise ProtocolError(f"field {name!r}: expected ext F16_ARRAY/I8_ARRAY/F32_ARRAY/BITS, found {_show(v)}")


def _image(name: str, v: Any) -> np.ndarray:
    if isinstance(v, np.ndarray) and v.ndim == 3 and v.dtype == np.uint8:
        return v
    raise ProtocolError(f"field {name!r}: expected ext U8_IMAGE, found {_show(v)}")


def _show(v: Any) -> str:
    """A short description of a bad value (never echo a huge value into an error)."""
    if isinstance(v, (bytes, str, list, dict)):
        return f"{type(v).__name__} of length {len(v)}"
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


_U32 = _int(0, 2**32 - 1)
_SIDE = _int(1, limits.MAX_FRAME_SIDE)
_NAME = _str(limits.MAX_NAME)

# Per type: field -> (checker, required).  Fields not listed are ignored on decode.
SCHEMAS: dict[MsgType, dict[str, tuple[Callable[[str, Any], Any], bool]]] = {
    MsgType.HELLO: {"nonce": (_bin(limits.MIN_CLIENT_NONCE, 64), True), "agent": (_NAME, False)},
    MsgType.CHALLENGE: {"nonce": (_bin(limits.NONCE_BYTES, limits.NONCE_BYTES), True)},
    MsgType.AUTH: {"mac": (_bin(limits.MAC_BYTES, limits.MAC_BYTES), True)},
    MsgType.AUTH_OK: {
        "mac": (_bin(limits.MAC_BYTES, limits.MAC_BYTES), True),
        "max_msg": (_int(1, limits.MAX_MESSAGE), False),
        "window": (_int(1, 1 << 16), False),
    },
    MsgType.FRAME_BEGIN: {
        "w": (_SIDE, True),
        "h": (_SIDE, True),
        "c": (_int(1, 3), True),
        "patch": (_int(1, limits.MAX_PATCH_SIDE), True),
        "n": (_int(1, limits.MAX_PATCHES_PER_FRAME), True),
        "codec": (_NAME, True),
    },
    MsgType.LATENT_PATCH: {
        "i": (_int(0, limits.MAX_PATCHES_PER_FRAME - 1), True),
        "p": (_bin(0, limits.MAX_PATCH_BYTES), True),
    },
    MsgType.FRAME_END: {"n": (_int(0, limits.MAX_PATCHES_PER_FRAME), True)},
    MsgType.DESCRIPTOR: {"vec": (_vector, True), "model": (_NAME, False), "thumb": (_image, False)},
    MsgType.CLASSIFICATION: {
        "cls": (_list(_U32, limits.MAX_TOPK), True),
        "score": (_list(_float, limits.MAX_TOPK), True),
        "names": (_list(_NAME, limits.MAX_TOPK), False),
        "model": (_NAME, False),
    },
    MsgType.ACK: {"dup": (lambda n, v: bool(v), False)},
    MsgType.ERROR: {
        "code": (_int(0, 255), True),
        "msg": (_str(limits.MAX_ERROR_TEXT), True),
        "retry": (lambda n, v: bool(v), False),
    },
}


def _check_body(mtype: MsgType, body: Any) -> dict:
    if not isinstance(body, dict):
        raise ProtocolError(f"field 'b': expected map, found {_show(body)}")
    out = {}
    for name, (check, required) in SCHEMAS[mtype].items():
        if name in body:
            out[name] = check(name, body[name])
        elif required:
            raise ProtocolError(f"{mtype.name}: missing required field {name!r}")
    _check_semantics(mtype, out)
    return out


def _check_semantics(mtype: MsgType, body: dict) -> None:
    """Cross-field rules a schema of independent fields cannot express."""
    if mtype == MsgType.FRAME_BEGIN:
        p = body["patch"]
        grid = -(-body["h"] // p) * -(-body["w"] // p)
        if grid != body["n"]:
            raise ProtocolError(
                f"FRAME_BEGIN: expected n = {grid} patches for {body['w']}x{body['h']} at patch {p}, found {body['n']}"
            )
    elif mtype == MsgType.CLASSIFICATION:
        if len(body["cls"]) != len(body["score"]) or (
            "names" in body and len(body["names"]) != len(body["cls"])
        ):
            raise ProtocolError("CLASSIFICATION: expected cls, score (and names) of equal length")


def check_device_id(device: Any, *, allow_empty: bool = False) -> str:
    """Validate a device id (also used as a directory name on the server)."""
    if allow_empty and device == "":
        return device
    if not isinstance(device, str) or not _DEVICE_RE.match(device):
        raise ProtocolError(
            f"device id: expected 1..{limits.MAX_DEVICE_ID} chars of [A-Za-z0-9._-], found {_show(device)}"
        )
    return device


# --------------------------------------------------------------------------- encode / decode


def encode(msg: Message) -> bytes:
    """Serialize ``msg`` (validated exactly as the receiver will validate it)."""
    mtype = MsgType(msg.type)
    body = _check_body(mtype, msg.body)
    env = {
        "v": PROTOCOL_VERSION,
        "t": int(mtype),
        "d": msg.device,
        "s": msg.seq,
        "f": msg.frame,
        "ts": msg.ts,
        "b": body,
    }
    data = msgpack.packb(env, default=ext.pack_ext, use_bin_type=True)
    if len(data) > limits.MAX_MESSAGE:
        raise ProtocolError(f"message too large: expected <= {limits.MAX_MESSAGE} bytes, found {len(data)}")
    decode(data)  # the sender fails exactly where the receiver would, never the other way round
    return data


def unpacker() -> msgpack.Unpacker:
    """A msgpack Unpacker with every protocol bound set (the only way v1 bytes are parsed)."""
    return msgpack.Unpacker(
        max_buffer_size=limits.MAX_MESSAGE,
        max_str_len=limits.MAX_STR,
        max_bin_len=limits.MAX_BIN,
        max_array_len=limits.MAX_ARRAY,
        max_map_len=limits.MAX_MAP,
        max_ext_len=limits.MAX_EXT,
        strict_map_key=True,
        raw=False,
        use_list=True,
        ext_hook=ext.unpack_ext,
    )


def decode(payload: bytes) -> Message:
    """Parse one framed payload into a :class:`Message`; any defect is a ProtocolError."""
    if len(payload) > limits.MAX_MESSAGE:
        raise ProtocolError(
            f"message too large: expected <= {limits.MAX_MESSAGE} bytes, found {len(payload)}"
        )
    up = unpacker()
    up.feed(payload)
    try:
        env = up.unpack()
    except msgpack.OutOfData:
        raise ProtocolError("truncated msgpack payload") from None
    except ProtocolError:
        raise
    except Exception as exc:  # msgpack raises ValueError/TypeError subclasses, also UnicodeDecodeError
        raise ProtocolError(f"malformed msgpack: {type(exc).__name__}: {str(exc)[:120]}") from None
    if up.tell() != len(payload):
        raise ProtocolError(
            f"trailing bytes: expected 1 object in {len(payload)} bytes, found {len(payload) - up.tell()} extra"
        )
    return _envelope(env)


def _envelope(env: Any) -> Message:
    if not isinstance(env, dict):
        raise ProtocolError(f"envelope: expected map, found {_show(env)}")
    version = env.get("v")
    if version != PROTOCOL_VERSION or type(version) is not int:
        raise ProtocolError(
            f"unsupported protocol version: expected {PROTOCOL_VERSION}, found {_show(version)}"
        )
    t = env.get("t")
    if type(t) is not int or t not in MsgType._value2member_map_:
        raise ProtocolError(
            f"unknown message type: expected one of {[int(m) for m in MsgType]}, found {_show(t)}"
        )
    mtype = MsgType(t)
    seq = _int(0, limits.MAX_SEQ)("s", env.get("s"))
    frame = _int(0, limits.MAX_SEQ)("f", env.get("f", 0))
    ts = _int(0, limits.MAX_TIMESTAMP_NS)("ts", env.get("ts", 0))
    device = check_device_id(env.get("d"), allow_empty=mtype in (MsgType.CHALLENGE, MsgType.ERROR))
    return Message(mtype, device, seq, frame, ts, _check_body(mtype, env.get("b", {})))


def error_message(code: ErrorCode, text: str, *, device: str = "", seq: int = 0) -> Message:
    """An ERROR reply; ``seq`` names the offending message (0 when unknown)."""
    clipped = text.encode("utf-8", "replace")[: limits.MAX_ERROR_TEXT].decode("utf-8", "ignore")
    return Message(
        MsgType.ERROR, device, seq, body={"code": int(code), "msg": clipped, "retry": code in RETRYABLE}
    )


def error_code_for(exc: ProtocolError) -> ErrorCode:
    """Map a decode failure onto the ERROR code sent back to the peer."""
    text = str(exc)
    if text.startswith("unsupported protocol version"):
        return ErrorCode.UNSUPPORTED_VERSION
    if text.startswith("unknown message type"):
        return ErrorCode.UNKNOWN_TYPE
    if "too large" in text:
        return ErrorCode.TOO_LARGE
    return ErrorCode.MALFORMED
