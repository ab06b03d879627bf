"""Fine-tuning: config, methods, Trainer wiring and run directories.

The entry point is :func:`attnlab.training.train.train` (import it from that module: it pulls in
the HF Trainer, so this package does not import it eagerly).
"""

from attnlab.training.config import TrainConfig
from attnlab.training.rundir import Run, open_run

__all__ = ["METHODS", "Run", "TrainConfig", "get_method", "open_run"]


def __getattr__(name: str):
    """``METHODS`` and ``get_method`` on first use: the methods import torch and PEFT (seconds), and
    the CLI imports this package just to build its parser (``attnlab --help`` stays instant)."""
    if name in ("METHODS", "get_method"):
        from attnlab.training import methods

        return getattr(methods, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
