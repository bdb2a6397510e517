"""Starting QAT from a .tflite conv chain (MobileNet-V1) and distilling from its inner logits."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("ai_edge_litert")

from edge_sdk.convert.data import load_image  # noqa: E402
from edge_sdk.convert.importer import import_tflite, run_litert  # noqa: E402
from edge_sdk.errors import UnsupportedOpError  # noqa: E402
from edge_sdk.train import QNet  # noqa: E402
from edge_sdk.train.teacher import TFLiteTeacher  # noqa: E402
from edge_sdk.train.tflite_init import chain_spec, load_chain  # noqa: E402

MOBILENET = ("models", "coral", "mobilenet_v1_0.25_128_quant.tflite")
LOGITS = "MobilenetV1/Logits/SpatialSqueeze1"


@pytest.fixture(scope="module")
def mobilenet(shared_data):
    path = shared_data.joinpath(*MOBILENET)
    photos = np.stack([load_image(p, (128, 128, 3)) for p in sorted((path.parent / "test_images").iterdir())])
    return path, import_tflite(path), photos


def test_chain_spec_reads_mobilenet(mobilenet):
    _, imported, _ = mobilenet
    spec = chain_spec(imported.graph, 5, first_pad=(0, 0, 0, 0))
    assert len(spec) == 27 and {s["bits"] for s in spec} == {5}
    assert spec[0]["pad"] == (0, 0, 0, 0) and spec[0]["s"] == 2
    depthwise = [s for s in spec if s["g"] > 1]
    assert len(depthwise) == 13 and all(s["g"] == s["out"] and s["k"] == 3 for s in depthwise)
    assert [s["s"] for s in depthwise].count(2) == 4
    assert all(s["k"] == 1 and s["g"] == 1 for s in spec[2::2])


def test_chain_spec_names_the_op_it_cannot_take(shared_data):
    imported = import_tflite(shared_data / "models" / "mlperf_tiny" / "pretrainedResnet.tflite")
    with pytest.raises(UnsupportedOpError) as err:
        chain_spec(imported.graph, 2)
    assert err.value.op == "ADD" and err.value.layer.startswith("add")


def test_teacher_reads_inner_logits_one_frame_at_a_time(mobilenet):
    """The model's Reshape is fixed to batch 1: the teacher falls back to frame by frame, and
    its pre-softmax logits rank the classes as the .tflite's softmax output does."""
    path, imported, photos = mobilenet
    teacher = TFLiteTeacher(path, scale=1 / 128, offset=-1.0, tensor=LOGITS)
    logits = teacher(torch.from_numpy(photos))
    assert logits.shape == (5, 1001)
    assert np.array_equal(logits.argmax(1).numpy(), run_litert(imported, photos).argmax(1))
    padded = np.pad(photos, ((0, 0), (0, 1), (0, 1), (0, 0)), constant_values=128)
    cropped = TFLiteTeacher(path, scale=1 / 128, offset=-1.0, tensor=LOGITS, input_crop=(128, 128))
    assert torch.equal(cropped(torch.from_numpy(padded)), logits)


def test_load_chain_matches_the_tflite_before_activation_quantization(mobilenet):
    """Float weights loaded, the input offset folded into the unpadded first conv (the host pads
    with pixel 128 = real 0), channels equalized: the first layer reproduces the .tflite's
    float first layer on the chip's 5-bit input codes."""
    path, imported, photos = mobilenet
    padded = np.pad(photos, ((0, 0), (0, 1), (0, 1), (0, 0)), constant_values=128)
    g = imported.graph
    model = QNet("lightspeeur-2803", padded.shape[1:], chain_spec(g, 5, (0, 0, 0, 0)), classes=1001)
    load_chain(model, g, padded, equalize=0.0)
    model.set_stage("float")
    model.eval()
    with torch.no_grad():
        _, taps = model(torch.from_numpy(padded), taps=True)
    codes = np.minimum(np.floor((np.floor(photos / 4.0) + 1) / 2), 31)
    from edge_sdk.convert.float_exec import conv2d

    a = g.nodes[0].attrs
    ref = np.maximum(conv2d(codes / 16 - 1, a["w"], a["b"], (2, 2), a["pad"], 1), 0)
    got = taps[0].permute(0, 2, 3, 1).numpy()
    # BN is set for 5-bit weights (bias and variance correction), so not bit-equal to float
    assert np.corrcoef(got.ravel(), ref.ravel())[0, 1] > 0.99


def test_relu6_caps_clip_where_relu6_clips(mobilenet):
    """relu6_caps: every cap is 6; channels are only scaled up (never down), so a channel that
    reaches 6 keeps ReLU6's clip exactly and a quieter one uses more of the 5-bit codes."""
    path, imported, photos = mobilenet
    padded = np.pad(photos, ((0, 0), (0, 1), (0, 1), (0, 0)), constant_values=128)
    g = imported.graph
    plain = QNet("lightspeeur-2803", padded.shape[1:], chain_spec(g, 5, (0, 0, 0, 0)), classes=1001)
    load_chain(plain, g, padded, equalize=0.0)
    model = QNet("lightspeeur-2803", padded.shape[1:], chain_spec(g, 5, (0, 0, 0, 0)), classes=1001)
    load_chain(model, g, padded, relu6_caps=True, max_ratio=8.0)
    assert all(float(n.cap) == 6.0 for n in model.nodes)
    # the per-channel gain is the BN scale ratio: 1 <= gain <= max_ratio
    for a, b in zip(plain.nodes, model.nodes):
        gain = (b.bn.weight / a.bn.weight).detach().numpy()
        assert gain.min() > 0.999 and gain.max() < 8.001
