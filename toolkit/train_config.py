"""The trainer's parameters (`train.*`), light enough for the CLI to import at start-up."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from toolkit import limits
from toolkit.errors import ToolkitError
from toolkit.params import Param, Section, resolve

TRAIN_PARAMS: tuple[Param, ...] = (
    Param(
        "epochs", int, 8,
        f"Passes over the training data (one epoch = as many names as it holds); at most "
        f"{limits.MAX_EPOCHS:,}.",
    ),
    Param(
        "examples", int, 0,
        "Train on this many names in total instead (the tutorial: 100000); 0 counts epochs; at "
        f"most {limits.MAX_EXAMPLES:,}.",
    ),
    Param(
        "batch_size", int, 32,
        f"Names per mini-batch (1 is the tutorial's one name at a time); at most {limits.MAX_BATCH_SIZE}.",
    ),
    Param(
        "optimizer", str, "adam",
        "Optimiser (adamw: Adam with decoupled weight decay). Embeddings a model marks sparse "
        "always get SparseAdam.",
        choices=("adam", "adamw", "sgd"),
    ),
    Param("lr", float, 0.005, "Learning rate (the tutorial's SGD uses 0.005)."),
    Param("weight_decay", float, 0.0, "L2 penalty on the weights."),
    Param(
        "schedule", str, "cosine",
        "Learning-rate schedule: constant, or cosine decay to zero over the whole run.",
        choices=("constant", "cosine"),
    ),
    Param(
        "sampling", str, "shuffle",
        "shuffle: every name once per epoch; balanced: the tutorial's random class, then random name.",
        choices=("shuffle", "balanced"),
    ),
    Param("bucket", bool, True, "Batch names of similar length together (less padding, faster)."),
    Param("label_smoothing", float, 0.0, "Share of the target spread over the other classes (0 to <1)."),
    Param("clip", float, 1.0, "Clip the gradient norm to this value; 0 turns clipping off."),
    Param(
        "class_weights", float, 0.0,
        "Weight the loss by inverse class frequency to this power: 0 off, 1 every class counts "
        "the same in total, 0.5 in between (helps rare classes and macro-F1).",
    ),
    Param(
        "logit_adjust", float, 0.0,
        "Train on logits plus this times the log class prior (logit-adjusted loss); predictions "
        "then lean towards rare classes: 0 off, 1 the balanced-error optimum.",
    ),
    Param(
        "select", str, "loss",
        "Which validation epoch is best (kept, and counted by patience): lowest loss or highest accuracy.",
        choices=("loss", "accuracy"),
    ),
    Param(
        "patience", int, 0,
        "Stop after this many epochs without a better validation epoch (see select); 0 never "
        "stops early. The weights of the best validation epoch are kept either way.",
    ),
    Param(
        "threads", int, 0,
        "CPU threads for torch; 0 chooses one, which never collapses on a busy machine "
        "(2 is about 1.3x faster on a quiet one); at most the CPU count.",
    ),
    Param(
        "max_length", int, limits.MAX_TEXT_LENGTH,
        "Longest text in characters: longer ones are cut to this at training and prediction "
        f"(the cuts are counted in the run's report); at most {limits.MAX_TEXT_LENGTH_LIMIT:,}.",
    ),
)


@dataclass(frozen=True)
class TrainConfig:
    """The checked trainer parameters (see TRAIN_PARAMS for their meaning)."""

    epochs: int = 8
    examples: int = 0
    batch_size: int = 32
    optimizer: str = "adam"
    lr: float = 0.005
    weight_decay: float = 0.0
    schedule: str = "cosine"
    sampling: str = "shuffle"
    bucket: bool = True
    label_smoothing: float = 0.0
    clip: float = 1.0
    class_weights: float = 0.0
    logit_adjust: float = 0.0
    select: str = "loss"
    patience: int = 0
    threads: int = 0
    max_length: int = limits.MAX_TEXT_LENGTH

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | TrainConfig | None = None) -> TrainConfig:
        """Build from `{name: value}` (strings allowed), checking every value."""
        if isinstance(params, TrainConfig):
            return params
        values = resolve([Section("train", "the trainer", TRAIN_PARAMS)], dict(params or {}))["train"]
        config = cls(**values)
        config._check()
        return config

    def _check(self) -> None:
        at_least = {"epochs": 1, "batch_size": 1, "examples": 0, "patience": 0, "threads": 0,
                    "max_length": 1}
        for name, low in at_least.items():
            if getattr(self, name) < low:
                raise ToolkitError(f"train.{name} must be at least {low}; got {getattr(self, name)}.")
        at_most = {
            "epochs": (limits.MAX_EPOCHS, ""), "examples": (limits.MAX_EXAMPLES, ""),
            "batch_size": (limits.MAX_BATCH_SIZE, ""),
            "threads": (limits.cpu_count(), " (the CPUs this machine gives the process)"),
            "max_length": (limits.MAX_TEXT_LENGTH_LIMIT, ""),
        }
        for name, (high, why) in at_most.items():
            if getattr(self, name) > high:
                raise ToolkitError(
                    f"train.{name} must be at most {high:,}{why}; got {getattr(self, name):,}."
                )
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ToolkitError(
                f"train.label_smoothing must be at least 0 and below 1; got {self.label_smoothing}."
            )
        for name in ("lr", "weight_decay", "clip", "class_weights", "logit_adjust"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0 or (name == "lr" and value == 0):
                kind = "positive" if name == "lr" else "zero or positive"
                raise ToolkitError(f"train.{name} must be a {kind} number; got {value}.")

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}
