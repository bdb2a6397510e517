"""Frame sources: synthetic, images, folders, animated images, videos, dispatch, errors."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from PIL import Image

from edge_sdk.camera.sources import (
    FolderSource,
    ImageFilesSource,
    SourceError,
    SyntheticSource,
    VideoFileSource,
    load_image,
    open_source,
)


def take(source, n):
    out = []
    for f in source:
        out.append(f)
        if len(out) == n:
            break
    return out


def test_synthetic_is_deterministic_and_moves():
    a = take(SyntheticSource(64, 48), 3)
    b = take(SyntheticSource(64, 48), 3)
    assert all(np.array_equal(x.image, y.image) for x, y in zip(a, b))
    assert a[0].image.shape == (48, 64, 3) and a[0].image.dtype == np.uint8
    assert not np.array_equal(a[0].image, a[1].image)
    assert [f.index for f in a] == [0, 1, 2] and a[0].ts_ns <= a[1].ts_ns and a[0].lores is None


def test_synthetic_size_bounds():
    with pytest.raises(SourceError, match="8..4096"):
        SyntheticSource(4, 4)


def test_image_files_and_folder_order(tmp_path):
    for name, value in [("b.png", 2), ("a.jpg", 1), ("c.bmp", 3)]:
        Image.fromarray(np.full((10, 12, 3), value * 40, np.uint8)).save(tmp_path / name)
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "sub").mkdir()
    frames = [f.image for f in FolderSource(tmp_path)]
    assert [int(f.mean()) for f in frames] == [40, 80, 120]  # name order, text file and subfolder skipped
    looped = take(ImageFilesSource([tmp_path / "b.png"], loop=True), 4)
    assert len(looped) == 4 and all(int(f.image.mean()) == 80 for f in looped)


def test_grey_and_rgba_images_become_rgb(tmp_path):
    Image.fromarray(np.full((5, 6), 99, np.uint8)).save(tmp_path / "g.png")
    Image.fromarray(np.full((5, 6, 4), 50, np.uint8)).save(tmp_path / "a.png")
    assert load_image(tmp_path / "g.png").shape == (5, 6, 3)
    assert load_image(tmp_path / "a.png").shape == (5, 6, 3)


def test_animated_gif_is_read_frame_by_frame(tmp_path):
    frames = [Image.fromarray(np.full((8, 8, 3), v, np.uint8)) for v in (0, 100, 200)]
    frames[0].save(tmp_path / "v.gif", save_all=True, append_images=frames[1:], duration=40)
    src = open_source(str(tmp_path / "v.gif"))
    assert isinstance(src, VideoFileSource)
    means = [round(float(f.image.mean())) for f in src]
    assert len(means) == 3 and means[0] < means[1] < means[2]


@pytest.mark.skipif(
    importlib.util.find_spec("cv2") is not None, reason="OpenCV installed: the no-OpenCV error cannot happen"
)
def test_mp4_without_opencv_is_a_clear_error(tmp_path):
    (tmp_path / "clip.mp4").write_bytes(b"\0" * 100)
    with pytest.raises(SourceError, match="needs OpenCV"):
        open_source(str(tmp_path / "clip.mp4"))


def test_dispatch_and_errors(tmp_path):
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "x.png")
    assert isinstance(open_source("synthetic:32x16"), SyntheticSource)
    assert isinstance(open_source(str(tmp_path)), FolderSource)
    assert isinstance(open_source(str(tmp_path / "x.png")), ImageFilesSource)
    with pytest.raises(SourceError, match="no such file or folder"):
        open_source(str(tmp_path / "missing.png"))
    with pytest.raises(SourceError, match="expected WxH"):
        open_source("synthetic:big")
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(SourceError, match="cannot read"):
        open_source(str(tmp_path / "bad.png"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SourceError, match="no image files"):
        open_source(str(empty))


def test_real_photos_from_shared_data(shared_data):
    src = FolderSource(shared_data / "kodak")
    first = next(iter(src))
    assert first.image.shape in ((512, 768, 3), (768, 512, 3))
