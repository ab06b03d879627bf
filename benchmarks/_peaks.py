"""What a training step computes and the matmul rate it is measured against: analytic FLOPs per
step, and the GEMM peak *of the precision the run trains in*.

A share of a peak means something only where the hardware runs that precision natively: on a CPU
without AMX-BF16 or AVX512-BF16, PyTorch emulates bf16 matmuls (about 100x slower than fp32), so an
fp32 run "beats" the bf16 peak many times over. That share is reported as not applicable (None),
never as a target met. Two peaks are measured in the same process as the run:

- at **2048 x 2048 x 2048** (what a GEMM library reaches on large square matrices), and
- at the **model's own shapes**: ``tokens x hidden @ hidden x intermediate`` (and back) for a few
  token counts a training batch has, the best a step of that model could reach.
"""

from __future__ import annotations

import time
from typing import Any

SQUARE = 2048
TOKEN_COUNTS = (512, 1024, 4096)  # padded tokens per batch: 32 x 16 .. 32 x 128


def non_embedding_params(model) -> int:
    """Parameters outside the embedding tables (word, position, token type)."""
    import torch

    emb = {id(p) for m in model.modules() if isinstance(m, torch.nn.Embedding) for p in m.parameters()}
    return sum(p.numel() for p in model.parameters() if id(p) not in emb)


def step_flops(batches: list[tuple[int, int, int, int]], dense_per_token: float, layers: int, hidden: int) -> float:
    """FLOPs of forward + backward over ``batches``: dense layers on padded tokens plus attention."""
    return sum(dense_per_token * padded + 12 * layers * b * t * t * hidden for _, padded, b, t in batches)


def native(precision: str) -> bool:
    """Whether this device runs ``precision`` matmuls natively: fp32 always; bf16 on a CUDA device that
    supports it or a CPU with AMX-BF16 / AVX512-BF16 (native is not always faster: see attnlab.runtime)."""
    import torch

    from attnlab import runtime

    if precision == "fp32":
        return True
    if runtime.device().type == "cuda":
        return torch.cuda.is_bf16_supported()
    return runtime.cpu_has_native_bf16()


def matmul_rate(m: int, k: int, n: int, precision: str, seconds: float = 0.5) -> float:
    """Best FLOP/s of an ``(m x k) @ (k x n)`` matmul in ``precision`` over about ``seconds``."""
    import torch

    from attnlab import runtime

    dev = runtime.device()
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[precision]
    a, b = torch.randn(m, k, device=dev, dtype=dtype), torch.randn(k, n, device=dev, dtype=dtype)

    def once() -> float:
        start = time.perf_counter()
        a @ b
        if dev.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    once()  # warm-up: thread pool, kernel selection
    best, spent = float("inf"), 0.0
    while spent < seconds or best == float("inf"):
        t = once()
        best, spent = min(best, t), spent + t
        if spent > 10 * seconds:  # an emulated precision: one product can take seconds
            break
    return 2.0 * m * k * n / best


def peaks(precision: str, hidden: int, intermediate: int, seconds: float = 0.5) -> dict[str, Any]:
    """The GEMM peaks of ``precision`` at 2048^3 and at the model's shapes (the best of the token counts)."""
    shapes = [(t, hidden, intermediate) for t in TOKEN_COUNTS] + [(t, intermediate, hidden) for t in TOKEN_COUNTS]
    at_shapes = {f"{m}x{k}@{k}x{n}": matmul_rate(m, k, n, precision, seconds) for m, k, n in shapes}
    return {"precision": precision, "native": native(precision),
            "square": {"n": SQUARE, "flops_per_second": matmul_rate(SQUARE, SQUARE, SQUARE, precision, seconds)},
            "model_shapes": {"flops_per_second": max(at_shapes.values()), "each": at_shapes}}


def share_of_peak(flops_per_second: float | None, peak: dict[str, Any]) -> dict[str, float | None]:
    """Achieved FLOP/s over the peaks of the precision used; None where that precision is emulated."""
    if not flops_per_second or not peak["native"]:
        return {"of_square_peak": None, "of_model_shape_peak": None}
    return {"of_square_peak": flops_per_second / peak["square"]["flops_per_second"],
            "of_model_shape_peak": flops_per_second / peak["model_shapes"]["flops_per_second"]}


def print_peaks(peak: dict[str, Any], threads: int) -> None:
    state = "native" if peak["native"] else "emulated: shares of it are not applicable"
    print(f"{peak['precision']} GEMM peak ({state}, {threads} threads): "
          f"{peak['square']['flops_per_second'] / 1e9:.1f} GFLOP/s at {SQUARE}^3, "
          f"{peak['model_shapes']['flops_per_second'] / 1e9:.1f} GFLOP/s at the model's shapes", flush=True)
