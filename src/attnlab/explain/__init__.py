"""Attention from any Hugging Face model: extraction, rollout, per-head statistics, model diffs,
PNG heatmaps and an interactive HTML viewer.

Quick start::

    from attnlab.explain import explain, extract_attention
    explain("the movie was not good at all", out_dir="out")      # writes PNG, HTML, JSON
    result = extract_attention("the movie was not good at all")   # in a notebook: just show `result`
"""

from attnlab.explain.api import explain
from attnlab.explain.diff import AttentionDiff, diff_attention, diff_results, js_divergence
from attnlab.explain.extract import (
    AttentionResult,
    LoadedModel,
    clear_cache,
    extract_attention,
    load_for_attention,
)
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
    "AttentionDiff", "AttentionResult", "HeadStats", "LoadedModel", "RolloutResult",
    "attention_rollout", "clear_cache", "diff_attention", "diff_figure", "diff_results", "explain",
    "extract_attention", "head_figure", "head_stats", "js_divergence", "layer_figure", "load_for_attention",
    "model_figure", "plot_diff", "plot_head", "plot_layer", "plot_model", "rollout", "rollout_html", "save_png",
    "to_html", "to_iframe_html", "to_notebook_html", "viewer_data", "write_html",
]
