"""Bad inputs raise InputError / BackendError (never crash); threads; the missing-extension fallback."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_sdk import BackendError, InputError, SRAMOverflowError
from edge_sdk.builder import NetworkBuilder
from edge_sdk.runtime.device import Device
from edge_sdk.runtime.reference import run_reference
from edge_sdk.tiling import Tile, make_tile


def _backend():
    from edge_sdk.runtime.emulator import EmulatorBackend

    return EmulatorBackend()


def _net(pid="lightspeeur-2803"):
    b = NetworkBuilder(pid, (9, 8, 3), seed=0)
    x = b.conv(8)
    y = b.conv(8, kernel=1)
    b.add(x, y)
    b.maxpool()
    b.conv(4, output="raw")
    b.gap()
    return b.build()


@pytest.mark.parametrize(
    "frame",
    [
        np.zeros((9, 8, 3), np.float32),
        np.zeros((9, 8, 3), np.int16),
        np.zeros((8, 9, 3), np.uint8),
        np.zeros((9, 8, 1), np.uint8),
        np.zeros((9, 8), np.uint8),
        np.zeros((2, 2, 9, 8, 3), np.uint8),
        [[0] * 3] * 9,
        None,
        "frame",
    ],
)
def test_bad_frames_raise_input_error(emulator_available, frame):
    dev = Device(_backend()).load(_net())
    with pytest.raises(InputError):
        dev.run(frame)


def test_non_contiguous_and_readonly_frames(emulator_available):
    net = _net()
    dev = Device(_backend()).load(net)
    big = np.random.default_rng(0).integers(0, 256, (18, 16, 6), dtype=np.uint8)
    frame = big[::2, ::2, ::2]
    frame.flags.writeable = False
    want = run_reference(net, np.ascontiguousarray(frame))
    assert np.array_equal(dev.run(frame).codes, want[net.n_chip - 1])


def test_backend_contract_misuse(emulator_available):
    net = _net()
    be = _backend()
    layer = net.layers[0]
    tile = make_tile(net, layer, 0, layer.out_shape[0], 0, layer.out_shape[2])
    band = np.zeros((tile.in_rows, 8, 3), np.uint8)
    with pytest.raises(BackendError, match="load"):
        be.write_tile(0, band)
    with pytest.raises(BackendError, match="load"):
        be.run(0, tile)
    with pytest.raises(BackendError):
        be.load("not a network")
    be.load(net)
    with pytest.raises(BackendError):
        be.read_tile()  # nothing run yet
    with pytest.raises(BackendError):
        be.run(0, tile)  # nothing written
    for bad in (band.astype(np.int16), band.astype(np.float32), band[0], [[1]], None):
        with pytest.raises(BackendError):
            be.write_tile(0, bad)
    with pytest.raises(BackendError):
        be.write_tile(2, band)
    # wrong band shape for the tile
    be.write_tile(0, np.zeros((tile.in_rows - 1, 8, 3), np.uint8))
    with pytest.raises(BackendError, match="band"):
        be.run(0, tile)
    be.write_tile(0, np.zeros((tile.in_rows, 8, 4), np.uint8))
    with pytest.raises(BackendError, match="band"):
        be.run(0, tile)
    # bad layer indices and tiles
    for index in (-1, 6, len(net.layers), 1.0, "0", True, None):
        be.write_tile(0, band)
        with pytest.raises(BackendError):
            be.run(index, tile)
    for bad_tile in (
        None,
        (0, 9, 0, 8),
        tile.__class__(*[0] * 10),
        Tile(0, 10, 0, 8, 0, 9, 1, 1, 0, 3),  # past the last row
        Tile(0, 9, 0, 8, 0, 9, 0, 1, 0, 3),  # wrong halo
        Tile(0, 9, 4, 8, 0, 9, 1, 1, 0, 3),  # past the last channel
        Tile(0, 9, 0, 8, 0, 9, 1, 1, 0, 2),
    ):  # wrong input channels
        be.write_tile(0, band)
        with pytest.raises(BackendError):
            be.run(0, bad_tile)
    # add needs both operands
    add_layer = net.layers[2]
    t2 = make_tile(net, add_layer, 0, 9, 0, 8)
    be.write_tile(0, np.zeros((9, 8, 8), np.uint8))
    with pytest.raises(BackendError, match="slot 1"):
        be.run(2, t2)
    # a correct sequence still works after all that
    be.write_tile(0, band)
    be.run(0, tile)
    assert be.read_tile().shape == (9, 8, 8)


def test_codes_above_the_input_range_raise_input_error(emulator_available):
    net = _net()
    be = _backend()
    be.load(net)
    layer = net.layers[4]  # reads 5-bit codes
    t = make_tile(net, layer, 0, layer.out_shape[0], 0, layer.out_shape[2])
    band = np.zeros((t.in_rows, layer.in_shape[1], t.in_chn), np.uint8)
    band[0, 0, 0] = 32
    be.write_tile(0, band)
    with pytest.raises(InputError, match="codes above"):
        be.run(4, t)


def test_invalid_network_rejected_at_load(emulator_available):
    from edge_sdk import ProfileError

    net = _net()
    net.layers[0].codes[0, 0, 0, 0] = 100  # outside the weight mode
    with pytest.raises(ProfileError):
        _backend().load(net)


def test_unknown_isa_raises_backend_error(emulator_available):
    from edge_sdk.runtime.emulator import EmulatorBackend

    with pytest.raises(BackendError, match="unknown kernel variant"):
        EmulatorBackend("sse9")


def test_two_devices_in_two_threads(emulator_available):
    nets = [_net("lightspeeur-2803"), _net("nqe-1mb")]
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (9, 8, 3), dtype=np.uint8) for _ in range(4)]
    expected = [[run_reference(net, f)[net.n_chip - 1] for f in frames] for net in nets]
    errors, barrier = [], threading.Barrier(2)

    def worker(k):
        try:
            dev = Device(_backend()).load(nets[k])
            barrier.wait()
            for _ in range(25):
                for f, want in zip(frames, expected[k]):
                    assert np.array_equal(dev.run(f).codes, want)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def test_same_network_two_threads_identical(emulator_available):
    from edge_sdk.builder import vgg_style

    net = vgg_style("lightspeeur-2803", 48, (16, 32), bits=5)
    frame = np.random.default_rng(1).integers(0, 256, (48, 48, 3), dtype=np.uint8)
    results = [None, None]

    def worker(k):
        dev = Device(_backend()).load(net)
        results[k] = [dev.run(frame).codes for _ in range(5)]

    threads = [threading.Thread(target=worker, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    want = run_reference(net, frame)[net.n_chip - 1]
    for res in results:
        assert all(np.array_equal(r, want) for r in res)


def test_missing_extension_fallback():
    """Without the compiled module: import works, AVAILABLE False, a clear message, BackendError, auto -> reference."""
    code = textwrap.dedent("""
        import sys, warnings
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name == "edge_sdk.runtime._emulator":
                    raise ImportError("blocked for the test")
        sys.meta_path.insert(0, Block())
        import numpy as np
        import edge_sdk
        from edge_sdk.runtime import emulator
        assert emulator.AVAILABLE is False
        assert "build_ext --inplace" in emulator.IMPORT_ERROR and "_emulator" in emulator.IMPORT_ERROR
        try:
            emulator.EmulatorBackend()
        except edge_sdk.BackendError as exc:
            assert "build_ext" in str(exc)
        else:
            raise SystemExit("EmulatorBackend() did not raise")
        try:
            edge_sdk.Device("emulator")
        except edge_sdk.BackendError:
            pass
        else:
            raise SystemExit("Device('emulator') did not raise")
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            dev = edge_sdk.Device("auto")
        assert dev.backend.name == "reference"
        assert any("unavailable" in str(x.message) for x in w)
        print("ok")
    """)
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**__import__("os").environ, "EDGE_SDK_BACKEND": "auto"},
    )
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stdout + out.stderr


@settings(max_examples=300, deadline=None)
@given(
    rows=st.integers(0, 6),
    w=st.integers(1, 6),
    c=st.integers(1, 6),
    pads=st.tuples(*[st.integers(-1, 3)] * 4),
    k=st.sampled_from([0, 1, 2, 3]),
    s=st.sampled_from([0, 1, 2, 3]),
    out_rows=st.integers(-1, 6),
    out_w=st.integers(-1, 6),
    ch0=st.integers(-2, 8),
    chn=st.integers(-1, 8),
    gi=st.integers(-1, 4),
    go=st.integers(-1, 4),
    in_ch0=st.integers(-2, 6),
    o=st.integers(1, 8),
    wshape=st.tuples(st.integers(1, 10), st.sampled_from([9, 32, 64, 5])),
    shift=st.integers(-2, 40),
    raw=st.booleans(),
    code_max=st.integers(-1, 300),
    isa=st.integers(-1, 6),
)
def test_kernel_wrapper_never_crashes(
    emulator_available,
    rows,
    w,
    c,
    pads,
    k,
    s,
    out_rows,
    out_w,
    ch0,
    chn,
    gi,
    go,
    in_ch0,
    o,
    wshape,
    shift,
    raw,
    code_max,
    isa,
):
    """Random (mostly invalid) arguments: conv_tile returns a correct-shape array or raises ValueError."""
    from edge_sdk.runtime import _emulator as K

    rng = np.random.default_rng(rows * 7 + w)
    band = rng.integers(0, 32, (rows, w, c), dtype=np.uint8)
    weights = rng.integers(-50, 50, wshape).astype(np.int16)
    bias = np.zeros(o, np.int32)
    try:
        out = K.conv_tile(
            band,
            *pads,
            k,
            s,
            out_rows,
            out_w,
            ch0,
            chn,
            gi,
            go,
            in_ch0,
            weights,
            bias,
            shift,
            False,
            31,
            raw,
            code_max,
            isa,
        )
    except (ValueError, OverflowError):
        return
    assert out.shape == (out_rows, out_w, chn)


def test_kernel_wrapper_rejects_bad_arrays(emulator_available):
    from edge_sdk.runtime import _emulator as K

    band = np.zeros((3, 3, 2), np.uint8)
    w = np.zeros((2, 32), np.int16)
    b = np.zeros(2, np.int32)
    args = (1, 1, 1, 1, 3, 1, 3, 3, 0, 2, 2, 2, 0)
    assert K.conv_tile(band, *args, w, b, 0, False, 31, False, 31).shape == (3, 3, 2)
    for bad in (
        band.astype(np.int8),
        band[:, :, :1].copy()[:, :, 0],
        np.asfortranarray(np.zeros((3, 3, 2), np.uint8)),
        band[:, ::2],
        None,
        [1, 2],
    ):
        with pytest.raises(ValueError):
            K.conv_tile(bad, *args, w, b, 0, False, 31, False, 31)
    for bad_w in (w.astype(np.int32), w[:, :31].copy(), w[:1], np.zeros((2, 16), np.int16)):
        with pytest.raises(ValueError):
            K.conv_tile(band, *args, bad_w, b, 0, False, 31, False, 31)
    with pytest.raises(ValueError):
        K.conv_tile(band, *args, w, b[:1].copy(), 0, False, 31, False, 31)
    with pytest.raises(ValueError):
        K.maxpool(np.zeros((2, 2), np.uint8))
    with pytest.raises(ValueError):
        K.add(np.zeros((2, 2, 2), np.uint8), np.zeros((2, 2, 3), np.uint8), 1, 1, 0, False, 31, False)
    with pytest.raises(ValueError):
        K.requantize(np.zeros(3, np.int64), 0, False, 31, False)
    assert K.maxpool(np.zeros((1, 5, 2), np.uint8)).shape == (0, 2, 2)
    assert K.maxpool(np.zeros((3, 1, 2), np.uint8)).shape == (1, 0, 2)


def test_sram_error_is_a_backend_error():
    assert issubclass(SRAMOverflowError, BackendError)
