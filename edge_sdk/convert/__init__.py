"""The host-side converter: ``.tflite`` models -> chip networks and firmware images.

    from edge_sdk.convert import convert, convert_network, convert_detailed
    image = convert("pretrainedResnet.tflite", profile="lightspeeur-2803", calib=x_train, bits=5)

Stages: import (``importer``: flatbuffer -> canonical float graph), partition
(``partition``: which op runs on the chip and which on the host, and why),
planning (``plan``: chip layers and their channel groups; ``residual``: adds
folded into convolutions), calibration (``calibrate``), reconstruction
(``recon``), quantization (``lower``, ``lower_conv``, ``wquant``, ``bits``) and
the report (``report``, ``sqnr``).  docs/converter.md describes the choices.
"""

from __future__ import annotations

from .api import ConversionResult, convert, convert_detailed, convert_network
from .importer import ImportedModel, import_tflite
from .options import ConvertOptions
from .report import ConversionReport

__all__ = [
    "ConversionReport",
    "ConversionResult",
    "ConvertOptions",
    "ImportedModel",
    "convert",
    "convert_detailed",
    "convert_network",
    "import_tflite",
]
