"""Machine description printed by every benchmark (figures mean little without it)."""

from __future__ import annotations

import os
import platform


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown cpu"


def machine() -> str:
    return (
        f"{platform.platform()}, {cpu_model()}, {os.cpu_count()} logical cores, "
        f"Python {platform.python_version()} ({platform.python_implementation()})"
    )
