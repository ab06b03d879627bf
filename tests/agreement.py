"""How closely two inference paths over the same weights must agree, derived from the precision
they computed in rather than from what one CPU happened to give.

- **fp32**: the same weights run through different batch shapes take different kernels (AVX2 vs
  AVX-512 / oneDNN blockings) and sum in different orders. Each dot product of length K carries a
  relative error of about K * 2^-24; through six layers the logits move by ~1e-5 and a probability
  by less (dp <= |dz| / 4 for two classes). 1e-4 absolute leaves a margin of ~10x over that.
- **bf16** (autocast): every matmul input is rounded to 8 significant bits (unit roundoff
  u = 2^-8); the error does not average out across layers, and a logit of a few units moves by a
  few percent of a unit. 0.05 absolute on a probability is ~13 u.
- **nf4** (a bitsandbytes 4-bit base, unmerged): its kernels dequantize blocks and multiply in
  the compute dtype through paths whose intermediate precision bitsandbytes does not promise
  (1.5e-4 from the merged fp32 model was seen on AVX2 with an fp32 compute dtype): held to the
  bf16 bound.

Labels must be equal wherever the reference decides them: where the top two probabilities are
closer than twice the tolerance, the rounding of either path may legitimately pick either one.
"""

from __future__ import annotations

import numpy as np

FP32_PROB_ATOL = 1e-4
BF16_PROB_ATOL = 0.05


def prob_atol(precision: str = "fp32") -> float:
    if precision not in ("fp32", "bf16", "nf4"):
        raise ValueError(f"unknown precision {precision!r}")
    return FP32_PROB_ATOL if precision == "fp32" else BF16_PROB_ATOL


def margin(probs: np.ndarray) -> np.ndarray:
    """Per row: the top probability minus the runner-up."""
    top2 = np.sort(np.asarray(probs), axis=-1)[..., -2:]
    return top2[..., 1] - top2[..., 0]


def decided(probs: np.ndarray, precision: str = "fp32") -> np.ndarray:
    """Rows whose label no rounding of ``precision`` can flip."""
    return margin(probs) > 2 * prob_atol(precision)


def assert_same_predictions(got, want, precision: str = "fp32") -> None:
    """``got`` and ``want`` (N, K) probabilities agree within ``precision``'s tolerance, with equal
    labels wherever ``want`` decides them."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, (got.shape, want.shape)
    atol = prob_atol(precision)
    np.testing.assert_allclose(got, want, atol=atol, rtol=0)
    keep = decided(want, precision)
    np.testing.assert_array_equal(got.argmax(-1)[keep], want.argmax(-1)[keep])


def assert_rows_distinguishable(want, precision: str = "fp32") -> None:
    """A shifted or reordered row of ``want`` would fail :func:`assert_same_predictions`: the check
    that an order/padding test built on these rows can fail at all."""
    want = np.asarray(want, dtype=np.float64)
    assert len(want) >= 2
    shifted = np.roll(want, 1, axis=0)
    assert np.abs(shifted - want).max() > prob_atol(precision), "rows too alike to catch a shifted row"


def assert_same_accuracy(probs, labels, recorded: float, precision: str = "fp32") -> None:
    """The accuracy of ``probs`` against ``labels`` equals ``recorded`` up to the rows whose label
    the precision cannot decide (each may count either way)."""
    probs, labels = np.asarray(probs), np.asarray(labels)
    correct = probs.argmax(-1) == labels
    undecided = int((~decided(probs, precision)).sum())
    assert abs(int(correct.sum()) - recorded * len(labels)) <= undecided + 1e-6, (
        float(correct.mean()), recorded, undecided)
