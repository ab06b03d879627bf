"""Carving a split from another: stratified and seeded, in numpy index arrays.

:func:`stratified_split` draws the rows scikit-learn's ``train_test_split(..., stratify=labels,
random_state=seed)`` draws (StratifiedShuffleSplit: each class's share by the approximate mode of the
multivariate hypergeometric, ties broken by the seeded RandomState, then a seeded permutation within
each class), so a seed gives the split it always gave; but it builds no Python list of row numbers
(scikit-learn collects the rows of each class in lists of numpy scalars before shuffling them: about
150 MiB for 2.4 M rows). Where scikit-learn refuses to stratify (fewer rows to carve than classes),
:func:`proportional_split` carves each class's share by largest remainders instead.
"""

from __future__ import annotations

import math

import numpy as np


def _approximate_mode(class_counts: np.ndarray, n_draws: int, rng: np.random.RandomState) -> np.ndarray:
    """Rows drawn per class when ``n_draws`` are drawn from ``class_counts``: the floor of each class's
    share, the leftover rows going to the largest remainders (ties broken at random by ``rng``), the
    rule and the draws of scikit-learn's ``sklearn.utils.extmath._approximate_mode``."""
    continuous = class_counts / class_counts.sum() * n_draws
    floored = np.floor(continuous)
    need = int(n_draws - floored.sum())
    if need > 0:
        remainder = continuous - floored
        for value in np.sort(np.unique(remainder))[::-1]:
            (inds,) = np.where(remainder == value)
            add = min(len(inds), need)
            floored[rng.choice(inds, size=add, replace=False)] += 1
            need -= add
            if need == 0:
                break
    return floored.astype(np.int64)


def _carved_size(n: int, size: float | int) -> int | None:
    """Rows to carve: ``ceil(size * n)`` for a fraction, ``size`` for a count; None where it leaves no row
    to keep or carves none (what scikit-learn refuses)."""
    if isinstance(size, float):
        n_rest = math.ceil(size * n) if 0 < size < 1 else 0
    else:
        n_rest = int(size)
    return n_rest if 0 < n_rest < n else None


def stratified_split(labels: np.ndarray, size: float | int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(keep, rest): the row numbers of ``labels`` (class ids or strata) kept and carved, each sorted,
    with ``rest`` a fraction ``size`` (or ``size`` rows) of them stratified by class and drawn with
    ``seed``: scikit-learn's stratified split of the same arguments (see the module's doc), or the
    :func:`proportional_split` where that cannot stratify."""
    n = len(labels)
    n_rest = _carved_size(n, size)
    counts = _class_counts(labels)
    if n_rest is None or counts.min() < 2 or min(n - n_rest, n_rest) < len(counts):
        return proportional_split(labels, size, seed)
    # each class's rows, ascending (a stable sort, cut at the class boundaries), as the smallest
    # integers that hold a row number
    index = np.int32 if n <= np.iinfo(np.int32).max else np.int64
    by_class = np.split(np.argsort(labels, kind="stable").astype(index, copy=False), np.cumsum(counts)[:-1])
    rng = np.random.RandomState(seed)
    n_keep = _approximate_mode(counts, n - n_rest, rng)
    n_carve = _approximate_mode(counts - n_keep, n_rest, rng)
    keep, rest = [], []
    for rows, k, c in zip(by_class, n_keep, n_carve, strict=True):
        shuffled = rows[rng.permutation(len(rows))]
        keep.append(shuffled[:k])
        rest.append(shuffled[k:k + c])
    del by_class
    return np.sort(np.concatenate(keep)), np.sort(np.concatenate(rest))


def _class_counts(labels: np.ndarray) -> np.ndarray:
    """Rows per class present, in the classes' order: a count of ids for non-negative integers (class
    ids, strata), a sort otherwise."""
    if labels.dtype.kind in "iu" and len(labels) and labels.min() >= 0:
        counts = np.bincount(labels)
        return counts[counts > 0]
    return np.unique(labels, return_counts=True)[1]


def proportional_split(labels: np.ndarray, size: float | int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(keep, rest) with ``rest`` as close to each class's share as whole rows allow (largest
    remainders get the leftover rows), drawn at random within each class: the split for data sets
    too small for a stratified one."""
    n = len(labels)
    n_rest = min(n - 1, math.ceil(size * n) if isinstance(size, float) else int(size))
    classes, counts = np.unique(labels, return_counts=True)
    exact = n_rest * counts / n
    alloc = np.floor(exact).astype(int)
    order = np.argsort(-(exact - alloc), kind="stable")
    alloc[order[:n_rest - int(alloc.sum())]] += 1
    rng = np.random.default_rng(seed)
    rest = np.concatenate([rng.choice(np.flatnonzero(labels == c), size=min(k, cnt), replace=False)
                           for c, k, cnt in zip(classes, alloc, counts, strict=True)])
    return np.setdiff1d(np.arange(n), rest), np.sort(rest)


__all__ = ["proportional_split", "stratified_split"]
