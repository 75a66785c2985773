"""`ensemble`: several registered models reading the same character indices, averaged.

Each member is built by its own plugin's factory with that plugin's default parameters, and
the member's own settings (`ngram:model.max_n=5`). By default (`training=separate`) the
trainer trains the members one after another, each with its own trainer defaults
(`ModelSpec.train_defaults`) and its own early stopping; a `train.*` value the run sets away
from the trainer's default applies to every member, and a member's own `train.*` settings
(`ngram:train.weight_decay=0.1`) to it alone, over both;
then the ensemble predicts with the weighted mean of the members' log-probabilities
(`combine=log-probability`, the default: a weighted geometric mean, normalised) or of their
probabilities (`combine=probability`). With `weighting=validation` (the default) the weights
are the mixture of the members' probabilities most likely on the validation split, fitted by
expectation-maximisation after the members are trained, so a member that is weak on this data
counts for little; with `weighting=equal`, or no validation split, they are equal.
In a multi-label run every class is its own yes/no question: the ensemble mixes the members'
per-class (sigmoid) probabilities the same ways, and fits its weights to every (text, class)
decision of the validation split.
`training=joint` trains all members at once, as one model, on the sum of their losses.

The ensemble's weights are its members' weights, so it is saved and loaded like any model:
the same `members` parameter rebuilds the same members, and their weights load into them.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from toolkit.plugins.ensemble import EnsembleConfig, member_parts

#: Most expectation-maximisation steps when fitting the member weights.
MAX_EM_STEPS = 500


class Ensemble(nn.Module):
    """Members' log-probabilities combined by the mean of probabilities or of log-probabilities."""

    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        config: EnsembleConfig | None = None,
        encoder: Any = None,
        multi_label: bool = False,
    ) -> None:
        super().__init__()
        self.multi_label = multi_label
        config = config or EnsembleConfig()
        parts = member_parts(config, encoder)
        self.names = [label for label, _, _, _ in parts]
        self.combine = config.combine
        self.weighting = config.weighting
        self.members = nn.ModuleList()
        #: (label, member, its trainer defaults, its own trainer settings) for each member the
        #: trainer trains on its own.
        self.separate_members: list[tuple[str, nn.Module, dict[str, Any], dict[str, Any]]] = []
        for label, spec, params, trainer in parts:
            member = spec.build(
                vocab_size=vocab_size, num_classes=num_classes, params=params, encoder=encoder,
                multi_label=multi_label,
            )
            self.members.append(member)
            if config.training == "separate":
                self.separate_members.append((label, member, dict(spec.train_defaults), trainer))
        # Saved with the members' weights, so a loaded ensemble mixes them as the trained one did.
        self.register_buffer("member_weights", torch.full((len(parts),), 1 / len(parts)))

    def weigh_members(self, log_probs: torch.Tensor, targets: torch.Tensor) -> None:
        """Set the member weights to the mixture of the members' probabilities most likely on
        held-out texts: `log_probs` (members, texts, classes) and their `targets`. Expectation-
        maximisation from equal weights; the likelihood never decreases, and it stops when no
        weight moves by 1e-6. Does nothing with `weighting=equal`."""
        if self.weighting != "validation" or not len(targets):
            return
        if targets.dim() == 2:  # multi-label: every (text, class) is a yes/no observation
            log_no = torch.log(-torch.expm1(log_probs).clamp(max=-1e-12))  # log(1 - p), p < 1
            truth = torch.where(targets.bool().unsqueeze(0), log_probs, log_no).flatten(1)
        else:
            truth = log_probs.gather(2, targets.view(1, -1, 1).expand(len(self.members), -1, 1)).squeeze(2)
        weights = torch.full((len(self.members),), 1 / len(self.members), dtype=truth.dtype)
        for _ in range(MAX_EM_STEPS):
            joint = truth + weights.log().unsqueeze(1)  # (members, texts)
            updated = torch.softmax(joint, dim=0).mean(dim=1)
            done = bool((updated - weights).abs().max() < 1e-6)
            weights = updated
            if done:
                break
        self.member_weights.copy_(weights.to(self.member_weights))

    def forward(self, indices: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if self.multi_label:
            return self._multi_label_logits(indices, lengths)
        return combined(self.members, self.member_weights, self.combine, indices, lengths)

    def _multi_label_logits(self, indices: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The logit of each class's mixed probability: log p - log(1 - p), with p the weighted
        mean of the members' sigmoid probabilities (or, with log-probability, the logit of
        their weighted geometric mean)."""
        logits = torch.stack([member(indices, lengths) for member in self.members])  # members, batch, classes
        weights = self.member_weights.view(-1, 1, 1)
        yes, no = torch.nn.functional.logsigmoid(logits), torch.nn.functional.logsigmoid(-logits)
        if self.combine == "log-probability":
            return (yes * weights).sum(dim=0) - (no * weights).sum(dim=0)
        return torch.logsumexp(yes + weights.log(), dim=0) - torch.logsumexp(no + weights.log(), dim=0)

    def onnx_form(self) -> nn.Module:
        """The ensemble as `toolkit export` traces it: its members' own export forms, combined."""
        return EnsembleGraph(self)


class EnsembleGraph(nn.Module):
    """`Ensemble`'s forward over its members' export forms (`onnx_form`, when they have one)."""

    def __init__(self, ensemble: Ensemble) -> None:
        super().__init__()
        self.members = nn.ModuleList(
            member.onnx_form() if hasattr(member, "onnx_form") else member for member in ensemble.members
        )
        self.register_buffer("member_weights", ensemble.member_weights.clone())
        self.combine = ensemble.combine

    def forward(self, indices: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return combined(self.members, self.member_weights, self.combine, indices, lengths)


def combined(
    members: nn.ModuleList, member_weights: torch.Tensor, combine: str, indices: torch.Tensor,
    lengths: torch.Tensor,
) -> torch.Tensor:
    """The members' log-probabilities combined: the log of their weighted mean, or their
    weighted mean (`combine=log-probability`)."""
    log_probs = torch.stack(
        [torch.log_softmax(member(indices, lengths), dim=1) for member in members]
    )  # (members, batch, classes)
    weights = member_weights.view(-1, 1, 1)
    if combine == "log-probability":
        return (log_probs * weights).sum(dim=0)
    return torch.logsumexp(log_probs + weights.log(), dim=0)  # log of the weighted mean
