"""Compiled loops for training a model whose first stage is a weighted bag of table rows
(`toolkit.RowBag`: `ngram`'s n-gram table), with numba.

A training step of such a model is a few thousand row reads and writes: torch spends most of
it in the overhead of about forty small operations (py-spy: LazyAdam 36%, backward 20%,
forward 15% of an `ngram` step on names). These two loops do the table's part of the step in
one pass each, as fastText's C++ does:

- `bag_sums`: each text's features, the sum of its rows times their weights;
- `lazy_adam_rows`: the gradient of every row the batch touched (each occurrence's weight
  times its text's gradient of the features) and `toolkit.sparse_adam.LazyAdam`'s update of
  those rows, lazy decoupled weight decay included.

A text's ids and weights are read from flat arrays: text t's are `ids[offsets[t]:offsets[t+1]]`.
numba is the optional extra `toolkit[fast]`; this module is imported only when it is there.
"""

from __future__ import annotations

import math

import numba
import numpy as np


@numba.njit(cache=True, nogil=True, error_model="numpy")
def bag_sums(
    texts: np.ndarray, offsets: np.ndarray, ids: np.ndarray, weights: np.ndarray, table: np.ndarray,
) -> np.ndarray:
    """(len(texts), width) float32: for each text, the sum of its rows times their weights."""
    width = table.shape[1]
    out = np.zeros((len(texts), width), dtype=np.float32)
    for b in range(len(texts)):
        text = texts[b]
        for j in range(offsets[text], offsets[text + 1]):
            row, weight = ids[j], weights[j]
            for c in range(width):
                out[b, c] += weight * table[row, c]
    return out


@numba.njit(cache=True, nogil=True, error_model="numpy")
def lazy_adam_rows(
    texts: np.ndarray, offsets: np.ndarray, ids: np.ndarray, weights: np.ndarray, grads: np.ndarray,
    table: np.ndarray, moments: np.ndarray, stamps: np.ndarray, step: int,
    step_size: float, beta1: float, beta2: float, eps: float,
    decaying: bool, decay_log: float, decayed_at: np.ndarray,
) -> int:
    """Sum the gradient of each row the batch touched and apply Adam's update to those rows
    (moments (rows, 2, width): first and second; `step_size` already bias-corrected). With
    `decaying`, a row first catches up on the decay it owes (exp(decay_log - decayed_at[row]))
    and is marked up to date. `stamps[row] == step` marks a row already seen in this step.
    Returns the number of rows touched."""
    width = table.shape[1]
    occurrences = 0
    for b in range(len(texts)):
        occurrences += offsets[texts[b] + 1] - offsets[texts[b]]
    touched = np.empty(occurrences, dtype=np.int64)
    count = 0
    for b in range(len(texts)):
        for j in range(offsets[texts[b]], offsets[texts[b] + 1]):
            row = ids[j]
            if stamps[row] != step:  # the first occurrence of this row in this step
                stamps[row] = step
                touched[count] = row
                count += 1
    summed = np.zeros((count, width), dtype=np.float32)
    for u in range(count):
        stamps[touched[u]] = -2 - u  # for the sum below, each touched row's slot (below -1)
    for b in range(len(texts)):
        grad = grads[b]
        for j in range(offsets[texts[b]], offsets[texts[b] + 1]):
            into = summed[-2 - stamps[ids[j]]]
            weight = weights[j]
            for c in range(width):
                into[c] += weight * grad[c]
    # float32 constants: float64 ones would convert every element twice
    keep1, keep2 = np.float32(1.0 - beta1), np.float32(beta2)
    share2, size, epsilon = np.float32(1.0 - beta2), np.float32(step_size), np.float32(eps)
    for u in range(count):
        row = touched[u]
        stamps[row] = step
        if decaying:
            factor = np.float32(math.exp(decay_log - decayed_at[row]))
            decayed_at[row] = decay_log
        else:
            factor = np.float32(1.0)
        first, second, weights_of_row, grad_of_row = moments[row, 0], moments[row, 1], table[row], summed[u]
        for c in range(width):
            g = grad_of_row[c]
            m = first[c] + keep1 * (g - first[c])
            v = second[c] * keep2 + share2 * g * g
            first[c] = m
            second[c] = v
            weights_of_row[c] = weights_of_row[c] * factor - size * (m / (np.sqrt(v) + epsilon))
    return count


@numba.njit(cache=True, nogil=True, error_model="numpy")
def cross_entropy_grads(logits: np.ndarray, targets: np.ndarray, smoothing: float) -> float:
    """Mean cross-entropy of (texts, classes) `logits` against class indices, the targets moved
    towards uniform by `smoothing` (torch's label_smoothing); `logits` is overwritten with the
    loss's gradient (softmax minus the smoothed target, over the number of texts)."""
    texts, classes = logits.shape
    total = 0.0
    for b in range(texts):
        row = logits[b]
        top = row[0]
        for c in range(1, classes):
            top = max(top, row[c])
        norm = 0.0
        for c in range(classes):
            norm += math.exp(row[c] - top)
        log_norm = top + math.log(norm)
        target = targets[b]
        spread = 0.0
        for c in range(classes):
            spread += row[c] - log_norm
        total += -(1.0 - smoothing) * (row[target] - log_norm) - smoothing / classes * spread
        for c in range(classes):
            wanted = smoothing / classes + (1.0 - smoothing if c == target else 0.0)
            row[c] = (math.exp(row[c] - log_norm) - wanted) / texts
    return total / texts
