"""Metrics, confusion matrices, per-class reports and plots."""

from attnlab.evaluation.metrics import classification_metrics

__all__ = ["classification_metrics"]
