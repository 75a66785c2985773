"""`ensemble`: several registered models reading the same character indices, averaged.

The model is in `ensemble_model.py`; this module registers it and imports that one (and
torch) only when a model is built, so the command line starts fast.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import toolkit

COMBINE = ("probability", "log-probability")
TRAINING = ("separate", "joint")
WEIGHTING = ("validation", "equal")


AUTO = "auto"
#: `members=auto` for texts of several words: ngram, cnn, and an ngram of character 1-5-grams whose
#: weights decay (model.max_n=5, train.weight_decay=0.1), which errs on other texts than the plain one.
WORDS_MEMBERS = "ngram,cnn,ngram:model.max_n=5:train.weight_decay=0.1"
#: `members=auto` for names and single words (a median of fewer than two words per training
#: text): the same and a `gru`, which gained there and is slow to train on longer texts.
NAMES_MEMBERS = f"{WORDS_MEMBERS},gru"

#: Most member models in one ensemble.
MAX_MEMBERS = 8


@dataclass(frozen=True)
class EnsembleConfig(toolkit.Config):
    """`ensemble`'s parameters."""

    owner = "model 'ensemble'"
    members: str = toolkit.param_field(
        AUTO, "Member models, comma-separated; a member's own settings follow its name after colons, "
        f"e.g. ngram:train.weight_decay=0.1:model.max_n=5. auto: {WORDS_MEMBERS} when the training "
        f"texts have a median of {toolkit.SEVERAL_WORDS} or more words, and a gru beside them otherwise "
        "(names, single words); both chosen on the panel's validation split (bench/ensemble_choices.py).",
        search=toolkit.Space.choice(AUTO, WORDS_MEMBERS, NAMES_MEMBERS, "ngram,cnn"),
    )
    combine: str = toolkit.param_field(
        "log-probability", "Average the members' log-probabilities (a weighted geometric mean, chosen on "
        "the panel's validation split by bench/ensemble_choices.py) or their probabilities.",
        choices=COMBINE, search=toolkit.Space.choice(),
    )
    weighting: str = toolkit.param_field(
        "validation", "Member weights: the mixture most likely on the validation split (fitted after "
        "separate training; equal otherwise), or equal.", choices=WEIGHTING, search=toolkit.Space.choice(),
    )
    training: str = toolkit.param_field(
        "separate", "Train each member on its own, with its own trainer defaults and early "
        "stopping, or all at once.", choices=TRAINING,
    )

    def for_texts(self, encoder: Any) -> EnsembleConfig:
        """This config with `members=auto` resolved for the texts the encoder was fitted on
        (`toolkit.reads_several_words`)."""
        if self.members != AUTO:
            return self
        several = toolkit.reads_several_words(encoder)
        return replace(self, members=WORDS_MEMBERS if several else NAMES_MEMBERS)

    def member_entries(self) -> list[tuple[str, dict[str, str]]]:
        """Each member's model name and its own settings: `MODEL[:GROUP.NAME=VALUE...]`."""
        entries = []
        for entry in self.members.split(","):
            name, *settings = (part.strip() for part in entry.split(":"))
            if name or settings:
                entries.append((name, dict(setting.partition("=")[::2] for setting in settings)))
        return entries

    def member_labels(self) -> list[str]:
        """How a member is named in logs: as written in `members`, without spaces."""
        return [":".join([name, *(f"{k}={v}" for k, v in settings.items())])
                for name, settings in self.member_entries()]

    def check(self) -> str | None:
        if self.members == AUTO:
            return ("members=auto has a member with its own train.* settings, which needs "
                    "training=separate; with training=joint name the members, e.g. members=ngram,cnn"
                    if self.training == "joint" else None)
        entries = self.member_entries()
        names = [name for name, _ in entries]
        if not 1 <= len(names) <= MAX_MEMBERS or "ensemble" in names or "" in names:
            return (f"needs 1 to {MAX_MEMBERS} comma-separated member models other than 'ensemble' "
                    f"(e.g. ngram,cnn,lstm); got {self.members!r}")
        for entry in self.members.split(","):
            _, *settings = entry.split(":")
            if any("=" not in setting or not setting.partition("=")[0].strip() for setting in settings):
                return (f"member settings are GROUP.NAME=VALUE after a colon "
                        f"(e.g. ngram:train.weight_decay=0.1:model.max_n=5); got {entry.strip()!r}")
        if self.training == "joint" and any(
            key.startswith("train.") for _, settings in entries for key in settings
        ):
            return "a member's train.* settings need training=separate: joint training has one trainer"
        return None


def member_parts(
    config: EnsembleConfig, encoder: Any = None,
) -> list[tuple[str, toolkit.ModelSpec, dict[str, Any], dict[str, Any]]]:
    """Each member's label, spec, model parameters (its own settings over its defaults) and own
    trainer settings, `auto` resolved for the encoder's texts; a member that cannot be one is
    refused in one line."""
    registry = toolkit.load_registry()
    config = config.for_texts(encoder)
    parts = []
    for (name, settings), label in zip(config.member_entries(), config.member_labels(), strict=True):
        spec = registry.model(name)  # an unknown name: one line with did-you-mean
        if toolkit.CHAR_INDICES not in spec.consumes:
            raise toolkit.ToolkitError(
                f"model 'ensemble' reads {toolkit.CHAR_INDICES}, but member '{name}' consumes "
                f"{' or '.join(spec.consumes)}; choose members that read character indices."
            )
        params, trainer = toolkit.model_settings(spec, settings, f"ensemble member '{label}'")
        parts.append((label, spec, params, trainer))
    return parts


def build_ensemble(
    vocab_size: int, num_classes: int, encoder: Any = None, multi_label: bool = False, **params: Any
) -> Any:
    from toolkit.plugins.ensemble_model import Ensemble

    config = EnsembleConfig(**params)
    return Ensemble(vocab_size, num_classes, config, encoder=encoder, multi_label=multi_label)


def build_ensemble_arrays(
    vocab_size: int, num_classes: int, encoder: Any = None, multi_label: bool = False, **params: Any
) -> Any:
    """The ensemble's forward pass on numpy arrays (`toolkit.plugins.ensemble_numpy`) from its
    members' own, with their own settings; None when a member has none (torch computes it)."""
    from toolkit.plugins.ensemble_numpy import EnsembleArrays

    config = EnsembleConfig(**params)
    members = []
    for _, spec, member_params, _ in member_parts(config, encoder):
        member = spec.build_arrays(vocab_size=vocab_size, num_classes=num_classes, params=member_params,
                                   encoder=encoder, multi_label=multi_label)
        if member is None:
            return None
        members.append(member)
    return EnsembleArrays(members, config.combine, multi_label)


@toolkit.hookimpl
def register_models(register) -> None:
    register(
        toolkit.ModelSpec(
            name="ensemble",
            help="Several models on the same characters, trained separately, log-probabilities averaged.",
            factory=build_ensemble,
            array_factory=build_ensemble_arrays,
            config=EnsembleConfig,
            # the members train with their own trainer defaults: tune searches the members
            train_search=dict.fromkeys(
                ("batch_size", "lr", "weight_decay", "label_smoothing", "class_weights")
            ),
        )
    )
