"""One import shim for the TFLite interpreter API.

``ai-edge-litert`` (LiteRT, XNNPACK kernels, numpy 2) where it has wheels;
``tflite-runtime`` as the fallback (armv7, older Pis; needs numpy < 2).  Both
expose the same ``Interpreter`` class.  Importing this module never fails; asking
for the interpreter when neither package is installed raises BackendError with
the install command.
"""

from __future__ import annotations

from typing import Any

from .errors import BackendError

_CANDIDATES = (
    ("ai_edge_litert.interpreter", "ai-edge-litert"),
    ("tflite_runtime.interpreter", "tflite-runtime"),
)


def interpreter_class() -> tuple[Any, str]:
    """(Interpreter class, package name) of the first TFLite runtime that imports."""
    errors = []
    for module_name, package in _CANDIDATES:
        try:
            module = __import__(module_name, fromlist=["Interpreter"])
            return module.Interpreter, package
        except Exception as exc:  # noqa: BLE001 - tflite-runtime 2.14 raises odd errors under numpy 2
            errors.append(f"{package}: {exc}")
    raise BackendError(
        "no TFLite interpreter available; install one with `pip install edge_sdk[runtime]` "
        "(ai-edge-litert) or `pip install edge_sdk[runtime-legacy]` (tflite-runtime, numpy<2). "
        "Tried: " + "; ".join(errors)
    )


def make_interpreter(model: str | bytes, *, num_threads: int = 1, preserve_all_tensors: bool = False) -> Any:
    """An allocated Interpreter for a .tflite path or its bytes."""
    cls, _ = interpreter_class()
    kwargs: dict[str, Any] = {"num_threads": num_threads}
    if preserve_all_tensors:
        kwargs["experimental_preserve_all_tensors"] = True
    if isinstance(model, (bytes, bytearray)):
        kwargs["model_content"] = bytes(model)
    else:
        kwargs["model_path"] = str(model)
    interp = cls(**kwargs)
    interp.allocate_tensors()
    return interp


def schema_module() -> Any:
    """The generated flatbuffer schema (``ai_edge_litert.schema_py_generated``) for parsing .tflite files."""
    try:
        from ai_edge_litert import schema_py_generated

        return schema_py_generated
    except Exception as exc:  # noqa: BLE001
        raise BackendError(
            f"the .tflite schema needs ai-edge-litert and flatbuffers installed ({exc})"
        ) from exc
