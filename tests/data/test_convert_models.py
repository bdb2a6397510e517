"""Acceptance on the shared models: MLPerf-Tiny ResNet-8 (float and int8), Coral MobileNet-V1 0.25, KWS DS-CNN.

The chip runs on the emulator when it is built ("auto"), else on the numpy reference backend.
Calibration uses CIFAR-10 *training* images (JPEG copies), never the test set; accuracy is measured on
the 1,000 pixel-exact test images.
"""

import glob
import warnings

import numpy as np
import pytest

from edge_sdk.convert import convert_detailed, import_tflite
from edge_sdk.convert.data import load_image, load_images
from edge_sdk.convert.float_exec import run_pixels
from edge_sdk.convert.importer import run_litert
from edge_sdk.convert.inputpad import prepare_frames
from edge_sdk.errors import UnsupportedOpError
from edge_sdk.firmware import load_firmware, write_firmware
from edge_sdk.runtime import Device

pytest.importorskip("ai_edge_litert")


@pytest.fixture(scope="module")
def cifar(shared_data):
    train = np.load(shared_data / "cifar10" / "cifar10_train_20k.npz")
    test = np.load(shared_data / "cifar10" / "cifar10_test.npz")
    return train["x_jpeg"][:1000], test["x_exact"], test["y"][test["idx_exact"]].astype(np.int64)


def _device_top1(net, x):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "auto" warns when it falls back to the reference backend
        dev = Device("auto").load(load_firmware(write_firmware(net)))
    return dev.run(prepare_frames(net.metadata, x)).output.argmax(axis=1)


def test_float_executor_matches_litert(shared_data, cifar):
    _, x, _ = cifar
    model = import_tflite(shared_data / "models" / "mlperf_tiny" / "pretrainedResnet.tflite")
    np.testing.assert_allclose(run_pixels(model.graph, x[:100]), run_litert(model, x[:100]), atol=1e-4)
    quant = import_tflite(shared_data / "models" / "mlperf_tiny" / "pretrainedResnet_quant.tflite")
    agree = (run_pixels(quant.graph, x[:300]).argmax(1) == run_litert(quant, x[:300]).argmax(1)).mean()
    assert agree >= 0.95  # the int8 graph dequantized and run in float, vs LiteRT's integer kernels


def test_resnet8_float_5bit_within_one_point(shared_data, cifar):
    calib, x, y = cifar
    path = shared_data / "models" / "mlperf_tiny" / "pretrainedResnet.tflite"
    res = convert_detailed(path, profile="lightspeeur-2803", calib=calib, bits=5, sqnr=False)
    float_acc = (run_litert(res.imported, x).argmax(1) == y).mean()
    acc = (_device_top1(res.network, x) == y).mean()
    assert float_acc == pytest.approx(0.881, abs=0.005)
    assert acc >= float_acc - 0.010, f"chip {acc:.3f} vs float {float_acc:.3f}"
    assert all(layer.weight_bits == 5 for layer in res.network.chip_layers)


def test_resnet8_int8_5bit(shared_data, cifar):
    calib, x, y = cifar
    path = shared_data / "models" / "mlperf_tiny" / "pretrainedResnet_quant.tflite"
    res = convert_detailed(path, profile="lightspeeur-2803", calib=calib, bits=5, sqnr=False)
    int8_acc = (run_litert(res.imported, x).argmax(1) == y).mean()
    acc = (_device_top1(res.network, x) == y).mean()
    assert acc >= int8_acc - 0.020, f"chip {acc:.3f} vs LiteRT int8 {int8_acc:.3f}"  # measured: -1.3 points


MOBILENET_OPTIONS = dict(relu6_cap=None, calib_method="mse", per_channel_caps=True, recon_ridge=0.1)


@pytest.fixture(scope="module")
def mobilenet(shared_data):
    """Converted MobileNet-V1 0.25/128 (options chosen on held-out images, not on Coral's test photos)."""
    from PIL import Image

    shape = (128, 128, 3)
    crops, rng = [], np.random.default_rng(0)
    # Not hires/coral_cat_1080p.jpg: it is the same photo as the test image cat.bmp.
    for p in sorted(glob.glob(str(shared_data / "hires" / "*.png"))):
        with Image.open(p) as im:
            im = im.convert("RGB")
            w, h = im.size
            for _ in range(8):
                s = int(rng.integers(min(w, h) // 4, min(w, h) // 2))
                x0, y0 = int(rng.integers(0, w - s)), int(rng.integers(0, h - s))
                crops.append(np.asarray(im.crop((x0, y0, x0 + s, y0 + s)).resize((128, 128), Image.BILINEAR)))
    calib = np.concatenate([load_images(shared_data / "kodak", shape), np.stack(crops)])
    path = shared_data / "models" / "coral" / "mobilenet_v1_0.25_128_quant.tflite"
    res = convert_detailed(
        path, profile="lightspeeur-2803", calib=calib, bits=5, sqnr=False, **MOBILENET_OPTIONS
    )
    photos = np.stack(
        [
            load_image(p, shape)
            for p in sorted(glob.glob(str(shared_data / "models" / "coral" / "test_images" / "*")))
        ]
    )
    return res, photos


def test_mobilenet_matches_tflite_on_most_coral_photos(mobilenet):
    res, photos = mobilenet
    assert res.network.metadata["input"]["host_pad"]["pad_value"] == [128, 128, 128]  # real 0 for x/128 - 1
    ours, theirs = _device_top1(res.network, photos), run_litert(res.imported, photos).argmax(1)
    assert (ours == theirs).sum() >= 4, (ours, theirs)


@pytest.mark.xfail(strict=True, reason="measured 4/5: sunflower.bmp gives 393, the .tflite 986")
def test_mobilenet_matches_tflite_on_all_coral_photos(mobilenet):
    res, photos = mobilenet
    assert (_device_top1(res.network, photos) == run_litert(res.imported, photos).argmax(1)).all()


@pytest.mark.parametrize("name", ["kws_ref_model.tflite", "kws_ref_model_float32.tflite"])
def test_kws_dscnn_fails_with_a_typed_error(shared_data, name):
    x = np.zeros((4, 49, 10, 1), np.uint8)
    with pytest.raises(UnsupportedOpError) as err:
        convert_detailed(shared_data / "models" / "mlperf_tiny" / name, profile="lightspeeur-2803", calib=x)
    assert err.value.op == "CONV_2D" and err.value.layer == "conv_2d_0" and "10x4" in str(err.value)
