"""`ensemble`: several registered models reading the same character indices, averaged.

Each member is built by its own plugin's factory with that plugin's default parameters.
By default (`training=separate`) the trainer trains the members one after another, each
with its own trainer defaults (`ModelSpec.train_defaults`) and its own early stopping (a
`train.*` value the run sets away from the trainer's default applies to every member),
then the ensemble predicts with the mean of the members' probabilities (`combine=probability`)
or of their log-probabilities (`combine=log-probability`, a normalised geometric mean).
`training=joint` trains all members at once, as one model, on the sum of their losses.

The ensemble's weights are its members' weights, so it is saved and loaded like any model:
the same `members` parameter rebuilds the same members, and their weights load into them.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

import toolkit
from toolkit.plugins.ensemble import EnsembleConfig


class Ensemble(nn.Module):
    """Members' log-probabilities combined by the mean of probabilities or of log-probabilities."""

    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        config: EnsembleConfig | None = None,
        encoder: Any = None,
    ) -> None:
        super().__init__()
        config = config or EnsembleConfig()
        names, combine, training = config.member_names(), config.combine, config.training
        registry = toolkit.load_registry()
        self.names = names
        self.combine = combine
        self.members = nn.ModuleList()
        #: (name, member, trainer parameters) for each member the trainer trains on its own.
        self.separate_members: list[tuple[str, nn.Module, dict[str, Any]]] = []
        for name in names:
            spec = registry.model(name)  # an unknown name: one line with did-you-mean
            if toolkit.CHAR_INDICES not in spec.consumes:
                raise toolkit.ToolkitError(
                    f"model 'ensemble' reads {toolkit.CHAR_INDICES}, but member '{name}' consumes "
                    f"{' or '.join(spec.consumes)}; choose members that read character indices."
                )
            member = spec.build(
                vocab_size=vocab_size, num_classes=num_classes,
                params={p.name: p.default for p in spec.params}, encoder=encoder,
            )
            self.members.append(member)
            if training == "separate":
                self.separate_members.append((name, member, dict(spec.train_defaults)))

    def forward(self, indices: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        log_probs = torch.stack(
            [torch.log_softmax(member(indices, lengths), dim=1) for member in self.members]
        )  # (members, batch, classes)
        if self.combine == "log-probability":
            return log_probs.mean(dim=0)
        return torch.logsumexp(log_probs, dim=0) - math.log(len(self.members))  # log of the mean
