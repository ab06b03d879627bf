"""Static PNG heatmaps of attention (matplotlib, Agg; no pyplot, so it is safe in servers/threads).

* :func:`head_figure`   one head, tokens on both axes
* :func:`layer_figure`  every head of one layer, in a grid with one shared colour bar
* :func:`model_figure`  every layer x head as thumbnails (drawn as one mosaic image: fast)
* :func:`diff_figure`   how two models differ: per-head change map + the most-changed head
                        before / after / after - before

Each ``*_figure`` returns a :class:`matplotlib.figure.Figure` (a Gradio ``gr.Plot`` shows it
directly); the ``plot_*`` functions save one atomically as PNG and return the path.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import PowerNorm
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from attnlab.explain.diff import AttentionDiff
from attnlab.explain.extract import AttentionResult
from attnlab.io import atomic_path

DPI = 100
CMAP = "viridis"
DIFF_CMAP = "RdBu_r"
THUMB_MAX = 48  # model-view thumbnails are block-averaged down to at most this many tokens


def _fontsize(t: int, big: float = 10.0) -> float:
    """Token label size that keeps ``t`` labels readable without overlapping."""
    return float(np.clip(260.0 / max(t, 1), 4.0, big))


def _tick_step(t: int, max_labels: int = 64) -> int:
    return max(1, math.ceil(t / max_labels))


def _label_axes(ax, labels: list[str], *, x: bool = True, y: bool = True, big: float = 10.0) -> None:
    t = len(labels)
    step, fs = _tick_step(t), _fontsize(t, big)
    ticks = list(range(0, t, step))
    shown = [labels[i] for i in ticks]
    if x:
        ax.set_xticks(ticks, shown, rotation=90, fontsize=fs)
    else:
        ax.set_xticks([])
    if y:
        ax.set_yticks(ticks, shown, fontsize=fs)
    else:
        ax.set_yticks([])


def _new_figure(w: float, h: float) -> Figure:
    fig = Figure(figsize=(w, h), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _side(t: int, base: float = 4.5, per_token: float = 0.14, cap: float = 11.0) -> float:
    return float(np.clip(base + per_token * t, base, cap))


def _downsample(m: np.ndarray, n: int) -> np.ndarray:
    """Block-average the last two axes of ``m`` down to at most ``n`` x ``n``."""
    t = m.shape[-1]
    if t <= n:
        return m
    starts = np.linspace(0, t, n, endpoint=False).astype(int)
    counts = np.diff(np.append(starts, t))
    s = np.add.reduceat(np.add.reduceat(m, starts, axis=-2), starts, axis=-1)
    return s / (counts[:, None] * counts[None, :])


def save_png(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` to ``path`` as PNG, atomically (temp file, then rename)."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight", facecolor="white")
    return Path(path)


# ------------------------------------------------------------------------------------------ views


def colour_max(result: AttentionResult, layer: int) -> float:
    """The top of the colour scale for any view of ``layer``: its largest weight over all heads, so a
    head drawn alone (head.png) and in its layer's grid (layer.png) shows a weight in the same colour."""
    return max(float(result.attentions[layer].max()), 1e-6)


def head_figure(result: AttentionResult, layer: int = 0, head: int = 0) -> Figure:
    """Heatmap of one head: rows are queries (attending), columns keys (attended to)."""
    layer, head = result.check_index(layer, head)
    att, labels = result.attentions[layer, head], result.display_tokens
    side = _side(len(labels))
    fig = _new_figure(side + 1.2, side)
    ax = fig.add_subplot()
    im = ax.imshow(att, cmap=CMAP, vmin=0.0, vmax=colour_max(result, layer), interpolation="nearest")
    _label_axes(ax, labels)
    ax.set_xlabel("key (attended to)")
    ax.set_ylabel("query (attending)")
    ax.set_title(f"{result.model_name} - layer {layer}, head {head}", fontsize=11)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03, label="attention weight")
    return fig


def _mosaic(mats: np.ndarray, cols: int, gap: int) -> np.ndarray:
    """Tile (n, t, t) matrices into one image, ``cols`` per row, NaN (drawn white) between them."""
    n, t, _ = mats.shape
    rows, cell = math.ceil(n / cols), t + gap
    out = np.full((rows * cell - gap, cols * cell - gap), np.nan, np.float32)
    for k in range(n):
        r, c = divmod(k, cols)
        out[r * cell: r * cell + t, c * cell: c * cell + t] = mats[k]
    return out


def _white_nan_cmap(name: str = CMAP):
    return matplotlib.colormaps[name].with_extremes(bad="white")


def layer_figure(result: AttentionResult, layer: int = -1) -> Figure:
    """Every head of one layer in a grid; token labels on the outer edges when they fit.

    Drawn as one mosaic image on one Axes (a dozen subplots take several times longer to render).
    """
    layer, _ = result.check_index(layer, 0)
    att, labels = result.attentions[layer], result.display_tokens
    n, t = att.shape[0], len(labels)
    cols = min(n, 4 if n > 6 else n)
    rows = math.ceil(n / cols)
    gap = max(1, round(t * 0.12))
    cell = t + gap
    cell_in = float(np.clip(1.8 + 0.05 * t, 2.2, 4.0))
    fig = _new_figure(cols * cell_in + 1.4, rows * cell_in + 0.8)
    ax = fig.add_subplot()
    im = ax.imshow(np.ma.masked_invalid(_mosaic(att, cols, gap)), cmap=_white_nan_cmap(), vmin=0.0,
                   vmax=colour_max(result, layer), interpolation="nearest")
    if t <= 40:
        step, fs = _tick_step(t), _fontsize(t, 8.0)
        idx = list(range(0, t, step))
        ax.set_xticks([c * cell + i for c in range(cols) for i in idx], [labels[i] for _ in range(cols) for i in idx],
                      rotation=90, fontsize=fs)
        ax.set_yticks([r * cell + i for r in range(rows) for i in idx], [labels[i] for _ in range(rows) for i in idx],
                      fontsize=fs)
    else:
        ax.set_xticks([])
        ax.set_yticks([])
    ax.tick_params(length=2)
    for s in ax.spines.values():
        s.set_visible(False)
    for k in range(n):
        r, c = divmod(k, cols)
        ax.text(c * cell + (t - 1) / 2, r * cell - 0.6, f"head {k}", ha="center", va="bottom", fontsize=9)
    fig.suptitle(f"{result.model_name} - layer {layer}, all {n} heads (rows: query, columns: key)", fontsize=11)
    fig.colorbar(im, ax=ax, fraction=0.025, pad=0.02, label="attention weight")
    return fig


