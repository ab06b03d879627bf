"""Compare: train a matrix of (model, method) on the same data, seed and budget; one table."""

from attnlab.experiments.compare import compare

__all__ = ["compare"]
