"""On-device runtime: Device, backends (emulator, reference), host ops."""

from .backend import Backend
from .device import BACKENDS, Device, RunResult, make_backend

__all__ = ["BACKENDS", "Backend", "Device", "RunResult", "make_backend"]
