"""Fine-tuning: config, methods, Trainer wiring and run directories."""

from attnlab.training.config import TrainConfig
from attnlab.training.methods import METHODS, get_method
from attnlab.training.rundir import Run, open_run

__all__ = ["METHODS", "Run", "TrainConfig", "get_method", "open_run", "train"]


def train(*args, **kwargs):
    """See :func:`attnlab.training.train.train` (imported lazily: it pulls in Trainer)."""
    from attnlab.training.train import train as _train

    return _train(*args, **kwargs)
