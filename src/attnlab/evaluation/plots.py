"""PNG plots for a run: the confusion matrix and the training curve."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from attnlab.io import atomic_path


def save_figure(fig: Any, path: Path) -> None:
    """Write atomically (:func:`attnlab.io.atomic_path`: a temp file beside the target, then rename)
    and close the figure."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight", format=path.suffix.lstrip(".") or "png")
    plt.close(fig)


def plot_confusion_matrix(cm: list[list[int]], labels: list[str], path: Path, title: str) -> None:
    m = np.asarray(cm)
    size = max(3.5, 0.6 * len(labels) + 2.5)
    fig, ax = plt.subplots(figsize=(size, size))
    im = ax.imshow(m, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            ax.text(j, i, str(m[i, j]), ha="center", va="center",
                    color="white" if m[i, j] > m.max() / 2 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046)
    save_figure(fig, path)


def plot_history(history: list[dict[str, Any]], path: Path, title: str) -> None:
    """Training loss per logged step and validation accuracy per evaluation."""
    train = [(h["step"], h["loss"]) for h in history if "loss" in h]
    evals = [(h["step"], h["eval_accuracy"]) for h in history if "eval_accuracy" in h]
    fig, ax = plt.subplots(figsize=(6, 3.8))
    if train:
        ax.plot(*zip(*train, strict=True), label="train loss", color="tab:blue")
    evl = [(h["step"], h["eval_loss"]) for h in history if "eval_loss" in h]
    if evl:
        ax.plot(*zip(*evl, strict=True), "o--", label="validation loss", color="tab:orange")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    if evals:
        ax2 = ax.twinx()
        ax2.plot(*zip(*evals, strict=True), "s-", color="tab:green", label="validation accuracy")
        ax2.set_ylabel("validation accuracy")
        ax2.legend(loc="upper right")
    ax.legend(loc="upper left")
    save_figure(fig, path)
