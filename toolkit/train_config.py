"""The trainer's parameters (`train.*`), light enough for the CLI to import at start-up."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from toolkit import limits
from toolkit.params import Config, Param, Section, Space, param_field, params_of, resolve

#: How a run calibrates its probabilities after training (toolkit.calibration).
CALIBRATION_METHODS = ("temperature", "none")
#: `train.threshold`'s words; otherwise it is a number between 0 and 1 (toolkit.multilabel).
THRESHOLD_MODES = ("auto", "per-class")


def threshold_problem(value: str) -> str | None:
    """What is wrong with a `train.threshold` value, or None: auto, per-class or a number in (0, 1)."""
    if value in THRESHOLD_MODES:
        return None
    try:
        number = float(value)
    except ValueError:
        return f"got threshold '{value}'; use auto, per-class or a number between 0 and 1 (e.g. 0.5)"
    if not 0 < number < 1:
        return f"got threshold {value}; a fixed threshold is a number between 0 and 1 (e.g. 0.5)"
    return None


#: `train.engine` values (toolkit.compiled_step).
ENGINES = ("auto", "torch", "compiled")


@dataclass(frozen=True)
class TrainConfig(Config):
    """The trainer's parameters (`train.*`): each declared once, here."""

    owner = "the trainer"

    epochs: int = param_field(
        8, "Passes over the training data (one epoch = as many texts as it holds).",
        min=1, max=limits.MAX_EPOCHS,
    )
    examples: int = param_field(
        0, "Train on this many texts in total instead (the tutorial: 100000); 0 counts epochs.",
        min=0, max=limits.MAX_EXAMPLES, zero="off: count epochs",
    )
    batch_size: int = param_field(
        32, "Texts per mini-batch (1 is the tutorial's one name at a time).",
        min=1, max=limits.MAX_BATCH_SIZE, search=Space.choice(16, 32, 64, 128, 256),
    )
    optimizer: str = param_field(
        "adam", "Optimiser (adamw: Adam with decoupled weight decay). Embeddings a model marks "
        "sparse always get Adam's sparse update (toolkit.sparse_adam), or sparse SGD with sgd.",
        choices=("adam", "adamw", "sgd"),
    )
    lr: float = param_field(
        0.005, "Learning rate (the tutorial's SGD uses 0.005).",
        above=0, search=Space.range(1e-4, 0.05, log=True),
    )
    weight_decay: float = param_field(
        0.0, "Weight decay: an L2 penalty on the weights (decoupled with adamw). Embeddings a model "
        "marks sparse (ngram's table) get AdamW's decoupled decay with adam and adamw, applied to "
        "the rows a batch touches, catching up on the steps they missed; none with sgd.",
        min=0, search=Space.choice(0.0, 1e-5, 1e-4, 1e-3), zero="off",
    )
    average: float = param_field(
        0.0, "Validate and keep a moving average of the weights at the ends of the epochs instead of "
        "the weights themselves (Polyak averaging; training goes on from its own weights): each "
        "epoch's end moves the average towards the weights by this share (at least 1/epoch), so "
        "0.5 halves each older epoch's part; 0 off, 1 the same as off.",
        min=0, max=1, zero="off",
    )
    schedule: str = param_field(
        "cosine", "Learning-rate schedule: constant, or cosine decay to zero over the whole run.",
        choices=("constant", "cosine"),
    )
    sampling: str = param_field(
        "shuffle",
        "shuffle: every name once per epoch; balanced: the tutorial's random class, then random name.",
        choices=("shuffle", "balanced"),
    )
    bucket: bool = param_field(True, "Batch texts of similar length together (less padding, faster).")
    loss: str = param_field(
        "cross-entropy", "The training loss: cross-entropy (softmax over the classes; binary per class "
        "for multi-label data), or squared-hinge (one-vs-rest, LinearSVC's: each class's logit pushed "
        "past +1 for its texts and below -1 for the others).",
        choices=("cross-entropy", "squared-hinge"),
    )
    label_smoothing: float = param_field(
        0.0, "Share of the target spread over the other classes (cross-entropy only).",
        min=0, below=1, search=Space.range(0.0, 0.2), zero="off",
    )
    clip: float = param_field(
        1.0, "Clip the gradient norm to this value; 0 turns clipping off.", min=0, zero="off",
    )
    class_weights: float = param_field(
        0.0, "Weight the loss by inverse class frequency to this power: 0 off, 1 every class "
        "counts the same in total, 0.5 in between (helps rare classes and macro-F1).",
        min=0, search=Space.range(0.0, 1.0), zero="off",
    )
    logit_adjust: float = param_field(
        0.0, "Train on logits plus this times the log class prior (logit-adjusted loss); "
        "predictions then lean towards rare classes: 0 off, 1 the balanced-error optimum "
        "(cross-entropy only).",
        min=0, zero="off",
    )
    select: str = param_field(
        "loss",
        "Which validation epoch is best (kept, and counted by patience): lowest loss or highest accuracy.",
        choices=("loss", "accuracy"),
    )
    patience: int = param_field(
        0, "Stop after this many epochs without a better validation epoch (see select); 0 never "
        "stops early. The weights of the best validation epoch are kept either way.",
        min=0, max=limits.MAX_EPOCHS, zero="off: never stops early",
    )
    threads: int = param_field(
        0, "CPU threads for torch; 0 chooses one, which never collapses on a busy machine "
        "(2 is about 1.3x faster on a quiet one); at most the CPUs this machine gives the process.",
        min=0, max=limits.cpu_count(), zero="auto: one thread",
    )
    engine: str = param_field(
        "auto", "How the steps of a model that offers a row bag (ngram's table) are computed: "
        "compiled (numba loops read and update the table: the extra toolkit[fast]), torch, or "
        "auto (compiled where it applies, torch otherwise). The same arithmetic in another order: "
        "results agree to float32 rounding, and the run records the engine that trained it.",
        choices=ENGINES,
    )
    max_length: int = param_field(
        limits.MAX_TEXT_LENGTH,
        "Longest text in characters: longer ones are cut to this at training and prediction "
        "(the cuts are counted in the run's report).",
        min=1, max=limits.MAX_TEXT_LENGTH_LIMIT,
    )
    new_classes: str = param_field(
        "refuse", "With --init RUN: classes in the data the run was not trained on are refused, "
        "or (add) given new output rows after the run's own.",
        choices=("refuse", "add"),
    )
    calibrate: str = param_field(
        "temperature",
        "After training, fit a temperature on the validation split so the probabilities mean what "
        "they say (temperature), or keep the model's own (none). The top class never changes.",
        choices=CALIBRATION_METHODS,
    )
    threshold: str = param_field(
        "auto",
        "Multi-label runs: a class is predicted when its probability reaches the threshold, chosen "
        "on the validation split: auto (one value, the best validation micro-F1), per-class (each "
        "class's best F1), or a number between 0 and 1.",
    )
    allow_empty: bool = param_field(
        False, "Multi-label runs: a text may get no class at all (false: at least its most probable one).",
    )

    def check(self) -> str | None:
        for name in ("label_smoothing", "logit_adjust"):
            value = getattr(self, name)
            if self.loss == "squared-hinge" and value:
                return (f"{name}={value} (a model may set it as its own trainer default) applies to the "
                        f"cross-entropy loss only; set {name}=0 or use loss=cross-entropy")
        if self.lr * self.weight_decay >= 1:
            return (f"needs lr * weight_decay below 1 (each step multiplies the weights by 1 - lr * "
                    f"weight_decay); got lr={self.lr}, weight_decay={self.weight_decay}")
        return threshold_problem(self.threshold)

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | TrainConfig | None = None) -> TrainConfig:
        """Build from `{name: value}` (strings allowed), checking every value."""
        if isinstance(params, TrainConfig):
            return params
        return cls(**resolve([Section("train", "the trainer", TRAIN_PARAMS)], dict(params or {}))["train"])


TRAIN_PARAMS: tuple[Param, ...] = params_of(TrainConfig)
