"""The host-side converter: ``.tflite`` models -> chip networks and firmware images.

    from edge_sdk.convert import convert, convert_network
    image = convert("pretrainedResnet.tflite", profile="lightspeeur-2803", calib=x_train, bits=5)

Stages: import (``importer``: flatbuffer -> canonical float graph), partition
(``partition``: which op runs on the chip and which on the host, and why),
planning (``plan``: chip layers and their channel groups), calibration
(``calibrate``), quantization (``lower``: the chip's integer constants) and the
report (``report``).  docs/converter.md describes the choices.
"""

from __future__ import annotations

from .importer import ImportedModel, import_tflite

__all__ = ["ImportedModel", "import_tflite"]
