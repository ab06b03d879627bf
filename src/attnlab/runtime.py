"""Device and precision choices, made from what the hardware can actually do.

bf16 autocast is ~3x faster than fp32 on CPUs with AMX-BF16 or AVX512-BF16, but on CPUs without
them (AVX2-only parts such as AMD Zen 3) PyTorch emulates bf16 matmuls and is ~100x *slower*; so
``auto`` picks bf16 only where the CPU flags (or the CUDA device) say it is native.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import torch

log = logging.getLogger(__name__)

BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")


@functools.cache
def cpu_flags() -> frozenset[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_has_native_bf16() -> bool:
    return any(f in cpu_flags() for f in BF16_CPU_FLAGS)


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_precision(requested: str = "auto", dev: torch.device | None = None) -> str:
    """'bf16' or 'fp32' for ``requested`` in auto|bf16|fp32 on this device."""
    dev = dev or device()
    if requested != "auto":
        return requested
    if dev.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if cpu_has_native_bf16() else "fp32"


def autocast(precision: str, dev: torch.device | None = None):
    """An autocast context for 'bf16', or a no-op for 'fp32'."""
    dev = dev or device()
    return torch.autocast(dev.type, dtype=torch.bfloat16, enabled=precision == "bf16")
