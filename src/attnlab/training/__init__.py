"""Fine-tuning: config, methods, Trainer wiring and run directories.

The entry point is :func:`attnlab.training.train.train` (import it from that module: it pulls in
the HF Trainer, so this package does not import it eagerly).
"""

from attnlab.training.config import TrainConfig
from attnlab.training.methods import METHODS, get_method
from attnlab.training.rundir import Run, open_run

__all__ = ["METHODS", "Run", "TrainConfig", "get_method", "open_run"]
