"""Camera demo: capture frames, run the chip, send compact results to an edge-sdk server.

    python examples/camera_demo.py --source synthetic --frames 20                # local only
    python examples/camera_demo.py --source ~/photos --mode retrieve \\
        --server 127.0.0.1:7878 --credentials cam1.json --firmware firmware_images/x.edgefw
    python examples/camera_demo.py --source picamera --mode classify --firmware ...   # on a Pi

Same as ``edge-sdk camera``; all the logic lives in :mod:`edge_sdk.camera`.
"""

from __future__ import annotations

import sys

from edge_sdk.camera.cli import main

if __name__ == "__main__":
    sys.exit(main())
