"""Device and precision choices, made from what the hardware can actually do.

bf16 autocast is ~4x faster than fp32 on CPUs with AMX-BF16, but on CPUs without native bf16 (AVX2-only
parts such as AMD Zen 3) PyTorch emulates bf16 matmuls and is ~100x *slower*; and an Intel Xeon whose
hypervisor hides AMX but shows AVX512-BF16 runs bf16 matmuls at ~0.55x fp32 (2 threads: 159 vs 267
GFLOP/s at 2048^3, 169 vs 318 at the model's own shapes; benchmarks/results/lora_step.avx512-bf16-intel.json).
So ``auto`` picks bf16 only on the CPU kinds where it is faster (:data:`BF16_FASTER_KINDS`), or where
the CUDA device supports it.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import torch

log = logging.getLogger(__name__)

# AMX-BF16 (Intel Sapphire Rapids on), and AVX512-BF16 on AMD Zen 4/5 (2 threads: bf16 420 vs fp32 189
# GFLOP/s at 2048^3, 448 vs 204 at the model's own shapes; benchmarks/results/lora_step.avx512-bf16-amd.json);
# not avx512-bf16-intel (see the module docstring).
BF16_FASTER_KINDS = ("amx", "avx512-bf16-amd")
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")  # bf16 computed natively (not necessarily faster)


@functools.cache
def _cpuinfo_field(name: str) -> str:
    """The first ``name : value`` of /proc/cpuinfo ('' where there is none)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == name:
                return value.strip()
    except OSError:
        pass
    return ""


def cpu_flags() -> frozenset[str]:
    return frozenset(_cpuinfo_field("flags").split())


def cpu_kind() -> str:
    """A short name for this CPU's matmul capabilities, the key benchmark results are kept under
    (one machine kind's numbers never overwrite another's): ``amx`` (AMX-BF16), ``avx512-bf16-amd`` /
    ``avx512-bf16-intel`` (AVX512-BF16 without AMX: AMD Zen 4/5, or an Intel Xeon whose hypervisor
    hides AMX; two different machines, so two keys), ``avx512``, ``avx2`` or ``other``."""
    flags = cpu_flags()
    if "amx_bf16" in flags:
        return "amx"
    if "avx512_bf16" in flags:
        return "avx512-bf16-" + {"AuthenticAMD": "amd", "GenuineIntel": "intel"}.get(_cpuinfo_field("vendor_id"),
                                                                                      "other")
    return "avx512" if "avx512f" in flags else "avx2" if "avx2" in flags else "other"


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (emulated, ~100x slower than fp32, where it does not)."""
    return any(f in cpu_flags() for f in BF16_CPU_FLAGS)


def cpu_prefers_bf16() -> bool:
    """Whether bf16 autocast trains and infers faster than fp32 on this CPU kind."""
    return cpu_kind() in BF16_FASTER_KINDS


def physical_cores() -> int:
    """Physical cores this process may run on (hyper-threads share a core's matmul units, so more
    intra-op threads than physical cores only adds contention)."""
    import os

    allowed = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set(range(os.cpu_count() or 1))
    cores: set[tuple[str, str]] = set()
    try:
        cpu = phys = core = None
        for line in [*Path("/proc/cpuinfo").read_text().splitlines(), ""]:
            key, _, value = (part.strip() for part in line.partition(":"))
            if key == "processor":
                cpu = int(value)
            elif key == "physical id":
                phys = value
            elif key == "core id":
                core = value
            elif not line.strip() and cpu is not None:
                if cpu in allowed:
                    cores.add((phys or "0", core if core is not None else str(cpu)))
                cpu = phys = core = None
    except (OSError, ValueError):
        pass
    return max(1, len(cores) or len(allowed))


def default_num_threads() -> int:
    """Intra-op threads for one process: the physical cores, shared among the processes that
    ``torchrun`` starts on this node (it would otherwise leave each with a single thread)."""
    import os

    per_node = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    return max(1, physical_cores() // per_node)


def set_num_threads(requested: int | None = None) -> int:
    """Set torch's intra-op threads to ``requested``; returns the number in use.

    With ``None`` torch's setting is kept (its default is the physical cores; an ``OMP_NUM_THREADS``
    the user set is respected), except under ``torchrun``, whose own default of one thread per
    process starves a multi-core node: there each process gets :func:`default_num_threads`."""
    import os

    n = requested
    if n is None and int(os.environ.get("LOCAL_WORLD_SIZE", "1")) > 1 and os.environ.get("OMP_NUM_THREADS") == "1":
        n = default_num_threads()
    if n and n != torch.get_num_threads():
        torch.set_num_threads(n)
    return torch.get_num_threads()


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_precision(requested: str = "auto", dev: torch.device | None = None) -> str:
    """'bf16' or 'fp32' for ``requested`` in auto|bf16|fp32 on this device."""
    dev = dev or device()
    if requested != "auto":
        return requested
    if dev.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if cpu_prefers_bf16() else "fp32"


def autocast(precision: str, dev: torch.device | None = None):
    """An autocast context for 'bf16', or a no-op for 'fp32'."""
    dev = dev or device()
    return torch.autocast(dev.type, dtype=torch.bfloat16, enabled=precision == "bf16")
