"""Protocol v1 envelope, types, bounds and error messages."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_sdk.errors import ProtocolError
from edge_sdk.transport import ext, limits
from edge_sdk.transport.descriptor import encode_descriptor
from edge_sdk.transport.protocol import (
    ErrorCode,
    Message,
    MsgType,
    decode,
    encode,
    error_code_for,
    error_message,
    unpacker,
)


def env(t=MsgType.FRAME_END, body=None, **over):
    e = {
        "v": 1,
        "t": int(t),
        "d": "cam1",
        "s": 7,
        "f": 3,
        "ts": 123,
        "b": body if body is not None else {"n": 0},
    }
    e.update(over)
    return e


def packed(e) -> bytes:
    return msgpack.packb(e, use_bin_type=True, default=ext.pack_ext)


SAMPLES = [
    Message(MsgType.HELLO, "cam1", body={"nonce": b"n" * 32, "agent": "x"}),
    Message(MsgType.CHALLENGE, "", body={"nonce": b"c" * 32}),
    Message(MsgType.AUTH, "cam1", body={"mac": b"m" * 32}),
    Message(MsgType.AUTH_OK, "cam1", body={"mac": b"m" * 32, "max_msg": 1000, "window": 8}),
    Message(
        MsgType.FRAME_BEGIN,
        "cam1",
        5,
        9,
        10,
        {"w": 100, "h": 50, "c": 3, "patch": 32, "n": 8, "codec": "raw"},
    ),
    Message(MsgType.LATENT_PATCH, "cam1", 6, 9, 10, {"i": 7, "p": b"\x01\x02"}),
    Message(MsgType.FRAME_END, "cam1", 7, 9, 10, {"n": 8}),
    Message(
        MsgType.CLASSIFICATION,
        "cam1",
        8,
        9,
        10,
        {"cls": [3, 1], "score": [0.9, 0.1], "names": ["cat", "car"], "model": "m"},
    ),
    Message(MsgType.ACK, "cam1", 8, body={"dup": True}),
    Message(MsgType.ERROR, "", 0, body={"code": 1, "msg": "bad", "retry": False}),
]


@pytest.mark.parametrize("msg", SAMPLES, ids=lambda m: m.type.name)
def test_roundtrip_every_type(msg):
    assert decode(encode(msg)) == msg


@pytest.mark.parametrize("kind", ["f16", "i8", "f32", "bin"])
def test_descriptor_roundtrip(kind):
    vec = encode_descriptor(np.arange(-8, 8, dtype=np.float64), kind)
    thumb = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    got = decode(encode(Message(MsgType.DESCRIPTOR, "cam1", 1, 2, 3, {"vec": vec, "thumb": thumb}))).body
    if kind == "bin":
        assert got["vec"] == vec and list(got["vec"].unpack()) == [0] * 9 + [1] * 7
    else:
        assert got["vec"].dtype == vec.dtype and np.array_equal(got["vec"], vec)
    assert np.array_equal(got["thumb"], thumb)


def test_unknown_fields_are_ignored_in_envelope_and_body():
    msg = decode(packed(env(body={"n": 4, "future_field": [1, 2]}, extra={"x": 1})))
    assert msg.body == {"n": 4} and msg.seq == 7 and msg.frame == 3


def test_bad_version_says_expected_and_found():
    with pytest.raises(ProtocolError, match=r"expected 1, found 2") as info:
        decode(packed(env(v=2)))
    assert error_code_for(info.value) == ErrorCode.UNSUPPORTED_VERSION


def test_missing_version_is_rejected():
    e = env()
    del e["v"]
    with pytest.raises(ProtocolError, match="found None"):
        decode(packed(e))


def test_unknown_type_says_expected_and_found():
    with pytest.raises(ProtocolError, match=r"unknown message type: expected one of \[1, .*found 99") as info:
        decode(packed(env(t=99)))
    assert error_code_for(info.value) == ErrorCode.UNKNOWN_TYPE


def test_non_string_map_keys_rejected():
    with pytest.raises(ProtocolError, match="strict_map_key"):
        decode(msgpack.packb({1: 2}))


def test_unpacker_has_every_bound_set():
    up = unpacker()
    for payload, what in [
        (msgpack.packb("x" * (limits.MAX_STR + 1)), "max_str_len"),
        (msgpack.packb(b"x" * (limits.MAX_BIN + 1)), "max_bin_len"),
        (msgpack.packb([0] * (limits.MAX_ARRAY + 1)), "max_array_len"),
        (msgpack.packb({str(i): 0 for i in range(limits.MAX_MAP + 1)}), "max_map_len"),
        (msgpack.packb(msgpack.ExtType(1, b"\0" * (limits.MAX_EXT + 2))), "max_ext_len"),
    ]:
        up = unpacker()
        up.feed(payload)
        with pytest.raises(ValueError, match=what):
            up.unpack()


@pytest.mark.parametrize(
    "body,match",
    [
        ({"i": 0, "p": b"x" * (limits.MAX_PATCH_BYTES + 1)}, "expected bin of 0..65536"),
        ({"i": limits.MAX_PATCHES_PER_FRAME, "p": b""}, "expected int in 0..4095"),
        ({"i": True, "p": b""}, "expected int"),
        ({"i": 0}, "missing required field 'p'"),
        ({"i": 0, "p": "text not bytes"}, "expected bin"),
    ],
)
def test_patch_bounds(body, match):
    with pytest.raises(ProtocolError, match=match):
        decode(packed(env(t=MsgType.LATENT_PATCH, body=body)))


def test_frame_begin_patch_count_must_match_grid():
    body = {"w": 100, "h": 50, "c": 3, "patch": 32, "n": 9, "codec": "raw"}
    with pytest.raises(ProtocolError, match="expected n = 8"):
        decode(packed(env(t=MsgType.FRAME_BEGIN, body=body)))


def test_frame_size_and_patch_limits():
    body = {"w": limits.MAX_FRAME_SIDE + 1, "h": 1, "c": 3, "patch": 1, "n": 1, "codec": "raw"}
    with pytest.raises(ProtocolError, match="'w'"):
        decode(packed(env(t=MsgType.FRAME_BEGIN, body=body)))
    big = {"w": 8192, "h": 8192, "c": 3, "patch": 64, "n": 128 * 128, "codec": "raw"}  # 16384 patches > 4096
    with pytest.raises(ProtocolError, match="'n'"):
        decode(packed(env(t=MsgType.FRAME_BEGIN, body=big)))


def test_string_bounds():
    with pytest.raises(ProtocolError, match="expected str of <= 64 bytes"):
        decode(
            packed(
                env(
                    t=MsgType.FRAME_BEGIN,
                    body={"w": 1, "h": 1, "c": 1, "patch": 1, "n": 1, "codec": "c" * 65},
                )
            )
        )
    with pytest.raises(ProtocolError, match="device id"):
        decode(packed(env(d="x" * 65)))
    with pytest.raises(ProtocolError, match="device id"):
        decode(packed(env(d="../etc")))


def test_classification_lengths_and_topk_bound():
    with pytest.raises(ProtocolError, match="equal length"):
        decode(packed(env(t=MsgType.CLASSIFICATION, body={"cls": [1, 2], "score": [0.5]})))
    with pytest.raises(ProtocolError, match="<= 32 items"):
        decode(packed(env(t=MsgType.CLASSIFICATION, body={"cls": list(range(33)), "score": [0.0] * 33})))
    with pytest.raises(ProtocolError, match="finite"):
        decode(packed(env(t=MsgType.CLASSIFICATION, body={"cls": [1], "score": [float("nan")]})))


def test_ext_types_validated():
    with pytest.raises(
        ProtocolError, match="unknown ext type: expected one of \\[1, 2, 3, 4, 5\\], found 42"
    ):
        decode(packed(env(t=MsgType.DESCRIPTOR, body={"vec": msgpack.ExtType(42, b"ab")})))
    with pytest.raises(ProtocolError, match="not a multiple of 2"):
        decode(packed(env(t=MsgType.DESCRIPTOR, body={"vec": msgpack.ExtType(ext.F16_ARRAY, b"abc")})))
    with pytest.raises(ProtocolError, match="expected 1..4096 elements"):
        decode(
            packed(env(t=MsgType.DESCRIPTOR, body={"vec": msgpack.ExtType(ext.BITS, b"\xff\xff\x00\x00")}))
        )
    with pytest.raises(ProtocolError, match="expected 2 bytes for 16 bits"):
        decode(packed(env(t=MsgType.DESCRIPTOR, body={"vec": msgpack.ExtType(ext.BITS, b"\x10\0\0\0\x01")})))
    bad_image = msgpack.ExtType(ext.U8_IMAGE, b"\x02\x00\x02\x00\x03" + b"\0" * 11)
    with pytest.raises(ProtocolError, match="expected 12 pixel bytes"):
        decode(packed(env(t=MsgType.DESCRIPTOR, body={"vec": np.ones(2, np.float16), "thumb": bad_image})))
    with pytest.raises(ProtocolError, match="cannot encode array"):
        ext.pack_ext(np.zeros((3,), np.uint64))


def test_timestamp_ext_is_not_an_int():
    e = env(ts=msgpack.Timestamp(1, 0))
    with pytest.raises(ProtocolError, match="field 'ts'"):
        decode(packed(e))


def test_message_size_bound_on_encode_and_decode():
    huge = b"\0" * (limits.MAX_MESSAGE + 1)
    with pytest.raises(ProtocolError, match="too large"):
        decode(huge)


def test_truncated_and_trailing_bytes():
    data = packed(env())
    with pytest.raises(ProtocolError, match="truncated"):
        decode(data[:-1])
    with pytest.raises(ProtocolError, match="trailing bytes"):
        decode(data + b"\xc0")


def test_deep_nesting_is_rejected_not_recursed():
    with pytest.raises(ProtocolError):
        decode(b"\x91" * 100_000 + b"\xc0")


def test_encode_refuses_what_decode_would_refuse():
    with pytest.raises(ProtocolError, match="expected n = 1"):
        encode(
            Message(
                MsgType.FRAME_BEGIN, "cam1", body={"w": 1, "h": 1, "c": 1, "patch": 1, "n": 2, "codec": "raw"}
            )
        )
    with pytest.raises(ValueError):
        encode(Message(99, "cam1"))


def test_error_message_is_clipped_and_retry_flag_follows_code():
    msg = error_message(ErrorCode.BUSY, "é" * 1000)
    assert len(msg.body["msg"].encode()) <= limits.MAX_ERROR_TEXT and msg.body["retry"] is True
    assert decode(encode(msg)) == msg
    assert error_message(ErrorCode.INVALID, "x").body["retry"] is False


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=512))
def test_random_bytes_only_ever_raise_protocol_error(data):
    try:
        decode(data)
    except ProtocolError:
        pass


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.text(max_size=8),
        st.one_of(
            st.integers(-(2**63), 2**64 - 1),
            st.binary(max_size=8),
            st.text(max_size=8),
            st.none(),
            st.floats(),
        ),
        max_size=8,
    )
)
def test_random_envelopes_only_ever_raise_protocol_error(d):
    d = {"v": 1, "t": 12, "d": "cam1", "s": 1, **d}
    try:
        decode(msgpack.packb(d))
    except ProtocolError:
        pass


@settings(max_examples=100, deadline=None)
@given(
    st.integers(0, limits.MAX_SEQ),
    st.integers(0, limits.MAX_SEQ),
    st.integers(0, 4095),
    st.binary(max_size=2048),
)
def test_patch_roundtrip_property(seq, frame, idx, payload):
    msg = Message(MsgType.LATENT_PATCH, "dev-1.a_b", seq, frame, 5, {"i": idx, "p": payload})
    assert decode(encode(msg)) == msg
