"""Compare: train a matrix of (model, method) on the same data, seed and budget; one table.
Sweep: LoRA ranks x target layers (+ baselines) for a parameter-efficiency study."""

from attnlab.experiments.compare import compare
from attnlab.experiments.sweep import sweep

__all__ = ["compare", "sweep"]
