"""Use a finished run: predict, evaluate, merge adapters."""

from attnlab.inference.loading import load_run_model
from attnlab.inference.merge import merge_run
from attnlab.inference.predictor import Predictor

__all__ = ["Predictor", "load_run_model", "merge_run"]
