"""The integer arithmetic coder: round trips, Cython == reference byte for byte, hostile input."""

import hashlib
import io
import os
import tokenize
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_sdk.codec import arith, arith_ref
from edge_sdk.errors import BitstreamError, InputError

CODEC_DIR = Path(arith.__file__).parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(condition: bool, why: str) -> None:
    """As tests/conftest.py: skip locally, fail in CI (where the extension must be built)."""
    if not condition:
        (pytest.fail if IN_CI else pytest.skip)(why)


@pytest.fixture(scope="module")
def cython_coder():
    require(arith.AVAILABLE, f"codec extension not built: {arith.IMPORT_ERROR}")
    return "cython"


def _planes(seed, shape, p_one=0.5, smooth=False):
    rng = np.random.default_rng(seed)
    if smooth:  # spatially correlated bits: thresholded cumulative noise
        field = rng.normal(size=shape).cumsum(axis=2).cumsum(axis=1)
        return (field > np.median(field)).astype(np.uint8)
    return (rng.random(shape) < p_one).astype(np.uint8)


plane_cases = st.tuples(
    st.integers(0, 2**32 - 1),
    st.integers(1, 3),
    st.integers(0, 3),
    st.integers(0, 9),
    st.integers(0, 9),
    st.floats(0.0, 1.0),
    st.booleans(),
)


@settings(max_examples=60, deadline=None)
@given(plane_cases)
def test_reference_round_trip(case):
    seed, group, n_groups, h, w, p_one, smooth = case
    planes = _planes(seed, (group * n_groups, h, w), p_one, smooth and h * w > 0 and n_groups > 0)
    data = arith.encode_planes(planes, group, backend="reference")
    assert np.array_equal(arith.decode_planes(data, planes.shape, group, backend="reference"), planes)


@settings(max_examples=150, deadline=None)
@given(plane_cases)
def test_cython_writes_the_reference_bytes_and_both_decode_both(cython_coder, case):
    seed, group, n_groups, h, w, p_one, smooth = case
    planes = _planes(seed, (group * n_groups, h, w), p_one, smooth and h * w > 0 and n_groups > 0)
    data = arith.encode_planes(planes, group, backend="cython")
    assert data == arith.encode_planes(planes, group, backend="reference")
    for backend in ("cython", "reference"):
        assert np.array_equal(arith.decode_planes(data, planes.shape, group, backend=backend), planes)


def test_identical_bytes_on_a_long_skewed_stream(cython_coder):
    planes = np.concatenate([_planes(7, (4, 64, 64), 0.02), _planes(8, (4, 64, 64), smooth=True)])
    data = arith.encode_planes(planes, 4, backend="cython")
    assert data == arith.encode_planes(planes, 4, backend="reference")
    assert np.array_equal(arith.decode_planes(data, planes.shape, 4, backend="reference"), planes)


# The coder is integer-only, so these bytes are the same on every machine, OS and Python.
GOLDEN_SHA256 = "73c2d0742a288938591423e4be6f92331f627d53bbf5fe14c298acbe0937f133"


