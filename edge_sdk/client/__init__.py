"""The device side: a durable spool and a reliable, authenticated client."""

from __future__ import annotations

from .client import ClientClosedError, ClientStats, DeviceClient, Outgoing
from .spool import Spool, SpoolFullError

__all__ = ["ClientClosedError", "ClientStats", "DeviceClient", "Outgoing", "Spool", "SpoolFullError"]
