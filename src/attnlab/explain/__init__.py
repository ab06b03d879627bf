"""Attention from any Hugging Face model: extraction, rollout, per-head statistics, model diffs,
PNG heatmaps and an interactive HTML viewer; token attribution of a classifier (attention, rollout,
gradient-weighted rollout, Integrated Gradients, gradient x input, occlusion) and its measured
faithfulness (ERASER comprehensiveness and sufficiency).

Quick start::

    from attnlab.explain import explain, extract_attention
    explain("the movie was not good at all", out_dir="out")      # writes PNG, HTML, JSON
    result = extract_attention("the movie was not good at all")   # in a notebook: just show `result`
    explain_methods("the movie was not good at all", "runs/my-run", "out", methods="ig,occlusion")
"""

from attnlab.explain.api import explain, explain_methods, write_faithfulness
from attnlab.explain.attribution import METHODS, SentenceAttribution, attribute, load_classifier
from attnlab.explain.diff import AttentionDiff, diff_attention, diff_results, js_divergence
from attnlab.explain.extract import (
    AttentionResult,
    LoadedModel,
    clear_cache,
    extract_attention,
    load_for_attention,
)
from attnlab.explain.faithfulness import faithfulness
from attnlab.explain.rollout import RolloutResult, attention_rollout, rollout, rollout_html
from attnlab.explain.stats import HeadStats, head_stats
from attnlab.explain.views_html import to_html, to_iframe_html, to_notebook_html, viewer_data, write_html
from attnlab.explain.views_png import (
    diff_figure,
    head_figure,
    layer_figure,
    model_figure,
    plot_diff,
    plot_head,
    plot_layer,
    plot_model,
    save_png,
)

__all__ = [
    "METHODS",
    "AttentionDiff",
    "AttentionResult",
    "HeadStats",
    "LoadedModel",
    "RolloutResult",
    "SentenceAttribution",
    "attention_rollout",
    "attribute",
    "clear_cache",
    "diff_attention",
    "diff_figure",
    "diff_results",
    "explain",
    "explain_methods",
    "extract_attention",
    "faithfulness",
    "head_figure",
    "head_stats",
    "js_divergence",
    "layer_figure",
    "load_classifier",
    "load_for_attention",
    "model_figure",
    "plot_diff",
    "plot_head",
    "plot_layer",
    "plot_model",
    "rollout",
    "rollout_html",
    "save_png",
    "to_html",
    "to_iframe_html",
    "to_notebook_html",
    "viewer_data",
    "write_faithfulness",
    "write_html",
]