def _golden_input():
    y, x = np.mgrid[0:48, 0:40]
    values = ((x * 3 + y * 5) // 7 + (x * y) % 3) % 16
    return np.stack([(values >> b) & 1 for b in (3, 2, 1, 0)]).astype(np.uint8)


def test_golden_stream_is_pinned():
    data = arith.encode_planes(_golden_input(), 4, backend="reference")
    assert hashlib.sha256(data).hexdigest() == GOLDEN_SHA256
    assert np.array_equal(arith.decode_planes(data, (4, 48, 40), 4), _golden_input())


def test_compression_follows_the_statistics():
    n = 8 * 32 * 32
    constant = np.zeros((8, 32, 32), np.uint8)
    assert len(arith.encode_planes(constant, 8)) < 16
    skewed = _planes(1, (8, 32, 32), 0.05)
    assert len(arith.encode_planes(skewed, 8)) < 0.45 * n / 8  # H(0.05) = 0.29 bit
    fair = _planes(2, (8, 32, 32), 0.5)
    assert n / 8 - 4 < len(arith.encode_planes(fair, 8)) < 1.04 * n / 8
    smooth = _planes(3, (8, 32, 32), smooth=True)
    assert len(arith.encode_planes(smooth, 8)) < 0.5 * n / 8  # the neighbour contexts pay


def test_empty_input_is_an_empty_stream():
    assert arith.encode_planes(np.zeros((0, 4, 4), np.uint8)) == b""
    assert arith.decode_planes(b"", (0, 4, 4)).shape == (0, 4, 4)
    assert arith.decode_planes(b"", (2, 3, 3)).shape == (2, 3, 3)  # zeros past the end are valid input


@pytest.mark.parametrize("backend", ["reference", "cython"])
def test_hostile_streams_raise_bitstream_error_or_decode_bounded(backend):
    if backend == "cython":
        require(arith.AVAILABLE, f"codec extension not built: {arith.IMPORT_ERROR}")
    rng = np.random.default_rng(5)
    planes = _planes(6, (6, 12, 12), smooth=True)
    good = arith.encode_planes(planes, 3)
    candidates = [good[:k] for k in range(len(good))] + [good + b"\x01", good + b"\x00" * 3, b"\xff" * 64]
    candidates += [bytes(rng.integers(0, 256, int(rng.integers(0, 80)), dtype=np.uint8)) for _ in range(300)]
    for data in candidates:
        try:
            out = arith.decode_planes(data, planes.shape, 3, backend=backend)
        except BitstreamError:
            continue
        assert out.shape == planes.shape and out.max(initial=0) <= 1


def test_trailing_bytes_are_rejected_with_expected_and_found():
    planes = _planes(9, (2, 8, 8), 0.3)
    data = arith.encode_planes(planes, 1)
    with pytest.raises(BitstreamError, match=r"at most \d+ bytes, found"):
        arith.decode_planes(data + b"\x07" * 8, planes.shape, 1)


@pytest.mark.parametrize(
    "call",
    [
        lambda: arith.encode_planes([[[0, 1]]]),
        lambda: arith.encode_planes(np.zeros((1, 2, 2), np.int32)),
        lambda: arith.encode_planes(np.zeros((2, 2), np.uint8)),
        lambda: arith.encode_planes(np.full((1, 2, 2), 2, np.uint8)),
        lambda: arith.encode_planes(np.zeros((3, 2, 2), np.uint8), group=2),
        lambda: arith.encode_planes(np.zeros((1, 2, 2), np.uint8), group=0),
        lambda: arith.encode_planes(np.zeros((17, 1, 1), np.uint8), group=17),
        lambda: arith.decode_planes(b"", (1, 2)),
        lambda: arith.decode_planes(b"", (1, -2, 2)),
        lambda: arith.decode_planes(b"", (1, 1 << 13, 1 << 13)),
        lambda: arith.decode_planes("text", (1, 2, 2)),
        lambda: arith.encode_planes(np.zeros((1, 2, 2), np.uint8), backend="gpu"),
    ],
)
def test_arguments_are_validated_before_any_indexing(call):
    with pytest.raises(InputError):
        call()


def test_backend_selection(monkeypatch):
    monkeypatch.setenv("EDGE_SDK_CODEC_BACKEND", "reference")
    assert arith.resolve_backend() == "reference"
    monkeypatch.delenv("EDGE_SDK_CODEC_BACKEND")
    assert arith.resolve_backend("auto") == ("cython" if arith.AVAILABLE else "reference")


def _code_tokens(path: Path):
    return [
        t
        for t in tokenize.generate_tokens(io.StringIO(path.read_text()).readline)
        if t.type not in (tokenize.STRING, tokenize.COMMENT)
    ]


@pytest.mark.parametrize("name", ["_arith.pyx", "arith_ref.py"])
def test_no_floating_point_anywhere_in_the_coder(name):
    tokens = _code_tokens(CODEC_DIR / name)
    names = {t.string for t in tokens if t.type == tokenize.NAME}
    assert not names & {"float", "double", "float32", "float64", "true_divide"}
    assert not [t for t in tokens if t.type == tokenize.OP and t.string in ("/", "/=")]
    assert not [
        t
        for t in tokens
        if t.type == tokenize.NUMBER
        and any(c in t.string.lower() for c in ".ej")
        and not t.string.lower().startswith("0x")
    ]


def test_shift_table_matches_the_spec():
    expected = [min(1 + int(np.floor(np.log2(n + 1))), 7) for n in range(256)]
    assert list(arith_ref.SHIFT_TABLE) == expected


def test_extension_checks_its_own_arguments(cython_coder):
    from edge_sdk.codec import _arith

    for args in [
        (b"abc", 1 << 21, 1 << 21, 1 << 22, 1),
        (b"", -1, 2, 2, 1),
        (b"", 2, 2, 2, 0),
        (b"x", 3, 2, 2, 2),
    ]:
        with pytest.raises(ValueError):
            _arith.decode_planes(*args)  # a C product that would overflow is computed in Python ints
    for bad in (
        np.zeros((2, 2, 2), np.int32),
        np.zeros((2, 2), np.uint8),
        np.zeros((2, 2, 4), np.uint8)[:, :, ::2],
    ):
        with pytest.raises(ValueError):
            _arith.encode_planes(bad, 1)
    ones = np.ones((2, 3, 3), np.uint8)
    assert _arith.encode_planes(ones * 7, 1) == _arith.encode_planes(
        ones, 1
    )  # non-zero is 1, contexts stay in range
