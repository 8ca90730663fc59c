"""Loaded by every Python subprocess a test starts (the test session puts this directory on PYTHONPATH): installs
the same loopback-only network guard as the test process (see tests/netguard.py)."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
try:
    import netguard  # tests/netguard.py

    netguard.install()
finally:
    sys.path.pop(0)
