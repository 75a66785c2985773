"""Contract checks for plugin authors, to call from a plugin's own tests.

    from toolkit.testing import check_dataset, check_encoder, check_model

    def test_the_model_keeps_toolkit_s_contract():
        check_model("my-model", params={"hidden_size": 16}, plugins=["my_plugin.py"])

The pattern of scikit-learn's `check_estimator`: each function builds the part as toolkit
does (declared defaults, plus the `params` given, checked and converted), then exercises what
toolkit relies on but cannot see while training: a model that returns probabilities, or
whose output depends on the padding of its batch, trains without an error and is silently
worse. A broken promise raises `ContractError` (an AssertionError) naming it; a user error
from the plugin itself (say, a missing data file) is raised as it is.

Each check is small and quick (tens of texts, a few dozen optimiser steps, one thread).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from toolkit.contracts import check_encoded, checked_dataset, checked_state, round_trip
from toolkit.errors import ToolkitError
from toolkit.params import Section, resolve
from toolkit.registry import load_registry
from toolkit.types import CHAR_INDICES, PAD, DatasetSpec, Encoder, EncoderSpec, ModelSpec, TextDataset

__all__ = ["ContractError", "check_dataset", "check_encoder", "check_model"]

#: Texts an encoder is checked on: several scripts and lengths, one character, an apostrophe.
SAMPLE_TEXTS = (
    "Nakamura", "O'Neill", "Dvořák", "Li", "A", "van der Berg", "Müller", "Zhang", "Smith-Jones",
    "Abramov", "x", "Papadopoulos",
)
#: How close the same text's logits must be alone, in a batch, and with more padding.
PADDING_RTOL, PADDING_ATOL = 1e-4, 1e-5
#: How close a numpy forward pass's logits must come to forward's (`ModelSpec.array_factory`).
ARRAYS_RTOL, ARRAYS_ATOL = 1e-5, 1e-5
ENCODER_MEMBERS = ("produces", "vocab_size", "fit", "encode", "state", "load_state")


class ContractError(AssertionError):
    """A plugin breaks a promise toolkit relies on; the message says which and how to fix it."""


def check_dataset(
    spec: DatasetSpec | str, params: Mapping[str, Any] | None = None, *, plugins: Sequence[str] = ()
) -> TextDataset:
    """Load the dataset twice and check it: a TextDataset, texts that are strings, targets
    indexing sorted unique classes, JSON provenance, the same data both times. Returns it."""
    spec = _spec("dataset", spec, plugins)
    label = f"dataset '{spec.name}'"
    values = _values("dataset", spec, params)
    loaded = spec.load(**values)  # a user error here (say, missing data) is raised as it is
    with _contract():
        data = checked_dataset(label, loaded)
    _require(all(isinstance(t, str) for t in data.texts), f"{label}: every text must be a str.")
    _require(len(data.texts) == len(data.targets), f"{label}: texts and targets differ in length.")
    classes = data.classes
    _require(
        all(isinstance(c, str) for c in classes) and list(classes) == sorted(set(classes)),
        f"{label}: classes must be distinct strings in sorted order; got {classes[:5]}...",
    )
    _require(
        all(isinstance(t, int) and 0 <= t < len(classes) for t in data.targets),
        f"{label}: every target must be an int indexing classes (0 to {len(classes) - 1}).",
    )
    if data.label_sets is not None:  # multi-label: sorted, non-empty class sets, the first the target
        pairs = zip(data.label_sets, data.targets, strict=False)
        _require(
            len(data.label_sets) == len(data.texts) and all(
                labels and list(labels) == sorted(set(labels)) and all(0 <= c < len(classes) for c in labels)
                and labels[0] == target for labels, target in pairs
            ),
            f"{label}: every label set must hold sorted, distinct class indices, the first its target.",
        )
    used = {c for labels in data.label_sets for c in labels} if data.label_sets else set(data.targets)
    _require(len(used) == len(classes), f"{label}: some class has no text.")
    again = spec.load(**values)
    _require(
        (again.texts, again.targets, again.classes, again.label_sets)
        == (data.texts, data.targets, data.classes, data.label_sets),
        f"{label}: loading twice with the same parameters gave different data; seed any randomness.",
    )
    return data


def check_encoder(
    spec: EncoderSpec | str, params: Mapping[str, Any] | None = None, *,
    texts: Sequence[str] = SAMPLE_TEXTS, plugins: Sequence[str] = (),
) -> Encoder:
    """Build, fit and encode `texts`, and check: the members toolkit uses, the output's types
    and shapes, indices below `vocab_size`, padding (`toolkit.PAD` after each text's length,
    in every format; and nowhere else in `char-indices`), each text encoded the same alone as
    in a batch, and a JSON round trip of `state()` giving an encoder that encodes the same.
    Returns it."""
    spec = _spec("encoder", spec, plugins)
    label = f"encoder '{spec.name}'"
    values = _values("encoder", spec, params)
    texts = list(texts)
    encoder = _fitted(spec, values, texts)
    indices, lengths = encoder.encode(texts)
    for i, length in enumerate(lengths.tolist()):
        row = indices[i]
        _require(
            bool((row[length:] == PAD).all()),
            f"{label}: text {texts[i]!r} is encoded as {row.tolist()} with length {length}; every "
            f"format pads with toolkit.PAD ({PAD}) after the text (toolkit pads and trims batches so).",
        )
        _require(
            spec.produces != CHAR_INDICES or bool((row[:length] != PAD).all()),
            f"{label}: text {texts[i]!r} is encoded as {row.tolist()} with length {length}; "
            f"{CHAR_INDICES} keeps toolkit.PAD ({PAD}) for padding after the text and nowhere else.",
        )
    for i, text in enumerate(texts):
        alone, alone_length = encoder.encode([text])
        length = int(lengths[i])
        _require(
            int(alone_length[0]) == length and torch.equal(alone[0, :length], indices[i, :length]),
            f"{label}: {text!r} is encoded differently alone than among other texts; "
            "encode each text on its own.",
        )
    with _contract():
        state = checked_state(label, encoder.state())
    restored = spec.factory(**values)
    restored.load_state(round_trip(state))
    _require(
        restored.vocab_size == encoder.vocab_size,
        f"{label}: after load_state(state) vocab_size is {restored.vocab_size}, "
        f"not {encoder.vocab_size}; state() must hold everything that was fitted.",
    )
    again, again_lengths = restored.encode(texts)
    _require(
        torch.equal(again, indices) and torch.equal(again_lengths, lengths),
        f"{label}: an encoder rebuilt from its JSON state encodes differently; state() must "
        "hold everything that was fitted.",
    )
    return encoder


def check_model(
    spec: ModelSpec | str, params: Mapping[str, Any] | None = None, *,
    encoder: Encoder | EncoderSpec | str = "onehot", encoder_params: Mapping[str, Any] | None = None,
    num_classes: int = 3, seed: int = 0, steps: int = 30, lr: float = 0.01,
    plugins: Sequence[str] = (), multi_label: bool = False,
) -> None:
    """Build the model as toolkit does (seeded, from the fitted encoder's vocab_size) and
    check: logits of shape (batch, classes), also for one text; raw logits, not
    probabilities; the same logits for a text alone, in a batch and with extra padding
    (whatever format the encoder produces: every format is padded after each text's length,
    and toolkit pads and trims each batch to its longest text, so any model must ignore
    what lies past a text's length); that
    `steps` optimiser steps on a small batch lower the loss; the same seed giving the same
    weights and training; and the weights surviving a safetensors save and rebuild.
    `multi_label=True` checks it as a multi-label run uses it: built with `multi_label=True`
    (for a factory that takes it), texts with one or two classes each, trained with binary
    cross-entropy on every class's logit. A model with an `array_factory` also has its numpy
    forward pass checked: the trained weights' names and shapes, and the same logits as forward."""
    spec = _spec("model", spec, plugins)
    label = f"model '{spec.name}'"
    values = _values("model", spec, params)
    texts, targets = _training_texts(num_classes, seed)
    if isinstance(encoder, (str, EncoderSpec)):
        encoder_spec = _spec("encoder", encoder, plugins)
        encoder = _fitted(encoder_spec, _values("encoder", encoder_spec, encoder_params), texts)
    else:
        encoder.fit(texts)
    _require(
        encoder.produces in spec.consumes,
        f"{label} consumes {', '.join(spec.consumes)}, not the {encoder.produces} this encoder "
        "produces; pass an encoder it consumes.",
    )
    encoded = encoder.encode(texts)
    with _contract():
        check_encoded("the encoder", encoded, len(texts), encoder.vocab_size)
    indices, lengths = encoded
    y = _label_sets(texts, targets, num_classes) if multi_label else torch.tensor(targets)

    def build() -> nn.Module:
        torch.manual_seed(seed)
        model = spec.build(
            vocab_size=encoder.vocab_size, num_classes=num_classes, params=values, encoder=encoder,
            multi_label=multi_label,
        )
        _require(isinstance(model, nn.Module), f"{label}: factory returned {type(model).__name__}, "
                 "not a torch.nn.Module.")
        return model

    with _one_thread():
        model = build()
        _require(
            _same_weights(model, build()),
            f"{label}: two models built after torch.manual_seed({seed}) have different weights; "
            "draw initial weights only from torch's random generator.",
        )
        model.eval()
        with torch.no_grad():
            logits = model(indices, lengths)
            _check_logits(label, logits, (len(texts), num_classes))
            one = model(indices[:1, : int(lengths[0])], lengths[:1])
            _check_logits(label, one, (1, num_classes))
        _check_padding(label, model, indices, lengths)
        before = _loss(model, indices, lengths, y)
        trained = _train(model, indices, lengths, y, steps, lr, seed)
        after = _loss(trained, indices, lengths, y)
        _require(
            after < before,
            f"{label}: {steps} Adam steps (lr {lr}) on {len(texts)} texts did not lower the loss "
            f"({before:.4f} -> {after:.4f}); do gradients reach every layer?",
        )
        with torch.no_grad():
            trained_logits = trained.eval()(indices, lengths)
        _check_logits(label, trained_logits, (len(texts), num_classes))
        again = _train(build(), indices, lengths, y, steps, lr, seed)
        with torch.no_grad():
            repeat = again(indices, lengths)
        _require(
            torch.equal(repeat, trained_logits),
            f"{label}: training twice with seed {seed} gave different logits; use only torch's "
            "random generator (toolkit seeds it), no other randomness.",
        )
        _check_reload(label, trained, build, indices, lengths, trained_logits)
        _check_row_bag(label, trained, indices, lengths, trained_logits)
        arrays = spec.build_arrays(vocab_size=encoder.vocab_size, num_classes=num_classes, params=values,
                                   encoder=encoder, multi_label=multi_label)
        if arrays is not None:
            _check_arrays(label, arrays, trained, indices, lengths, trained_logits)


# -- the checks ------------------------------------------------------------------------


def _check_row_bag(
    label: str, model: nn.Module, indices: torch.Tensor, lengths: torch.Tensor, logits: torch.Tensor,
) -> None:
    """A model offering `row_bag()` (for the compiled training step) gives its logits as the head
    of the weighted sums of its table's rows, and the table is a sparse embedding's weight."""
    if not callable(getattr(model, "row_bag", None)):
        return
    from toolkit.training import _split_parameters

    _require(callable(getattr(model, "precompute", None)),
             f"{label}: row_bag() needs precompute() too: the bags are read from precomputed tensors.")
    form = model.row_bag()
    _require(any(form.table is p for p in _split_parameters(model)[1]),
             f"{label}: row_bag()'s table is not the weight of an embedding marked sparse=True.")
    with torch.no_grad():
        ids, weights = form.bags(*model.precompute(indices, lengths))
        ids = ids.long()
        rows = form.table[ids] * (weights * (ids != PAD)).unsqueeze(2)
        found = form.head(rows.sum(1))
    _require(
        torch.allclose(found, logits, rtol=1e-5, atol=1e-5),
        f"{label}: row_bag()'s head of the weighted row sums differs from forward's logits (largest "
        f"difference {float((found - logits).abs().max()):.3g}).",
    )
    if form.bias is not None:
        features = torch.randn(3, form.table.shape[1], generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            _require(torch.allclose(form.head(features), features + form.bias),
                     f"{label}: row_bag() names a bias, but its head does more than add it.")


def _check_arrays(
    label: str, arrays: Any, model: nn.Module, indices: torch.Tensor, lengths: torch.Tensor,
    logits: torch.Tensor,
) -> None:
    """The model's numpy forward pass (`ModelSpec.array_factory`) reads the torch model's weights
    by their names and shapes and gives its logits, also with more padding."""
    weights = {name: value.detach().numpy() for name, value in model.state_dict().items()}
    shapes = {name: tuple(value.shape) for name, value in weights.items()}
    _require(
        {name: tuple(shape) for name, shape in dict(arrays.shapes).items()} == shapes,
        f"{label}: array_factory's model reads the weights {dict(arrays.shapes)}; the torch model has "
        f"{shapes}: the same names and shapes are needed.",
    )
    arrays.load(weights)
    padded = np.concatenate([indices.numpy(), np.full((len(indices), 5), PAD, dtype=np.int64)], axis=1)
    for name, batch in (("", indices.numpy()), (" with 5 more padding positions", padded)):
        found = np.asarray(arrays.logits(batch, lengths.numpy()))
        _require(
            found.shape == tuple(logits.shape)
            and np.allclose(found, logits.numpy(), rtol=ARRAYS_RTOL, atol=ARRAYS_ATOL),
            f"{label}: array_factory's logits{name} differ from forward's (largest difference "
            f"{_largest_difference(found, logits.numpy())}); they must be the same.",
        )


def _largest_difference(found: np.ndarray, wanted: np.ndarray) -> str:
    if found.shape != wanted.shape:
        return f"shape {found.shape} for {wanted.shape}"
    return f"{float(np.abs(found - wanted).max()):.3g}"


def _check_logits(label: str, logits: Any, shape: tuple[int, int]) -> None:
    _require(
        isinstance(logits, torch.Tensor) and tuple(logits.shape) == shape,
        f"{label}: forward returned {_describe(logits)} for {shape[0]} texts; it must return "
        f"logits of shape {shape} (batch, classes).",
    )
    _require(bool(torch.isfinite(logits).all()), f"{label}: forward returned NaN or infinite logits.")
    rows_sum_to_one = torch.allclose(logits.sum(dim=1), torch.ones(shape[0]), atol=1e-4)
    _require(
        not (bool((logits >= 0).all()) and rows_sum_to_one),
        f"{label}: forward returns probabilities (every row is non-negative and sums to 1); "
        "return raw logits, with no softmax: the trainer applies cross-entropy and prediction "
        "applies softmax.",
    )


def _check_padding(label: str, model: nn.Module, indices: torch.Tensor, lengths: torch.Tensor) -> None:
    with torch.no_grad():
        batch = model(indices, lengths)
        alone = torch.cat([
            model(indices[i:i + 1, : int(n)], lengths[i:i + 1]) for i, n in enumerate(lengths)
        ])
        more_padding = torch.full((len(indices), 5), PAD, dtype=indices.dtype)
        padded = model(torch.cat((indices, more_padding), 1), lengths)
    for name, got in (("in a batch", batch), ("with 5 more padding positions", padded)):
        if not torch.allclose(got, alone, rtol=PADDING_RTOL, atol=PADDING_ATOL):
            worst = int((got - alone).abs().amax(dim=1).argmax())
            raise ContractError(
                f"{label}: a text's logits change {name} (text {worst}: "
                f"{alone[worst].tolist()[:3]}... alone, {got[worst].tolist()[:3]}... {name}); mask "
                f"the padding (index {PAD} after each text's length): padding_idx=toolkit.PAD in "
                "nn.Embedding, "
                "a mask, or packed sequences."
            )


def _check_reload(
    label: str, model: nn.Module, build: Callable[[], nn.Module], indices: torch.Tensor,
    lengths: torch.Tensor, expected: torch.Tensor,
) -> None:
    """Save the weights as a run does (safetensors) and load them into a fresh build."""
    from safetensors.torch import load, save

    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    try:
        restored_weights = load(save(weights))
    except (RuntimeError, ValueError) as exc:
        raise ContractError(f"{label}: its weights cannot be saved as safetensors ({exc}).") from None
    fresh = build()
    try:
        fresh.load_state_dict(restored_weights)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise ContractError(
            f"{label}: a model rebuilt with the same parameters does not take the saved weights "
            f"({first}); build every layer in __init__ from vocab_size, num_classes and the params."
        ) from None
    with torch.no_grad():
        got = fresh.eval()(indices, lengths)
    _require(torch.allclose(got, expected, rtol=1e-5, atol=1e-6),
             f"{label}: the reloaded model predicts differently; keep all state in parameters or buffers.")


# -- helpers ----------------------------------------------------------------------------


def _spec(kind: str, spec: Any, plugins: Sequence[str]) -> Any:
    if isinstance(spec, str):
        return load_registry(plugins).get(kind, spec)
    expected = {"dataset": DatasetSpec, "encoder": EncoderSpec, "model": ModelSpec}[kind]
    if not isinstance(spec, expected):
        raise TypeError(f"expected a toolkit.{expected.__name__} or a registered {kind} name; got {spec!r}")
    return spec


def _values(kind: str, spec: Any, params: Mapping[str, Any] | None) -> dict[str, Any]:
    return resolve([Section(kind, f"{kind} '{spec.name}'", spec.params)], params or {})[kind]


def _fitted(spec: EncoderSpec, values: Mapping[str, Any], texts: list[str]) -> Encoder:
    label = f"encoder '{spec.name}'"
    encoder = spec.factory(**values)
    missing = [m for m in ENCODER_MEMBERS if not hasattr(encoder, m)]
    _require(not missing, f"{label}: factory built {type(encoder).__name__}, lacking {', '.join(missing)}.")
    _require(
        encoder.produces == spec.produces,
        f"{label}: the encoder produces {encoder.produces!r}, but its spec says {spec.produces!r}.",
    )
    encoder.fit(texts)
    encoded = encoder.encode(texts)
    with _contract():
        check_encoded(label, encoded, len(texts), encoder.vocab_size)
    return encoder


def _training_texts(num_classes: int, seed: int) -> tuple[list[str], list[int]]:
    """Made-up words of 1 to 9 letters, one class per starting letter group (learnable)."""
    rng = random.Random(seed)
    texts, targets = ["a"], [0]
    for i in range(1, 10 * num_classes):
        target = i % num_classes
        first = "abcdefghijklmnopqrstuvwxyz"[target::num_classes]
        texts.append(rng.choice(first).upper() + "".join(rng.choices("aeioulmnrst", k=rng.randint(0, 8))))
        targets.append(target)
    return texts, targets


def _label_sets(texts: list[str], targets: list[int], num_classes: int) -> torch.Tensor:
    """Multi-hot targets: every text its class, and a text of more than four letters also the
    next class (so a model can learn the second label from the text)."""
    hot = torch.zeros(len(texts), num_classes)
    for row, (text, target) in enumerate(zip(texts, targets, strict=True)):
        hot[row, target] = 1
        if len(text) > 4:
            hot[row, (target + 1) % num_classes] = 1
    return hot


def _objective(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The trainer's loss: cross-entropy for class indices, binary cross-entropy for multi-hot."""
    if y.dim() == 2:
        return F.binary_cross_entropy_with_logits(logits, y)
    return F.cross_entropy(logits, y)


def _train(
    model: nn.Module, indices: torch.Tensor, lengths: torch.Tensor, y: torch.Tensor,
    steps: int, lr: float, seed: int,
) -> nn.Module:
    from toolkit.train_config import TrainConfig
    from toolkit.training import optimizers_for

    torch.manual_seed(seed)  # dropout
    optimizers = optimizers_for(model, TrainConfig(lr=lr))  # Adam; LazyAdam for sparse embeddings
    model.train()
    for _ in range(steps):
        loss = _objective(model(indices, lengths), y)
        for optimizer in optimizers:
            optimizer.zero_grad()
        loss.backward()
        for optimizer in optimizers:
            optimizer.step()
    return model.eval()


def _loss(model: nn.Module, indices: torch.Tensor, lengths: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float(_objective(model.eval()(indices, lengths), y))


def _same_weights(a: nn.Module, b: nn.Module) -> bool:
    first, second = a.state_dict(), b.state_dict()
    return first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


def _describe(value: Any) -> str:
    return f"shape {tuple(value.shape)}" if isinstance(value, torch.Tensor) else type(value).__name__


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ContractError(message)


@contextmanager
def _contract() -> Iterator[None]:
    """The boundary checks raise ToolkitError for users; here they are contract failures."""
    try:
        yield
    except ToolkitError as exc:
        raise ContractError(str(exc)) from None


@contextmanager
def _one_thread() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)

