"""The camera app: sources, the chip engine, encoders, live status, the app itself.

See ``edge-sdk camera --help`` / examples/camera_demo.py.  picamera2 and OpenCV are
imported only when a source needs them.
"""

from __future__ import annotations

from .app import AppConfig, CameraApp, ClientSink, LocalSink
from .encoders import EncodedFrame, PatchEncoder, RawPatchEncoder
from .engine import Engine, FirmwareEngine, PixelEngine, fit_to_input, load_engine
from .sources import (
    CapturedFrame,
    FolderSource,
    FrameSource,
    ImageFilesSource,
    SourceError,
    SyntheticSource,
    VideoFileSource,
    open_source,
)
from .status import LiveStatus

__all__ = [
    "AppConfig",
    "CameraApp",
    "CapturedFrame",
    "ClientSink",
    "EncodedFrame",
    "Engine",
    "FirmwareEngine",
    "FolderSource",
    "FrameSource",
    "ImageFilesSource",
    "LiveStatus",
    "LocalSink",
    "PatchEncoder",
    "PixelEngine",
    "RawPatchEncoder",
    "SourceError",
    "SyntheticSource",
    "VideoFileSource",
    "fit_to_input",
    "load_engine",
    "open_source",
]
