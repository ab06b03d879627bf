"""Compare: train a matrix of (model, method) on the same data, seed and budget, with classic
baselines (TF-IDF + logistic regression, the VADER lexicon) beside them; one table.
Sweep: LoRA ranks x target layers (+ baselines) for a parameter-efficiency study.
Tune: hyperparameter search with Trainer.hyperparameter_search (Optuna); writes a best.yaml recipe."""

from attnlab.experiments.compare import compare
from attnlab.experiments.sweep import sweep
from attnlab.experiments.tune import tune

__all__ = ["compare", "sweep", "tune"]
