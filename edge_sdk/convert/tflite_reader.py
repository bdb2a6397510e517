"""Read a ``.tflite`` flatbuffer: tensors (constants dequantized), operators and their options.

The Interpreter API hides strides, padding and fused activations, so the model
is parsed from the flatbuffer schema (``edge_sdk.litert.schema_module()``).
Constant tensors are returned both raw and dequantized: int8/uint8 tensors with
per-tensor or per-channel (``quantized_dimension``) scales become float32
``(q - zero_point) * scale``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from ..errors import ConversionError, UnsupportedOpError
from ..litert import schema_module

_DTYPES = {
    "FLOAT32": np.float32,
    "FLOAT16": np.float16,
    "INT32": np.int32,
    "UINT8": np.uint8,
    "INT64": np.int64,
    "INT16": np.int16,
    "INT8": np.int8,
    "BOOL": np.bool_,
    "FLOAT64": np.float64,
}


@dataclass
class RawTensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    data: Optional[np.ndarray] = None  # the stored constant (None for activations)
    scale: Optional[np.ndarray] = None
    zero_point: Optional[np.ndarray] = None
    quantized_dimension: int = 0

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def quantized(self) -> bool:
        return (
            self.scale is not None
            and len(self.scale) > 0
            and self.dtype in ("INT8", "UINT8", "INT16", "INT32")
        )

    def dequantized(self) -> np.ndarray:
        """The constant as float32 real values (per-channel scales along ``quantized_dimension``)."""
        if self.data is None:
            raise ConversionError(f"tensor {self.name!r} is not a constant")
        if not self.quantized:
            return self.data.astype(np.float32)
        shape = [1] * self.data.ndim
        if len(self.scale) > 1:
            shape[self.quantized_dimension] = len(self.scale)
        scale = self.scale.astype(np.float64).reshape(shape)
        zp = self.zero_point.astype(np.float64).reshape(shape) if self.zero_point is not None else 0.0
        return ((self.data.astype(np.float64) - zp) * scale).astype(np.float32)


@dataclass
class RawOp:
    index: int
    op: str  # builtin operator name, e.g. "CONV_2D"
    inputs: list[int]
    outputs: list[int]
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class RawModel:
    tensors: list[RawTensor]
    ops: list[RawOp]
    inputs: list[int]
    outputs: list[int]
    sha256: str
    description: str = ""


def _enum_names(enum_cls: Any) -> dict[int, str]:
    return {v: k for k, v in vars(enum_cls).items() if not k.startswith("_") and isinstance(v, int)}


def _buffer_bytes(model: Any, buf: bytes, index: int) -> Optional[bytes]:
    if index <= 0 or model.buffers is None or index >= len(model.buffers):
        return None
    b = model.buffers[index]
    if b.data is not None and len(b.data):
        return bytes(np.asarray(b.data, dtype=np.uint8))
    if (
        getattr(b, "offset", 0) > 1 and getattr(b, "size", 0) > 0
    ):  # large models keep buffers after the flatbuffer
        return buf[b.offset : b.offset + b.size]
    return None


def _tensor(model: Any, buf: bytes, index: int, t: Any, type_names: dict[int, str]) -> RawTensor:
    name = t.name.decode("utf-8", "replace") if isinstance(t.name, bytes) else str(t.name or f"t{index}")
    dtype = type_names.get(t.type, str(t.type))
    shape = tuple(int(v) for v in (t.shape if t.shape is not None else ()))
    if t.sparsity is not None:
        raise ConversionError(f"tensor {name!r} is sparse; sparse .tflite tensors are not supported")
    data = None
    raw = _buffer_bytes(model, buf, t.buffer)
    if raw is not None:
        if dtype not in _DTYPES:
            raise ConversionError(f"constant tensor {name!r} has unsupported type {dtype}")
        data = np.frombuffer(raw, dtype=_DTYPES[dtype]).reshape(shape).copy()
    scale = zp = None
    qdim = 0
    q = t.quantization
    if q is not None and q.scale is not None and len(q.scale):
        scale = np.asarray(q.scale, dtype=np.float32)
        zp = np.asarray(q.zeroPoint if q.zeroPoint is not None else np.zeros(len(scale)), dtype=np.int64)
        qdim = int(q.quantizedDimension)
    return RawTensor(index, name, shape, dtype, data, scale, zp, qdim)


def _options(op: Any) -> dict[str, Any]:
    opt = op.builtinOptions
    if opt is None:
        return {}
    return {k: v for k, v in vars(opt).items()}


def read_tflite(source: Union[str, Path, bytes]) -> RawModel:
    """Parse a .tflite file (path or bytes) into tensors and ops (ConversionError if it is not one)."""
    buf = Path(source).read_bytes() if not isinstance(source, (bytes, bytearray)) else bytes(source)
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise ConversionError("not a .tflite model (missing the 'TFL3' flatbuffer identifier)")
    schema = schema_module()
    try:
        model = schema.ModelT.InitFromPackedBuf(buf, 0)
    except Exception as exc:  # noqa: BLE001 - a corrupt flatbuffer raises anything
        raise ConversionError(f"cannot parse the .tflite flatbuffer: {exc}") from exc
    if not model.subgraphs:
        raise ConversionError("the .tflite model has no subgraph")
    if len(model.subgraphs) > 1:
        raise ConversionError(
            f"the .tflite model has {len(model.subgraphs)} subgraphs; only single-graph "
            "models (no control flow) are supported"
        )
    g = model.subgraphs[0]
    op_names = _enum_names(schema.BuiltinOperator)
    type_names = _enum_names(schema.TensorType)
    tensors = [_tensor(model, buf, i, t, type_names) for i, t in enumerate(g.tensors or [])]
    ops = []
    for k, op in enumerate(g.operators or []):
        code = model.operatorCodes[op.opcodeIndex]
        builtin = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
        name = op_names.get(builtin, f"BUILTIN_{builtin}")
        if name == "CUSTOM":
            custom = code.customCode.decode() if isinstance(code.customCode, bytes) else str(code.customCode)
            raise UnsupportedOpError(
                f"CUSTOM:{custom}",
                _first_name(tensors, op.outputs),
                "custom operators have no chip or host implementation",
            )
        ops.append(
            RawOp(
                k,
                name,
                [int(i) for i in (op.inputs if op.inputs is not None else [])],
                [int(i) for i in (op.outputs if op.outputs is not None else [])],
                _options(op),
            )
        )
    desc = model.description.decode("utf-8", "replace") if isinstance(model.description, bytes) else ""
    return RawModel(
        tensors,
        ops,
        [int(i) for i in g.inputs],
        [int(i) for i in g.outputs],
        hashlib.sha256(buf).hexdigest(),
        desc,
    )


def _first_name(tensors: list[RawTensor], outputs: Any) -> str:
    if outputs is not None and len(outputs) and 0 <= int(outputs[0]) < len(tensors):
        return tensors[int(outputs[0])].name
    return "?"
