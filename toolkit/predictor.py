"""Using a trained run: load its folder safely and predict.

Loading checks the folder (required files, format version, JSON shapes and sizes, that the
weights fit the model the config describes) and never executes anything from it: the weights
are safetensors, everything else is JSON, and the model's code comes from the installed plugin.
The weights' shapes are read from the safetensors header and compared with the model built on
torch's "meta" device (no memory), so a tampered config cannot make loading allocate a huge
model; weights that are not finite are refused.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import shlex
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from toolkit.errors import ToolkitError
from toolkit.limits import MAX_TEXT_LENGTH, cpu_count
from toolkit.memory import shapes_only
from toolkit.params import Section, resolve
from toolkit.ranking import Guess, Prediction, Ranking  # noqa: F401  (Guess: imported from here)
from toolkit.registry import Registry, load_registry
from toolkit.rundir import (
    CALIBRATION,
    CONFIG,
    ENCODER,
    LABELS,
    METRICS,
    WEIGHTS,
    incomplete_run,
    open_run,
    read_json,
)
from toolkit.runtimes import DEFAULT_RUNTIME, check_runtime
from toolkit.safe_files import shown

if TYPE_CHECKING:
    from toolkit.calibration import Calibration
    from toolkit.explain import Explanation
    from toolkit.numpy_runtime import ArrayScorer
    from toolkit.onnx_runtime import OnnxScorer

NEEDED = (CONFIG, WEIGHTS, ENCODER, LABELS)
#: Read when the run has them (runs written before they existed still load).
OPTIONAL = (CALIBRATION,)


class Predictor:
    """A trained model with its encoder and class names, ready to predict.

    Texts are normalised as the training data was (the `normalization` in the run's
    provenance: "Dvořák" becomes "Dvorak" for a model trained on the tutorial's ASCII names).

    Texts longer than the run's `train.max_length` are cut to it, as at training; `truncated`
    counts the texts cut so far.

    `threads`: the CPU threads a forward pass uses (torch's, or numpy's BLAS; 1 by default: these
    small recurrent models gain little from more, and on a busy machine two threads measured
    30-100x slower); at most the CPU count.

    `calibration`: the run's temperature (applied to every probability) and conformal scores
    (for prediction sets); none leaves the model's probabilities as they are.

    `scorer`: what gives the probabilities instead of the torch model: the run's ONNX export in
    onnxruntime (`load_run(..., runtime="onnx")`) or the model's forward pass on numpy arrays
    (`runtime="numpy"`); `model` may then be None and `load_model` build it when first used.

    A multi-label run (its config's `multi_label`: the thresholds chosen on validation) gives
    each class its own (sigmoid) probability, and every prediction its label set (`labels`).
    """

    def __init__(self, model: Any, encoder: Any, classes: Sequence[str], config: dict[str, Any],
                 path: Path | None = None, threads: int = 1, calibration: Calibration | None = None,
                 scorer: OnnxScorer | ArrayScorer | None = None, load_model: Callable[[], Any] | None = None,
                 ) -> None:
        if not 1 <= threads <= cpu_count():
            raise ToolkitError(
                f"threads must be between 1 and {cpu_count()} (the CPUs this machine gives the "
                f"process); got {threads}."
            )
        self.threads = threads
        train = config.get("train")
        length = train.get("max_length") if isinstance(train, dict) else None
        self.max_length = length if isinstance(length, int) and length >= 1 else MAX_TEXT_LENGTH
        self.truncated = 0
        self._model = model.eval() if model is not None else None
        self._load_model = load_model
        self.encoder = encoder
        self.classes = tuple(classes)
        self.config = config
        self.path = path
        self.calibration = calibration
        self.scorer = scorer
        rule = config.get("multi_label")
        self.multi_label: dict[str, Any] | None = rule if isinstance(rule, dict) else None
        self._lock = threading.Lock()  # one forward pass at a time: safe under a threaded server

    @property
    def model(self) -> Any:
        """The torch model (built on first use when the predictor was loaded without it)."""
        if self._model is None:
            assert self._load_model is not None, "a Predictor needs a model or a load_model"
            self._model = self._load_model().eval()
        return self._model

    def prepare(self, texts: Sequence[str]) -> list[str]:
        """`texts` as the model sees them: normalised as the training data was, cut to
        `max_length` characters."""
        from toolkit.normalization import cut_texts, normalize_like

        prepared, cut = cut_texts(normalize_like(texts, self.config.get("provenance") or {}), self.max_length)
        self.truncated += cut
        return prepared

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Class probabilities, shape (len(texts), classes)."""
        return self._probabilities(self.prepare(texts))

    def _probabilities(self, prepared: list[str]) -> np.ndarray:
        if not prepared:
            return np.zeros((0, len(self.classes)))
        with self._lock:
            if self.scorer is not None:
                probabilities = self.scorer.predict_proba(self.encoder, prepared)
            else:
                from toolkit.inference import predict_proba, torch_threads

                with torch_threads(self.threads):
                    probabilities = predict_proba(self.model, self.encoder, prepared, "cpu",
                                                  self.multi_label is not None)
        if not np.isfinite(probabilities).all():
            model = f"the model of '{shown(self.path)}'" if self.path is not None else "the model"
            raise ToolkitError(f"{model} gives non-finite probabilities; its weights are damaged.")
        return self.calibration.apply(probabilities) if self.calibration is not None else probabilities

    def predict(self, texts: Sequence[str], top: int = 3, *, min_confidence: float | None = None,
                coverage: float | None = None, threshold: float | None = None) -> list[Prediction]:
        """The `top` most likely classes of each text, with their probabilities; a text with
        nothing left after normalisation gets no guesses.

        `min_confidence` P: a prediction whose top probability is below P abstains ("unknown":
        `abstained`, no `label`). `coverage` c: each prediction carries its conformal `set`,
        the classes that hold the true one with probability at least c (docs/calibration.md).
        A multi-label run's predictions carry their label set (`labels`); `threshold` t, in
        (0, 1), replaces the run's thresholds by t for every class."""
        return self.rank(texts, top, min_confidence=min_confidence, coverage=coverage,
                         threshold=threshold).predictions()

    def rank(self, texts: Sequence[str], top: int = 3, *, min_confidence: float | None = None,
             coverage: float | None = None, threshold: float | None = None) -> Ranking:
        """What `predict` answers, as arrays (`toolkit.ranking`): the path every prediction
        takes, without a Python object per text or class."""
        from toolkit.ranking import rank

        if top < 1:
            raise ToolkitError(f"top must be at least 1; got {top}.")
        decide_at = self.class_thresholds(threshold)
        if decide_at is not None and coverage is not None:
            raise ToolkitError("coverage (prediction sets) is for single-label runs; a multi-label run "
                               "gives each text its label set already.")
        conformal = self.checked_threshold(min_confidence, coverage)
        prepared = self.prepare(texts)
        read = np.fromiter(map(bool, prepared), dtype=bool, count=len(prepared))
        probabilities = self._probabilities(
            prepared if read.all() else [text for text in prepared if text]
        )
        allow_empty = bool(self.multi_label and self.multi_label.get("allow_empty"))
        return rank(texts, self.classes, probabilities, read, top, min_confidence, conformal, decide_at,
                    allow_empty)

    def class_thresholds(self, threshold: float | None = None) -> np.ndarray | None:
        """A multi-label run's threshold for every class: the run's, or `threshold` for all of
        them (checked to be between 0 and 1); None for a single-label run."""
        if threshold is not None and not (isinstance(threshold, (int, float)) and 0 < threshold < 1):
            raise ToolkitError(f"the threshold must be a number between 0 and 1 (e.g. 0.5); got {threshold}.")
        if self.multi_label is None:
            if threshold is not None:
                raise ToolkitError(
                    "the threshold is for multi-label runs; this run predicts one class per text."
                )
            return None
        if threshold is not None:
            return np.full(len(self.classes), float(threshold))
        recorded = self.multi_label.get("thresholds") or {}
        return np.asarray([float(recorded.get(c, 0.5)) for c in self.classes])

    def explain(self, texts: Sequence[str], label: str | None = None) -> list[Explanation]:
        """Why each text gets its top class (or `label`): one occlusion score per input
        character, the smallest edit that changes the answer, and for a linear `ngram` its
        n-grams' exact shares (see `toolkit.explain`)."""
        from toolkit.explain import explain

        return explain(self, texts, label)

    def checked_threshold(
        self, min_confidence: float | None = None, coverage: float | None = None
    ) -> float | None:
        """Check `predict`'s options (one line for a value out of range, or for a coverage asked
        of a run without conformal scores); the conformal threshold of `coverage`, if given."""
        from toolkit.calibration import Calibration, check_coverage, check_min_confidence

        check_min_confidence(min_confidence)
        check_coverage(coverage)
        return None if coverage is None else (self.calibration or Calibration()).threshold(coverage)

    def predict_stream(
        self, texts: Iterable[str], top: int = 3, batch_size: int = 4096, **options: float | None
    ) -> Iterator[Prediction]:
        """Predict an iterable of any length in batches, holding one batch in memory at a time;
        `options` as `predict` takes them (min_confidence, coverage)."""
        for batch in batched(texts, batch_size):
            yield from self.rank(batch, top, **options).predictions()

    def rank_stream(
        self, batches: Iterable[Sequence[str]], top: int = 3, **options: float | None
    ) -> Iterator[Ranking]:
        """`rank` of each batch of texts in turn, `options` as `predict` takes them."""
        for batch in batches:
            yield self.rank(batch, top, **options)


def batched(texts: Iterable[str], size: int) -> Iterator[list[str]]:
    """`texts` in lists of `size` (the last one shorter)."""
    iterator = iter(texts)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def load_run(
    path: str | Path, plugins: Sequence[str] = (), threads: int = 1, runtime: str = DEFAULT_RUNTIME
) -> Predictor:
    """Load a run folder made by `toolkit run` (checked; nothing in it is executed).
    `threads`: CPU threads per forward pass (see `Predictor`). `runtime`: where the probabilities
    come from (`RUNTIMES`): "auto" (the default), numpy when the model has it, else torch;
    "torch"; "numpy", the model's forward pass on numpy arrays without torch
    (`ModelSpec.array_factory`: a linear `ngram` and the recurrent `rnn`, `gru`, `lstm`,
    `scratch-rnn` and `scratch-gru` have one), refused in one line for a model without; "onnx",
    the run's ONNX export (`toolkit export`) in onnxruntime. Each with the same encoder, classes
    and calibration; the torch model of a numpy runtime's predictor is built when first used
    (`Predictor.model`)."""
    check_runtime(runtime)
    folder, config = open_run(path, NEEDED)
    scorer = None
    if runtime == "onnx":
        from toolkit.onnx_runtime import open_scorer

        scorer = open_scorer(folder, threads)
    encoder_file = read_json(folder / ENCODER)
    classes = read_json(folder / LABELS)
    model_name, model_params = _name_and_params(config.get("model"), folder, CONFIG)
    encoder_name, encoder_params = _name_and_params(encoder_file, folder, ENCODER)
    if "state" not in encoder_file:
        raise ToolkitError(f"run folder '{shown(folder)}' has a malformed {ENCODER} (no encoder state).")
    state = encoder_file["state"]
    if not (isinstance(classes, list) and len(classes) >= 2 and all(isinstance(c, str) for c in classes)):
        raise ToolkitError(
            f"run folder '{shown(folder)}' has a malformed labels.json (expected a list of class names)."
        )
    if classes != config.get("classes", classes):
        raise ToolkitError(
            f"run folder '{shown(folder)}': labels.json does not match the classes in config.json."
        )

    registry = load_registry(plugins)
    model_spec = recorded_spec(registry, "model", model_name, config.get("model"), folder)
    encoder_spec = recorded_spec(registry, "encoder", encoder_name, config.get("encoder"), folder)
    try:
        checked = resolve([
            Section("model", f"model '{model_name}'", model_spec.params),
            Section("encoder", f"encoder '{encoder_name}'", encoder_spec.params),
        ], {**{f"model.{k}": v for k, v in model_params.items()},
            **{f"encoder.{k}": v for k, v in encoder_params.items()}})
        encoder = encoder_spec.factory(**checked["encoder"])
        encoder.load_state(state)
    except ToolkitError as exc:
        raise ToolkitError(f"run folder '{shown(folder)}' does not fit this toolkit: {shown(exc)}") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise ToolkitError(
            f"run folder '{shown(folder)}' has a malformed encoder state ({shown(exc)})."
        ) from None
    shape = {"vocab_size": encoder.vocab_size, "num_classes": len(classes), "params": checked["model"],
             "encoder": encoder, "multi_label": isinstance(config.get("multi_label"), dict)}
    if runtime in ("numpy", "auto"):
        from toolkit.numpy_runtime import ArrayScorer

        try:
            array_model = model_spec.build_arrays(**shape)
        except ToolkitError as exc:
            raise ToolkitError(
                f"run folder '{shown(folder)}' does not fit this toolkit: {shown(exc)}"
            ) from None
        if array_model is None and runtime == "numpy":
            raise ToolkitError(
                f"model '{shown(model_name)}' of run '{shown(folder)}' has no numpy forward pass for its "
                "parameters (a linear `ngram`, dim=0, the recurrent models, `cnn` and an `ensemble` of "
                "these have one); predict with --runtime torch or auto."
            )
        if array_model is not None:
            weights = _array_weights(folder, array_model.shapes)
            array_model.load(weights)
            return Predictor(
                None, encoder, classes, config, folder, threads, _calibration(folder),
                ArrayScorer(array_model, shape["multi_label"], threads),
                load_model=lambda: _torch_model(folder, model_spec, shape, weights),
            )
    model = _torch_model(folder, model_spec, shape)
    if scorer is not None:
        _check_scorer_fits(scorer, encoder, classes)
    return Predictor(model, encoder, classes, config, folder, threads, _calibration(folder), scorer)


def _torch_model(
    folder: Path, model_spec: Any, shape: dict[str, Any], arrays: dict[str, np.ndarray] | None = None
) -> Any:
    """The run's torch model with its weights: read from the folder (checked), or `arrays`, the
    weights the numpy runtime read and checked already."""
    # Only now, so a wrong path or a broken folder is said at once, not after seconds of loading torch.
    import torch
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    def build(device: str) -> Any:
        # On the CPU (torch's default) outside torch.device's mode, and on "meta" with the weights'
        # initialisers skipped: there, and in that mode, they run torch's Python reference code,
        # whose first use imports sympy and more (measured: 2 s of the load; the values are unused).
        context = contextlib.nullcontext() if device == "cpu" else shapes_only(device)
        with context:
            return model_spec.build(**shape)

    try:
        skeleton = build("meta")  # shapes only, no memory
    except ToolkitError as exc:
        raise ToolkitError(f"run folder '{shown(folder)}' does not fit this toolkit: {shown(exc)}") from None
    expected = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    if arrays is not None:
        _check_weights_fit(folder, expected, {k: tuple(v.shape) for k, v in arrays.items()})
        model = build("cpu")
        model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in arrays.items()})
        return model
    try:
        with safe_open(folder / WEIGHTS, "pt") as header:
            shapes = {key: tuple(header.get_slice(key).get_shape()) for key in header.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as exc:
        raise ToolkitError(
            f"'{shown(folder / WEIGHTS)}' is not a valid safetensors file ({shown(exc)})."
        ) from None
    _check_weights_fit(folder, expected, shapes)
    model = build("cpu")
    try:
        weights = load_file(folder / WEIGHTS)
    except (SafetensorError, OSError, ValueError) as exc:
        raise ToolkitError(
            f"'{shown(folder / WEIGHTS)}' is not a valid safetensors file ({shown(exc)})."
        ) from None
    damaged = [k for k, v in weights.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if damaged:
        raise ToolkitError(
            f"the weights in '{shown(folder / WEIGHTS)}' hold NaN or infinite values "
            f"({shown(', '.join(damaged[:3]))}); the run is damaged."
        )
    model.load_state_dict(weights)
    return model


def _array_weights(folder: Path, expected: Mapping[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    """The run's weights as numpy arrays, without torch: checked as the torch runtime checks them
    (the shapes in the file's header against `expected` first, then finite values)."""
    from safetensors import SafetensorError, safe_open
    from safetensors.numpy import load_file

    path = folder / WEIGHTS
    try:
        with safe_open(path, "numpy") as header:
            shapes = {key: tuple(header.get_slice(key).get_shape()) for key in header.keys()}  # noqa: SIM118
        _check_weights_fit(folder, dict(expected), shapes)
        weights = load_file(path)
    except (SafetensorError, OSError, ValueError, TypeError) as exc:
        raise ToolkitError(f"'{shown(path)}' is not a valid safetensors file ({shown(exc)}).") from None
    damaged = [k for k, v in weights.items() if v.dtype.kind == "f" and not np.isfinite(v).all()]
    if damaged:
        raise ToolkitError(
            f"the weights in '{shown(path)}' hold NaN or infinite values ({shown(', '.join(damaged[:3]))}); "
            "the run is damaged."
        )
    return weights


def _check_scorer_fits(scorer: OnnxScorer, encoder: Any, classes: Sequence[str]) -> None:
    """Refuse an ONNX export with another number of classes than the run (exported from another run)."""
    indices, lengths = encoder.encode(["a"])
    width = scorer.log_probabilities(indices.numpy(), lengths.numpy()).shape[1]
    if width != len(classes):
        raise ToolkitError(
            f"'{shown(scorer.name)}' gives {width} classes, the run has {len(classes)}; it was exported "
            "from another run: export this one again with `toolkit export`."
        )


def _calibration(folder: Path) -> Calibration | None:
    """The run's calibration.json, checked; None for a run written before it existed (its
    metrics.json has no calibration either: a run whose metrics do, and that lacks the file, is
    damaged, and its probabilities would silently be uncalibrated)."""
    from toolkit.calibration import Calibration

    if not (folder / CALIBRATION).is_file():
        metrics = read_json(folder / METRICS)
        if isinstance(metrics, dict) and "calibration" in metrics:
            raise incomplete_run(folder, f"{CALIBRATION}, which its {METRICS} was measured with")
        return None
    return Calibration.from_json(read_json(folder / CALIBRATION), shown(folder / CALIBRATION))


def recorded_spec(registry: Registry, kind: str, name: str, recorded: Any, folder: Path) -> Any:
    """The registered spec the run used, or one line saying which plugin provides it."""
    if name not in registry.specs[kind] and isinstance(recorded, dict):
        distribution, plugin = recorded.get("distribution"), recorded.get("plugin")
        if isinstance(distribution, str) and distribution != "toolkit":
            if not _DISTRIBUTION_NAME.fullmatch(distribution):  # not advice to run, from a stranger
                raise ToolkitError(
                    f"run folder '{shown(folder)}' needs the {kind} '{shown(name)}' from a "
                    f"distribution with an invalid name ('{shown(distribution)[:80]}'); the run "
                    "folder is damaged or not to be trusted."
                )
            # No ready `pip install` command: the name comes from the run folder, and whoever
            # made it could name a look-alike package on PyPI.
            raise ToolkitError(
                f"run folder '{shown(folder)}' needs the {kind} '{shown(name)}' from the plugin "
                f"distribution '{distribution}', as its {CONFIG} records, which is not installed here; "
                "install that plugin from a source you trust (the name comes from the run folder, "
                "so check it is the package you mean), then try again."
            )
        if isinstance(plugin, str) and distribution is None:
            raise ToolkitError(
                f"run folder '{shown(folder)}' needs the {kind} '{shown(name)}' from the plugin "
                f"'{shown(plugin)}'; {_plugin_advice(recorded.get('plugin_file'))}"
            )
    try:
        return registry.get(kind, name)  # an unknown name raises the usual did-you-mean error
    except ToolkitError as exc:
        raise ToolkitError(shown(exc)) from None


def _plugin_advice(recorded_file: Any) -> str:
    """How to load the plugin a run needs: the file the run recorded, if it did."""
    if not isinstance(recorded_file, str) or not recorded_file:
        return "load it with --plugin PATH_OR_MODULE."
    path = shlex.quote(shown(recorded_file))
    if Path(recorded_file).is_file():
        return f"the run was trained with the file {path}: load it with toolkit --plugin {path} ..."
    return (
        f"the run was trained with the file {path}, which is no longer there: load that plugin "
        "with --plugin PATH_OR_MODULE."
    )


#: A distribution name as PEP 508 allows it: one that is not is not shown at all.
_DISTRIBUTION_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,98}[A-Za-z0-9])?")


def _name_and_params(section: Any, folder: Path, file: str) -> tuple[str, dict[str, Any]]:
    """The plugin name and parameters of a config section, checked to be a str and a dict."""
    if not (
        isinstance(section, dict) and isinstance(section.get("name"), str)
        and isinstance(section.get("params"), dict)
    ):
        raise ToolkitError(
            f"run folder '{shown(folder)}' has a malformed {file} (expected a plugin name and its "
            "parameters)."
        )
    return section["name"], section["params"]


def _check_weights_fit(
    folder: Path, expected: dict[str, tuple[int, ...]], found: dict[str, tuple[int, ...]]
) -> None:
    """Compare the model's tensor shapes with those in the weights file's header."""
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    wrong = sorted(k for k in set(expected) & set(found) if expected[k] != found[k])
    if missing or unexpected or wrong:
        details = "; ".join(
            f"{what}: {shown(', '.join(names[:3]))}{'...' if len(names) > 3 else ''}"
            for what, names in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong))
            if names
        )
        raise ToolkitError(
            f"the weights in '{shown(folder / WEIGHTS)}' do not fit the model in its config ({details})."
        )
