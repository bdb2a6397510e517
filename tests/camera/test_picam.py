"""picamera2 source with a fake picamera2 module: lazy import, two streams, colours."""

from __future__ import annotations

import subprocess
import sys
import types

import numpy as np
import pytest

from edge_sdk.camera import picam


def rgb_to_i420(rgb: np.ndarray, stride: int) -> np.ndarray:
    """Inverse of the BT.601 full-range conversion, laid out like picamera2's YUV420 array."""
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    y = 0.299 * r + 0.587 * g + 0.114 * b
    u = (b - y) / 1.772 + 128
    v = (r - y) / 1.402 + 128
    h, w = y.shape
    out = np.zeros((h * 3 // 2, stride), np.uint8)
    out[:h, :w] = np.clip(np.round(y), 0, 255)
    for plane, row0 in ((u, h), (v, h + h // 4)):
        sub = np.clip(np.round(plane[::2, ::2]), 0, 255).astype(np.uint8)
        buf = np.zeros((h // 2, stride // 2), np.uint8)
        buf[:, : w // 2] = sub
        out[row0 : row0 + h // 4] = buf.reshape(h // 4, stride)
    return out


class FakeRequest:
    def __init__(self, cam):
        self.cam = cam

    def make_array(self, name):
        cfg = self.cam.config[name]
        w, h = cfg["size"]
        rgb = np.zeros((h, w, 3), np.uint8)
        rgb[..., 0], rgb[..., 1], rgb[..., 2] = 200, 100, 50
        if name == "main":
            return rgb[..., ::-1].copy()  # "RGB888" is BGR in memory
        return rgb_to_i420(rgb, stride=w + 32)  # a padded stride, as the ISP may produce

    def release(self):
        self.cam.released += 1


class FakePicamera2:
    instances = []

    def __init__(self, num=0):
        if num != 0:
            raise IndexError("list index out of range")
        self.config, self.started, self.released, self.closed = None, False, 0, False
        FakePicamera2.instances.append(self)

    def create_video_configuration(self, main, lores, buffer_count):
        return {"main": main, "lores": lores}

    def configure(self, config):
        self.config = config

    def start(self):
        self.started = True

    def capture_request(self):
        return FakeRequest(self)

    def stop(self):
        self.started = False

    def close(self):
        self.closed = True


@pytest.fixture
def fake_picamera2(monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2", types.SimpleNamespace(Picamera2=FakePicamera2))
    FakePicamera2.instances.clear()
    return FakePicamera2


def test_importing_the_camera_package_does_not_import_picamera2():
    code = "import sys, edge_sdk.camera, edge_sdk.camera.cli; print('picamera2' in sys.modules, 'cv2' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert out.strip() == "False False"


def test_missing_picamera2_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2", None)  # import fails
    with pytest.raises(picam.CameraUnavailableError, match="Raspberry Pi OS only"):
        picam.PiCameraSource()


def test_missing_camera_is_a_clear_error(fake_picamera2):
    with pytest.raises(picam.CameraUnavailableError, match="no camera 3 found"):
        picam.PiCameraSource(camera_num=3)


def test_two_streams_rgb_order_and_lores_colour(fake_picamera2):
    src = picam.PiCameraSource(main_size=(320, 240), lores_size=(32, 32))
    cam = fake_picamera2.instances[0]
    assert cam.config["lores"] == {"size": (64, 64), "format": "YUV420"}  # raised to the ISP minimum
    frames = []
    for f in src:
        frames.append(f)
        if len(frames) == 2:
            break
    src.close()
    f = frames[0]
    assert f.image.shape == (240, 320, 3) and tuple(f.image[0, 0]) == (200, 100, 50)
    assert f.lores.shape == (64, 64, 3)
    assert np.abs(f.lores.astype(int) - [200, 100, 50]).max() <= 2
    assert cam.released == 2 and cam.closed and frames[1].index == 1


@pytest.mark.parametrize(
    "chip,main,want",
    [
        ((224, 224), (1280, 720), (224, 224)),
        ((32, 32), (1280, 720), (64, 64)),
        ((100, 30), (1280, 720), (112, 64)),
        ((2000, 2000), (640, 480), (640, 480)),
    ],
)
def test_lores_size_rules(chip, main, want):
    assert picam.lores_size_for(chip, main) == want


def test_yuv_conversion_on_a_gradient():
    rng = np.random.default_rng(0)
    block = rng.integers(30, 220, (8, 8, 3)).astype(np.uint8)
    rgb = block.repeat(2, axis=0).repeat(2, axis=1)  # constant 2x2 blocks: chroma subsampling is lossless
    back = picam.yuv420_to_rgb(rgb_to_i420(rgb, stride=16), 16, 16)
    assert np.abs(back.astype(int) - rgb).max() <= 2
