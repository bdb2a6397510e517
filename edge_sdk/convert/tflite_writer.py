"""A small ``.tflite`` writer (flatbuffer object API) for building test models without TensorFlow.

    b = TFLiteBuilder()
    x = b.input((1, 8, 8, 3))
    y = b.conv2d(x, w_ohwi, bias, stride=2, padding="SAME", act="RELU")
    y = b.op("SOFTMAX", [b.fully_connected(b.gap(y), w, bias)], ...)
    data = b.build([x], [y])

Float32 graphs, plus int8 per-channel quantized convolutions bracketed by
QUANTIZE / DEQUANTIZE (``quant=True``), which LiteRT runs like converter output.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ..litert import schema_module

_ACTS = {"NONE": 0, "RELU": 1, "RELU_N1_TO_1": 2, "RELU6": 3}


class TFLiteBuilder:
    def __init__(self) -> None:
        self.s = schema_module()
        self.tensors: list[Any] = []
        self.buffers: list[Any] = [self.s.BufferT()]
        self.opcodes: list[int] = []
        self.operators: list[Any] = []

    # ------------------------------------------------------------------ tensors
    def tensor(
        self,
        shape,
        dtype: str = "FLOAT32",
        data: Optional[np.ndarray] = None,
        name: str = "",
        scale=None,
        zero_point=None,
        qdim: int = 0,
    ) -> int:
        t = self.s.TensorT()
        t.shape = np.asarray(shape, np.int32)
        t.type = getattr(self.s.TensorType, dtype)
        t.name = (name or f"t{len(self.tensors)}").encode()
        t.buffer = 0
        if data is not None:
            buf = self.s.BufferT()
            buf.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), np.uint8)
            self.buffers.append(buf)
            t.buffer = len(self.buffers) - 1
        if scale is not None:
            q = self.s.QuantizationParametersT()
            q.scale = np.atleast_1d(np.asarray(scale, np.float32))
            q.zeroPoint = np.atleast_1d(np.asarray(zero_point if zero_point is not None else 0, np.int64))
            q.quantizedDimension = qdim
            t.quantization = q
        self.tensors.append(t)
        return len(self.tensors) - 1

    def input(self, shape, dtype: str = "FLOAT32", scale=None, zero_point=None) -> int:
        return self.tensor(shape, dtype, name="input", scale=scale, zero_point=zero_point)

    def const(self, array: np.ndarray, dtype: str = "FLOAT32", **quant) -> int:
        np_type = {"FLOAT32": np.float32, "INT32": np.int32, "INT8": np.int8, "UINT8": np.uint8}[dtype]
        arr = np.asarray(array).astype(np_type)
        return self.tensor(arr.shape, dtype, arr, **quant)

    # ------------------------------------------------------------------ ops
    def op(
        self,
        name: str,
        inputs: list[int],
        out_shape,
        options: Any = None,
        options_type: str = "",
        out_dtype: str = "FLOAT32",
        **out_quant,
    ) -> int:
        code = getattr(self.s.BuiltinOperator, name)
        if code not in self.opcodes:
            self.opcodes.append(code)
        out = self.tensor(out_shape, out_dtype, **out_quant)
        o = self.s.OperatorT()
        o.opcodeIndex = self.opcodes.index(code)
        o.inputs = np.asarray(inputs, np.int32)
        o.outputs = np.asarray([out], np.int32)
        if options is not None:
            o.builtinOptionsType = getattr(self.s.BuiltinOptions, options_type)
            o.builtinOptions = options
        self.operators.append(o)
        return out

    def shape(self, tensor: int) -> tuple[int, ...]:
        return tuple(int(v) for v in self.tensors[tensor].shape)

    @staticmethod
    def _out(size: int, k: int, s: int, padding: str) -> int:
        return -(-size // s) if padding == "SAME" else (size - k) // s + 1

    def conv2d(
        self,
        x: int,
        w_ohwi: np.ndarray,
        bias: np.ndarray,
        stride: int = 1,
        padding: str = "SAME",
        act: str = "NONE",
        depthwise: bool = False,
        wq: Optional[dict] = None,
    ) -> int:
        n, h, w, _ = self.shape(x)
        kh, kw = w_ohwi.shape[1:3]
        o = w_ohwi.shape[3] if depthwise else w_ohwi.shape[0]
        opt = self.s.DepthwiseConv2DOptionsT() if depthwise else self.s.Conv2DOptionsT()
        opt.padding = 0 if padding == "SAME" else 1
        opt.strideH = opt.strideW = stride
        opt.dilationHFactor = opt.dilationWFactor = 1
        opt.fusedActivationFunction = _ACTS[act]
        if depthwise:
            opt.depthMultiplier = 1
        wt = self.const(w_ohwi) if wq is None else self.const(w_ohwi, "INT8", **wq)
        bt = self.const(bias)
        shape = (n, self._out(h, kh, stride, padding), self._out(w, kw, stride, padding), o)
        return self.op(
            "DEPTHWISE_CONV_2D" if depthwise else "CONV_2D",
            [x, wt, bt],
            shape,
            opt,
            "DepthwiseConv2DOptions" if depthwise else "Conv2DOptions",
        )

    def pool(self, x: int, kind: str, k: int, stride: int, padding: str = "VALID") -> int:
        n, h, w, c = self.shape(x)
        opt = self.s.Pool2DOptionsT()
        opt.padding = 0 if padding == "SAME" else 1
        opt.strideH = opt.strideW = stride
        opt.filterHeight = opt.filterWidth = k
        shape = (n, self._out(h, k, stride, padding), self._out(w, k, stride, padding), c)
        return self.op(kind, [x], shape, opt, "Pool2DOptions")

    def add(self, a: int, b: int, act: str = "NONE") -> int:
        opt = self.s.AddOptionsT()
        opt.fusedActivationFunction = _ACTS[act]
        return self.op("ADD", [a, b], self.shape(a), opt, "AddOptions")

    def mean_hw(self, x: int) -> int:
        n, _, _, c = self.shape(x)
        opt = self.s.ReducerOptionsT()
        opt.keepDims = True
        return self.op(
            "MEAN", [x, self.const(np.array([1, 2]), "INT32")], (n, 1, 1, c), opt, "ReducerOptions"
        )

    def reshape(self, x: int, shape) -> int:
        return self.op("RESHAPE", [x, self.const(np.asarray(shape), "INT32")], shape)

    def fully_connected(self, x: int, w: np.ndarray, bias: np.ndarray, act: str = "NONE") -> int:
        opt = self.s.FullyConnectedOptionsT()
        opt.fusedActivationFunction = _ACTS[act]
        return self.op(
            "FULLY_CONNECTED",
            [x, self.const(w), self.const(bias)],
            (1, w.shape[0]),
            opt,
            "FullyConnectedOptions",
        )

    def softmax(self, x: int) -> int:
        opt = self.s.SoftmaxOptionsT()
        opt.beta = 1.0
        return self.op("SOFTMAX", [x], self.shape(x), opt, "SoftmaxOptions")

    def pad(self, x: int, pads) -> int:
        n, h, w, c = self.shape(x)
        (t, b), (left, r) = pads
        table = np.array([[0, 0], [t, b], [left, r], [0, 0]])
        return self.op("PAD", [x, self.const(table, "INT32")], (n, h + t + b, w + left + r, c))

    def unary(self, name: str, x: int) -> int:
        return self.op(name, [x], self.shape(x))

    # ------------------------------------------------------------------ output
    def build(self, inputs: list[int], outputs: list[int]) -> bytes:
        import flatbuffers

        g = self.s.SubGraphT()
        g.tensors, g.operators = self.tensors, self.operators
        g.inputs, g.outputs = np.asarray(inputs, np.int32), np.asarray(outputs, np.int32)
        g.name = b"main"
        m = self.s.ModelT()
        m.version = 3
        m.subgraphs = [g]
        m.buffers = self.buffers
        codes = []
        for c in self.opcodes:
            oc = self.s.OperatorCodeT()
            oc.builtinCode = c
            oc.deprecatedBuiltinCode = min(c, 127)
            oc.version = 1
            codes.append(oc)
        m.operatorCodes = codes
        m.description = b"edge_sdk test model"
        builder = flatbuffers.Builder(1024)
        builder.Finish(m.Pack(builder), file_identifier=b"TFL3")
        return bytes(builder.Output())


# ---------------------------------------------------------------------- recipes for tests and examples
def _w(rng: np.random.Generator, shape, fan_in: int) -> np.ndarray:
    return rng.normal(0.0, np.sqrt(2.0 / fan_in), shape).astype(np.float32)


def tiny_cnn(seed: int = 0, size: int = 16, classes: int = 5) -> bytes:
    """conv3x3/1 relu -> conv3x3/2 relu6 -> depthwise relu -> 1x1 relu -> maxpool -> mean -> dense -> softmax.

    Takes raw 0..255 pixels (float32), like the MLPerf-Tiny ResNet.
    """
    rng = np.random.default_rng(seed)
    b = TFLiteBuilder()
    x = b.input((1, size, size, 3))
    y = b.conv2d(x, _w(rng, (8, 3, 3, 3), 27) / 255.0, rng.normal(0, 0.1, 8).astype(np.float32), act="RELU")
    y = b.conv2d(
        y, _w(rng, (16, 3, 3, 8), 72), rng.normal(0, 0.1, 16).astype(np.float32), stride=2, act="RELU6"
    )
    y = b.conv2d(
        y, _w(rng, (1, 3, 3, 16), 9), rng.normal(0, 0.1, 16).astype(np.float32), depthwise=True, act="RELU"
    )
    y = b.conv2d(y, _w(rng, (16, 1, 1, 16), 16), rng.normal(0, 0.1, 16).astype(np.float32), act="RELU")
    y = b.pool(y, "MAX_POOL_2D", 2, 2)
    y = b.reshape(b.mean_hw(y), (1, 16))
    y = b.fully_connected(y, _w(rng, (classes, 16), 16), np.zeros(classes, np.float32))
    return b.build([x], [b.softmax(y)])


def tiny_resnet(seed: int = 0, size: int = 16, classes: int = 5) -> bytes:
    """A ResNet-v1 stem + one identity block + one strided block with a 1x1 shortcut (like MLPerf ResNet-8)."""
    rng = np.random.default_rng(seed)
    b = TFLiteBuilder()
    x = b.input((1, size, size, 3))
    s = b.conv2d(x, _w(rng, (8, 3, 3, 3), 27) / 255.0, rng.normal(0, 0.1, 8).astype(np.float32), act="RELU")
    y = b.conv2d(s, _w(rng, (8, 3, 3, 8), 72), rng.normal(0, 0.1, 8).astype(np.float32), act="RELU")
    y = b.conv2d(y, _w(rng, (8, 3, 3, 8), 72), rng.normal(0, 0.1, 8).astype(np.float32))
    s = b.add(s, y, act="RELU")
    y = b.conv2d(
        s, _w(rng, (16, 3, 3, 8), 72), rng.normal(0, 0.1, 16).astype(np.float32), stride=2, act="RELU"
    )
    y = b.conv2d(y, _w(rng, (16, 3, 3, 16), 144), rng.normal(0, 0.1, 16).astype(np.float32))
    sc = b.conv2d(s, _w(rng, (16, 1, 1, 8), 8), rng.normal(0, 0.1, 16).astype(np.float32), stride=2)
    y = b.add(sc, y, act="RELU")
    y = b.reshape(b.pool(y, "AVERAGE_POOL_2D", size // 2, size // 2), (1, 16))
    y = b.fully_connected(y, _w(rng, (classes, 16), 16), np.zeros(classes, np.float32))
    return b.build([x], [b.softmax(y)])
