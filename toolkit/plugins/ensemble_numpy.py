"""`ensemble`'s forward pass on numpy arrays, without torch (`predict --runtime numpy`, and `auto`'s
choice for it): its members' own numpy forward passes, combined as `Ensemble.forward` combines
their logits (ensemble_model.py), in float32 as torch does. Built only when every member has one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

import toolkit

#: The saved mixture weights' name in the torch model's state_dict.
MEMBER_WEIGHTS = "member_weights"


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Each row's log-softmax in float32, as torch.log_softmax: x - max - log(sum(exp(x - max)))."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    shifted -= np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return shifted


def log_sigmoid(logits: np.ndarray) -> np.ndarray:
    """log(sigmoid(x)) without overflow: min(x, 0) - log1p(exp(-|x|))."""
    return np.minimum(logits, 0) - np.log1p(np.exp(-np.abs(logits)))


def log_sum_exp(values: np.ndarray) -> np.ndarray:
    """log(sum(exp(values))) over the first axis (the members), as torch.logsumexp."""
    largest = values.max(axis=0)
    finite = np.where(np.isfinite(largest), largest, 0)
    with np.errstate(divide="ignore"):  # every member weighted 0 for a class: log 0 = -inf, as torch
        return np.log(np.exp(values - finite).sum(axis=0)) + finite


class EnsembleArrays:
    """`Ensemble` on numpy arrays: each member's `ArrayModel` reads the weights under its prefix
    (`members.0.`), and `member_weights` mixes them."""

    def __init__(
        self, members: Sequence[toolkit.ArrayModel], combine: str, multi_label: bool = False
    ) -> None:
        self.members, self.combine, self.multi_label = list(members), combine, multi_label
        self.shapes: dict[str, tuple[int, ...]] = {
            f"members.{i}.{name}": tuple(shape)
            for i, member in enumerate(self.members) for name, shape in member.shapes.items()
        }
        self.shapes[MEMBER_WEIGHTS] = (len(self.members),)
        self.member_weights = np.full(len(self.members), 1 / len(self.members), dtype=np.float32)

    def load(self, weights: Mapping[str, np.ndarray]) -> None:
        for i, member in enumerate(self.members):
            member.load({name: weights[f"members.{i}.{name}"] for name in member.shapes})
        self.member_weights = np.asarray(weights[MEMBER_WEIGHTS], dtype=np.float32)

    def logits(self, indices: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """(texts, classes) float32 logits, as `Ensemble.forward`."""
        logits = np.stack([np.asarray(member.logits(indices, lengths), dtype=np.float32)
                           for member in self.members])  # (members, texts, classes)
        weights = self.member_weights.reshape(-1, 1, 1)
        with np.errstate(divide="ignore"):  # a member weighted 0: log 0 = -inf, as in torch
            log_weights = np.log(weights)
        if self.multi_label:  # each class's mixed probability's logit: log p - log(1 - p)
            yes, no = log_sigmoid(logits), log_sigmoid(-logits)
            if self.combine == "log-probability":
                return (yes * weights).sum(axis=0) - (no * weights).sum(axis=0)
            return log_sum_exp(yes + log_weights) - log_sum_exp(no + log_weights)
        log_probs = np.stack([log_softmax(member) for member in logits])
        if self.combine == "log-probability":
            return (log_probs * weights).sum(axis=0)
        return log_sum_exp(log_probs + log_weights)  # the log of the weighted mean