def model_figure(result: AttentionResult) -> Figure:
    """Every head of every layer as a thumbnail (one mosaic image, so it stays fast)."""
    att = _downsample(result.attentions.astype(np.float32), THUMB_MAX)
    n_layers, n_heads, t, _ = att.shape
    gap = max(1, t // 6)
    cell = t + gap
    mosaic = _mosaic(att.reshape(n_layers * n_heads, t, t), n_heads, gap)
    fig = _new_figure(n_heads * 0.85 + 1.6, n_layers * 0.85 + 1.0)
    ax = fig.add_subplot()
    im = ax.imshow(np.ma.masked_invalid(mosaic), cmap=_white_nan_cmap(), norm=PowerNorm(0.5, vmin=0.0, vmax=1.0),
                   interpolation="nearest")
    ax.set_xticks([h * cell + (t - 1) / 2 for h in range(n_heads)], [f"H{h}" for h in range(n_heads)], fontsize=8)
    ax.set_yticks([la * cell + (t - 1) / 2 for la in range(n_layers)], [f"L{la}" for la in range(n_layers)],
                  fontsize=8)
    ax.tick_params(length=0)
    for s in ax.spines.values():
        s.set_visible(False)
    shown = f", {result.seq_len} tokens" + (f" averaged to {t}" if t < result.seq_len else "")
    ax.set_title(f"{result.model_name} - every layer (rows) x head (columns){shown}", fontsize=11)
    fig.colorbar(im, ax=ax, fraction=0.03, pad=0.02, label="attention weight (sqrt scale)")
    return fig


def diff_figure(diff: AttentionDiff, layer: int | None = None, head: int | None = None) -> Figure:
    """Top: per-head change (JS divergence). Bottom: one head (the most changed unless given)
    before, after, and after - before."""
    a, b = diff.a, diff.b
    if layer is None or head is None:
        layer, head = diff.most_changed
    layer, head = a.check_index(layer, head)
    labels, t = a.display_tokens, a.seq_len
    side = float(np.clip(3.0 + 0.09 * t, 3.4, 6.0))
    n_layers, n_heads = diff.js.shape
    fig = _new_figure(3 * side + 1.5, side + max(2.2, 0.45 * n_layers) + 1.2)
    grid = fig.add_gridspec(2, 3, height_ratios=[max(2.2, 0.45 * n_layers), side], hspace=0.35)

    ax = fig.add_subplot(grid[0, :])
    im = ax.imshow(diff.js, cmap="magma_r", vmin=0.0, aspect="auto", interpolation="nearest")
    ax.set_xticks(range(n_heads), [f"H{h}" for h in range(n_heads)], fontsize=8)
    ax.set_yticks(range(n_layers), [f"L{la}" for la in range(n_layers)], fontsize=8)
    ax.add_patch(Rectangle((head - 0.5, layer - 0.5), 1, 1, fill=False, edgecolor="#1f77b4", linewidth=2.5))
    ax.set_title(f"attention change per head, {a.model_name} -> {b.model_name} "
                 f"(Jensen-Shannon divergence of rows, nats; box = shown below)", fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.02, pad=0.01)

    before, after = a.attentions[layer, head], b.attentions[layer, head]
    vmax = max(float(before.max()), float(after.max()), 1e-6)
    delta = after - before
    dmax = max(float(np.abs(delta).max()), 1e-6)
    panels = [(before, f"before: {a.model_name}", CMAP, 0.0, vmax),
              (after, f"after: {b.model_name}", CMAP, 0.0, vmax),
              (delta, "after - before", DIFF_CMAP, -dmax, dmax)]
    for k, (mat, title, cmap, lo, hi) in enumerate(panels):
        axk = fig.add_subplot(grid[1, k])
        imk = axk.imshow(mat, cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest")
        _label_axes(axk, labels, y=k == 0, big=8.0)
        axk.set_title(f"layer {layer}, head {head} - {title}", fontsize=9)
        fig.colorbar(imk, ax=axk, fraction=0.046, pad=0.03)
    return fig


# ------------------------------------------------------------------------------- save to a file


def plot_head(result: AttentionResult, path: str | Path, layer: int = 0, head: int = 0) -> Path:
    return save_png(head_figure(result, layer, head), path)


def plot_layer(result: AttentionResult, path: str | Path, layer: int = -1) -> Path:
    return save_png(layer_figure(result, layer), path)


def plot_model(result: AttentionResult, path: str | Path) -> Path:
    return save_png(model_figure(result), path)


def plot_diff(diff: AttentionDiff, path: str | Path, layer: int | None = None, head: int | None = None) -> Path:
    return save_png(diff_figure(diff, layer, head), path)
