"""attnlab: understand attention, fine-tune transformer classifiers (full, LoRA, QLoRA, head),
compare them with measured numbers, and use the result."""

from __future__ import annotations

from attnlab.logs import demote_library_noise

__version__ = "0.1.0"

demote_library_noise()


def load(run_dir: str, **kwargs):
    """Load a finished run directory as a :class:`attnlab.inference.Predictor`."""
    from attnlab.inference import Predictor

    return Predictor.from_run(run_dir, **kwargs)


__all__ = ["__version__", "load"]
