"""Frame assembly with the raw decoder: exact reconstruction, concealment, reporting."""

from __future__ import annotations

import numpy as np
import pytest

from edge_sdk.server.assembler import assemble, write_png
from edge_sdk.server.decoders import DecodedFrame, DecoderError, FrameDecoder, FrameGeometry, register_decoder


def patches_of(img, p):
    h, w, c = img.shape
    g = FrameGeometry(w, h, c, p, -(-h // p) * -(-w // p), "raw")
    out = {}
    for i in range(g.n_patches):
        y0, x0, y1, x1 = g.box(i)
        tile = np.zeros((p, p, c), np.uint8)
        tile[: y1 - y0, : x1 - x0] = img[y0:y1, x0:x1]
        out[i] = tile.tobytes()
    return g, out


def test_raw_roundtrip_is_exact_including_ragged_borders():
    img = np.random.default_rng(0).integers(0, 256, (50, 70, 3), dtype=np.uint8)
    g, patches = patches_of(img, 16)
    out, report = assemble(g, patches)
    assert np.array_equal(out, img)
    assert report.missing == [] and report.concealed == []


def test_missing_patch_is_concealed_from_neighbours_and_reported():
    img = np.full((48, 48, 3), 200, np.uint8)
    img[:, 32:] = 10  # right column of patches is dark
    g, patches = patches_of(img, 16)
    del patches[4]  # the centre patch (row 1, col 1)
    out, report = assemble(g, patches)
    assert report.missing == [4] and report.concealed == [4]
    centre = out[16:32, 16:32]
    # neighbours: top/bottom/left 200, right 10 -> mean of their border pixels
    assert np.all(centre == round((200 * 3 + 10) / 4))
    untouched = np.ones((48, 48), bool)
    untouched[16:32, 16:32] = False
    assert np.array_equal(out[untouched], img[untouched])  # only the missing patch changed


def test_corrupt_payload_is_concealed_and_reported_as_corrupt():
    img = np.full((32, 32, 1), 77, np.uint8)
    g, patches = patches_of(img, 16)
    patches[2] = b"short"
    out, report = assemble(g, patches)
    assert report.corrupt == [2] and report.missing == [] and report.concealed == [2]
    assert np.all(out == 77)


def test_nothing_received_gives_grey_frame():
    g = FrameGeometry(32, 32, 3, 16, 4, "raw")
    out, report = assemble(g, {})
    assert report.missing == [0, 1, 2, 3] and np.all(out == 128)


def test_unknown_codec_is_a_decoder_error():
    with pytest.raises(DecoderError, match="no frame decoder for codec 'learned-v9'"):
        assemble(FrameGeometry(16, 16, 3, 16, 1, "learned-v9"), {})


def test_pluggable_decoder_that_handles_missing_itself():
    class Solid(FrameDecoder):
        codec = "solid"
        handles_missing = True

        def decode(self, geometry, patches):
            return DecodedFrame(
                np.full((geometry.height, geometry.width, geometry.channels), 9, np.uint8), []
            )

    register_decoder("solid", Solid)
    out, report = assemble(FrameGeometry(32, 16, 3, 16, 2, "solid"), {0: b""})
    assert np.all(out == 9) and report.missing == [1] and report.concealed == []


def test_png_written_atomically(tmp_path):
    img = np.random.default_rng(1).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    write_png(img, tmp_path / "a" / "b.png")
    from PIL import Image

    assert np.array_equal(np.asarray(Image.open(tmp_path / "a" / "b.png")), img)
    assert not list(tmp_path.rglob("*.tmp"))
