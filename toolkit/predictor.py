"""Using a trained run: load its folder safely and predict.

Loading checks the folder (required files, format version, JSON shapes, that the weights fit
the model the config describes) and never executes anything from it: the weights are
safetensors, everything else is JSON, and the model's code comes from the installed plugin.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.errors import ToolkitError
from toolkit.params import Section, resolve
from toolkit.registry import Registry, load_registry
from toolkit.rundir import CONFIG, ENCODER, LABELS, WEIGHTS, open_run, read_json

NEEDED = (CONFIG, WEIGHTS, ENCODER, LABELS)


@dataclass(frozen=True)
class Guess:
    """One candidate class for a text."""

    label: str
    probability: float

    @property
    def log_probability(self) -> float:
        return math.log(max(self.probability, 1e-300))


@dataclass(frozen=True)
class Prediction:
    """The top classes for one text, most likely first."""

    text: str
    guesses: tuple[Guess, ...]

    @property
    def label(self) -> str:
        return self.guesses[0].label

    @property
    def probability(self) -> float:
        return self.guesses[0].probability

    def to_dict(self) -> dict[str, Any]:
        return {
            "input": self.text,
            "predictions": [
                {"label": g.label, "probability": g.probability, "log_probability": g.log_probability}
                for g in self.guesses
            ],
        }


class Predictor:
    """A trained model with its encoder and class names, ready to predict.

    Texts are normalised as the training data was (the `normalization` in the run's
    provenance: "Dvořák" becomes "Dvorak" for a model trained on the tutorial's ASCII names).

    `threads`: the torch CPU threads a forward pass uses (1 by default: these small recurrent
    models gain little from more, and on a busy machine two threads measured 30-100x slower).
    """

    def __init__(self, model: Any, encoder: Any, classes: Sequence[str], config: dict[str, Any],
                 path: Path | None = None, threads: int = 1) -> None:
        if threads < 1:
            raise ToolkitError(f"threads must be at least 1; got {threads}.")
        self.threads = threads
        self.model = model.eval()
        self.encoder = encoder
        self.classes = tuple(classes)
        self.config = config
        self.path = path
        self._lock = threading.Lock()  # one forward pass at a time: safe under a threaded server

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Class probabilities, shape (len(texts), classes)."""
        from toolkit.textfiles import normalize_like
        from toolkit.training import predict_proba

        texts = normalize_like(texts, self.config.get("provenance") or {})
        if not texts:
            return np.zeros((0, len(self.classes)))
        with self._lock, _torch_threads(self.threads):
            return predict_proba(self.model, self.encoder, texts, "cpu")

    def predict(self, texts: Sequence[str], top: int = 3) -> list[Prediction]:
        """The `top` most likely classes of each text, with their probabilities."""
        if top < 1:
            raise ToolkitError(f"top must be at least 1; got {top}.")
        probabilities = self.predict_proba(texts)
        top = min(top, len(self.classes))
        order = np.argsort(-probabilities, axis=1, kind="stable")[:, :top]
        return [
            Prediction(text, tuple(Guess(self.classes[j], float(row[j])) for j in ranks))
            for text, row, ranks in zip(texts, probabilities, order, strict=True)
        ]

    def predict_stream(
        self, texts: Iterable[str], top: int = 3, batch_size: int = 4096
    ) -> Iterator[Prediction]:
        """Predict an iterable of any length in batches, holding one batch in memory at a time."""
        batch: list[str] = []
        for text in texts:
            batch.append(text)
            if len(batch) == batch_size:
                yield from self.predict(batch, top)
                batch = []
        if batch:
            yield from self.predict(batch, top)


def load_run(path: str | Path, plugins: Sequence[str] = (), threads: int = 1) -> Predictor:
    """Load a run folder made by `toolkit run` (checked; nothing in it is executed).
    `threads`: torch CPU threads per forward pass (see `Predictor`)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder, config = open_run(path, NEEDED)
    encoder_file = read_json(folder / ENCODER)
    classes = read_json(folder / LABELS)
    model_name, model_params = _name_and_params(config.get("model"), folder, CONFIG)
    encoder_name, encoder_params = _name_and_params(encoder_file, folder, ENCODER)
    if "state" not in encoder_file:
        raise ToolkitError(f"run folder '{folder}' has a malformed {ENCODER} (no encoder state).")
    state = encoder_file["state"]
    if not (isinstance(classes, list) and len(classes) >= 2 and all(isinstance(c, str) for c in classes)):
        raise ToolkitError(
            f"run folder '{folder}' has a malformed labels.json (expected a list of class names)."
        )
    if classes != config.get("classes", classes):
        raise ToolkitError(
            f"run folder '{folder}': labels.json does not match the classes in config.json."
        )

    registry = load_registry(plugins)
    model_spec = _spec(registry, "model", model_name, config.get("model"), folder)
    encoder_spec = _spec(registry, "encoder", encoder_name, config.get("encoder"), folder)
    try:
        checked = resolve([
            Section("model", f"model '{model_name}'", model_spec.params),
            Section("encoder", f"encoder '{encoder_name}'", encoder_spec.params),
        ], {**{f"model.{k}": v for k, v in model_params.items()},
            **{f"encoder.{k}": v for k, v in encoder_params.items()}})
        encoder = encoder_spec.factory(**checked["encoder"])
        encoder.load_state(state)
    except ToolkitError as exc:
        raise ToolkitError(f"run folder '{folder}' does not fit this toolkit: {exc}") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise ToolkitError(f"run folder '{folder}' has a malformed encoder state ({exc}).") from None

    model = model_spec.factory(vocab_size=encoder.vocab_size, num_classes=len(classes), **checked["model"])
    try:
        weights = load_file(folder / WEIGHTS)
    except (SafetensorError, OSError, ValueError) as exc:
        raise ToolkitError(f"'{folder / WEIGHTS}' is not a valid safetensors file ({exc}).") from None
    _check_weights_fit(folder, model.state_dict(), weights)
    model.load_state_dict(weights)
    return Predictor(model, encoder, classes, config, folder, threads)


@contextmanager
def _torch_threads(count: int) -> Iterator[None]:
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _spec(registry: Registry, kind: str, name: str, recorded: Any, folder: Path) -> Any:
    """The registered spec the run used, or one line saying which plugin provides it."""
    if name not in registry.specs[kind] and isinstance(recorded, dict):
        distribution, plugin = recorded.get("distribution"), recorded.get("plugin")
        if isinstance(distribution, str) and distribution != "toolkit":
            raise ToolkitError(
                f"run folder '{folder}' needs the {kind} '{name}' from the distribution "
                f"'{distribution}', which is not installed; pip install {distribution}."
            )
        if isinstance(plugin, str) and distribution is None:
            raise ToolkitError(
                f"run folder '{folder}' needs the {kind} '{name}' from the plugin '{plugin}'; "
                "load it with --plugin PATH_OR_MODULE."
            )
    return registry.get(kind, name)  # an unknown name raises the usual did-you-mean error


def _name_and_params(section: Any, folder: Path, file: str) -> tuple[str, dict[str, Any]]:
    """The plugin name and parameters of a config section, checked to be a str and a dict."""
    if not (
        isinstance(section, dict) and isinstance(section.get("name"), str)
        and isinstance(section.get("params"), dict)
    ):
        raise ToolkitError(
            f"run folder '{folder}' has a malformed {file} (expected a plugin name and its parameters)."
        )
    return section["name"], section["params"]


def _check_weights_fit(folder: Path, expected: dict[str, Any], found: dict[str, Any]) -> None:
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    wrong = sorted(k for k in set(expected) & set(found) if tuple(expected[k].shape) != tuple(found[k].shape))
    if missing or unexpected or wrong:
        details = "; ".join(
            f"{what}: {', '.join(names[:3])}{'...' if len(names) > 3 else ''}"
            for what, names in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong))
            if names
        )
        raise ToolkitError(
            f"the weights in '{folder / WEIGHTS}' do not fit the model in its config ({details})."
        )
