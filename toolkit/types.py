"""What plugins register, and the objects that flow between them.

A dataset plugin registers a `DatasetSpec` whose `load(**params)` returns a `TextDataset`.
An encoder plugin registers an `EncoderSpec` whose `factory(**params)` returns an `Encoder`.
A model plugin registers a `ModelSpec` whose `factory(vocab_size=, num_classes=, **params)`
returns a `torch.nn.Module` mapping `(indices, lengths)` to logits of shape (batch, classes).
"""

from __future__ import annotations

import inspect
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from toolkit.errors import ToolkitError
from toolkit.params import Config, Param, Space, params_of

if TYPE_CHECKING:
    import numpy as np
    import torch

#: What the built-in one-hot encoder produces and the built-in models consume: a padded
#: LongTensor of character indices (batch, time) and a LongTensor of lengths (batch,).
CHAR_INDICES = "char-indices"
#: The index that fills a CHAR_INDICES batch after each text's end; it never stands for a
#: character, so a model may use it as `padding_idx`.
PAD = 0
#: The characters of PyTorch's names tutorial: the `onehot` encoder's default alphabet and
#: what `normalization=ascii` keeps.
TUTORIAL_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ .,;'"


class EmptyDatasetError(ToolkitError):
    """A dataset's `load` found no texts; where it is loaded, the message gains the dataset's
    name and parameters (the filters that may have left everything out)."""

    def __str__(self) -> str:
        return f"the dataset is empty: {self.args[0]}."


@dataclass(frozen=True)
class TextDataset:
    """Labelled short texts. `targets[i]` indexes `classes`, which are sorted.

    `provenance` says where the data came from (source, checksums, counts, options), and is
    written into every run. Build one with `TextDataset.from_pairs`.

    Multi-label data (`TextDataset.from_label_sets`) also has `label_sets`: for every text the
    sorted indices of all its classes (at least one). `targets[i]` is then the first of them,
    so code that reads one class per text keeps working; `label_sets` is None for single-label
    data, which stays the default representation (`multi_label` tells them apart).
    """

    texts: tuple[str, ...]
    targets: tuple[int, ...]
    classes: tuple[str, ...]
    provenance: Mapping[str, Any] = field(default_factory=dict)
    label_sets: tuple[tuple[int, ...], ...] | None = None

    @classmethod
    def from_pairs(
        cls,
        texts: Sequence[str],
        labels: Sequence[str],
        provenance: Mapping[str, Any] | None = None,
    ) -> TextDataset:
        """Build from parallel lists of texts and label names; classes come out sorted."""
        if len(texts) != len(labels):
            raise ToolkitError(f"got {len(texts)} texts but {len(labels)} labels.")
        classes = _checked_classes(texts, labels, provenance)
        index = {name: i for i, name in enumerate(classes)}
        counts = Counter(labels)
        info = dict(provenance or {})
        info.setdefault("counts", {name: counts[name] for name in classes})
        info.setdefault("total", len(texts))
        return cls(tuple(texts), tuple(index[label] for label in labels), classes, info)

    @classmethod
    def from_label_sets(
        cls,
        texts: Sequence[str],
        label_sets: Sequence[Sequence[str]],
        provenance: Mapping[str, Any] | None = None,
    ) -> TextDataset:
        """Multi-label data from parallel lists of texts and their label names (each a
        non-empty collection; repeats count once); classes come out sorted, and the
        provenance `counts` are texts per class."""
        if len(texts) != len(label_sets):
            raise ToolkitError(f"got {len(texts)} texts but {len(label_sets)} label sets.")
        if any(not labels for labels in label_sets):
            raise ToolkitError("every text needs at least one label; drop texts without labels.")
        classes = _checked_classes(texts, [label for labels in label_sets for label in labels], provenance)
        index = {name: i for i, name in enumerate(classes)}
        sets = tuple(tuple(sorted({index[label] for label in labels})) for labels in label_sets)
        counts = Counter(i for labels in sets for i in labels)
        info = dict(provenance or {})
        info.setdefault("counts", {name: counts[index[name]] for name in classes})
        info.setdefault("total", len(texts))
        return cls(tuple(texts), tuple(labels[0] for labels in sets), classes, info, sets)

    @property
    def multi_label(self) -> bool:
        """Whether the texts carry sets of labels (`label_sets`) rather than one each."""
        return self.label_sets is not None

    def __len__(self) -> int:
        return len(self.texts)

    def labels(self) -> list[str]:
        """The class name of every text (for multi-label data, the first of its classes)."""
        return [self.classes[t] for t in self.targets]

    def label_names(self) -> list[tuple[str, ...]]:
        """The class names of every text: all of them for multi-label data, else one."""
        sets = self.label_sets if self.label_sets is not None else [(t,) for t in self.targets]
        return [tuple(self.classes[i] for i in labels) for labels in sets]

    def subset(self, indices: Sequence[int]) -> TextDataset:
        """The texts at `indices`, with the same classes and provenance."""
        return TextDataset(
            tuple(self.texts[i] for i in indices),
            tuple(self.targets[i] for i in indices),
            self.classes,
            self.provenance,
            tuple(self.label_sets[i] for i in indices) if self.label_sets is not None else None,
        )


def _checked_classes(
    texts: Sequence[str], labels: Sequence[str], provenance: Mapping[str, Any] | None
) -> tuple[str, ...]:
    """The sorted classes of `labels`; no texts, or a single class, is refused."""
    if not texts:
        dropped = (provenance or {}).get("dropped") or {}
        because = ", ".join(f"{count} {reason}" for reason, count in dropped.items()) if isinstance(
            dropped, Mapping) else ""
        raise EmptyDatasetError(
            "no labelled texts were found" + (f" (left out: {because})" if because else "")
        )
    classes = tuple(sorted(set(labels)))
    if len(classes) < 2:
        raise ToolkitError(
            f"the dataset has a single class '{classes[0]}'; "
            "a classifier needs at least two. Add data for another class."
        )
    return classes


@runtime_checkable
class Encoder(Protocol):
    """Turns texts into model input. Fitted on training texts; its state saved as JSON."""

    produces: str

    @property
    def vocab_size(self) -> int: ...

    def fit(self, texts: Sequence[str]) -> None: ...

    def encode(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (indices, lengths): a padded LongTensor (batch, time) and (batch,).
        An encoder may also have `encode_arrays(texts)`, the same as int64 numpy arrays without
        importing torch, which the numpy runtime then uses."""
        ...

    def state(self) -> dict[str, Any]:
        """JSON-serialisable state, enough for `load_state` to rebuild the encoder."""
        ...

    def load_state(self, state: Mapping[str, Any]) -> None: ...


#: The median words per training text from which texts count as several words (titles,
#: descriptions, messages) rather than names or single words.
SEVERAL_WORDS = 2


def reads_several_words(encoder: Any) -> bool:
    """Whether `encoder` was fitted on texts of several words: its `words_per_text` (the median
    words per training text) is `SEVERAL_WORDS` or more. An encoder without it, or a run saved
    before it existed, read names. Models choose their `auto` defaults with it."""
    words = getattr(encoder, "words_per_text", None)
    return words is not None and words >= SEVERAL_WORDS


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset a plugin provides. `load(**params)` returns a `TextDataset`.

    `download(**params)`, when given, fetches the data ahead of time and returns where it is;
    `location(**params)` says where the data is (or would be) cached.
    `config`, instead of `params`, is a `toolkit.Config` dataclass declaring the parameters
    (`params` is then derived from it, and `plan_run` builds it before any data is read, so
    its rules across parameters are checked early too).
    """

    name: str
    help: str
    load: Callable[..., TextDataset]
    params: tuple[Param, ...] = ()
    download: Callable[..., Any] | None = None
    location: Callable[..., Any] | None = None
    config: type[Config] | None = None

    def __post_init__(self) -> None:
        _derive_params(self)


@dataclass(frozen=True)
class EncoderSpec:
    """An encoder a plugin provides. `factory(**params)` returns an `Encoder`.

    `config`, instead of `params`, is a `toolkit.Config` dataclass declaring the parameters
    (`params` is then derived from it, and `plan_run` builds it before any data is read, so
    its rules across parameters are checked early too).
    """

    name: str
    help: str
    factory: Callable[..., Encoder]
    params: tuple[Param, ...] = ()
    produces: str = CHAR_INDICES
    config: type[Config] | None = None

    def __post_init__(self) -> None:
        _derive_params(self)


@dataclass(frozen=True)
class ModelSpec:
    """A model a plugin provides.

    `factory(vocab_size=..., num_classes=..., **params)` returns a `torch.nn.Module` whose
    `forward(indices, lengths)` returns logits of shape (batch, num_classes). A factory that
    names an `encoder` argument also gets the fitted encoder (to read its `symbols`, say); build
    models with `build`, which passes it.
    `train_defaults` are the model's own defaults for trainer parameters (`train.*` names
    without the group, e.g. `{"lr": 0.1}`); a value given for the run still wins.
    `train_search` likewise replaces how `toolkit tune` searches trainer parameters for this
    model (e.g. `{"lr": Space.range(0.05, 1.0, log=True)}`; None: not searched).
    A factory that names a `multi_label` argument learns whether the run is multi-label (each
    class a yes/no question, scored by a sigmoid of its logit, trained with binary cross-entropy
    by the trainer); most models need not care, as their logits mean one score per class either way.
    `config`, instead of `params`, is a `toolkit.Config` dataclass declaring the parameters
    (`params` is then derived from it, and `plan_run` builds it before any data is read, so
    its rules across parameters are checked early too).
    `array_factory`, optional, takes what `factory` takes and returns the model's forward pass
    on numpy arrays, without torch (an `ArrayModel`), or None for parameters it cannot compute;
    `predict --runtime numpy` (and `auto`, the default) predicts with it.
    """

    name: str
    help: str
    factory: Callable[..., Any]
    params: tuple[Param, ...] = ()
    consumes: tuple[str, ...] = (CHAR_INDICES,)
    train_defaults: Mapping[str, Any] = field(default_factory=dict)
    config: type[Config] | None = None
    train_search: Mapping[str, Space | None] = field(default_factory=dict)
    array_factory: Callable[..., ArrayModel | None] | None = None

    def __post_init__(self) -> None:
        _derive_params(self)

    def build(
        self, *, vocab_size: int, num_classes: int, params: Mapping[str, Any], encoder: Encoder | None = None,
        multi_label: bool = False,
    ) -> Any:
        """The model: `factory(vocab_size=, num_classes=, **params)`, plus `encoder=` when the
        factory names that argument and an encoder is given, and `multi_label=True` when the
        run is multi-label and the factory names that argument."""
        return _call(self.factory, vocab_size, num_classes, params, encoder, multi_label)

    def build_arrays(
        self, *, vocab_size: int, num_classes: int, params: Mapping[str, Any], encoder: Encoder | None = None,
        multi_label: bool = False,
    ) -> ArrayModel | None:
        """The model's forward pass on numpy arrays (`array_factory`, called as `build` calls
        `factory`); None when the model offers none for these parameters."""
        if self.array_factory is None:
            return None
        return _call(self.array_factory, vocab_size, num_classes, params, encoder, multi_label)


def _call(
    factory: Callable[..., Any], vocab_size: int, num_classes: int, params: Mapping[str, Any],
    encoder: Encoder | None, multi_label: bool,
) -> Any:
    """`factory(vocab_size=, num_classes=, **params)`, plus `encoder=` when it names that argument
    and an encoder is given, and `multi_label=True` when the run is and it names that argument."""
    extra: dict[str, Any] = {}
    if encoder is not None and takes_encoder(factory):
        extra["encoder"] = encoder
    if multi_label and takes_encoder(factory, "multi_label"):
        extra["multi_label"] = True
    return factory(vocab_size=vocab_size, num_classes=num_classes, **params, **extra)


class ArrayModel(Protocol):
    """A model's forward pass on numpy arrays, without torch (`ModelSpec.array_factory`). Built
    from the sizes alone, it allocates no weights until `load`: the run's weights are checked
    against `shapes` first, so a config with tampered sizes is refused before any memory is taken."""

    #: The weights it reads, by the names and shapes of the torch model's `state_dict`.
    shapes: Mapping[str, tuple[int, ...]]

    def load(self, weights: Mapping[str, np.ndarray]) -> None:
        """Take the run's weights (numpy arrays, checked against `shapes`)."""
        ...

    def logits(self, indices: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """(batch, classes) logits of int64 padded indices (batch, time) and lengths (batch,),
        the same as the torch model's `forward` gives."""
        ...


@dataclass(frozen=True)
class RowBag:
    """A model's first stage as a weighted bag of table rows (`model.row_bag()`): each text's
    features are the sum of `table`'s rows for its ids, each times its weight, and `head` turns
    the features into logits. A model that precomputes its inputs (`precompute`) and offers this
    trains with the compiled step (`train.engine`, toolkit.compiled_step): the table's rows are
    read and updated by compiled loops instead of torch operations."""

    #: The (rows, width) nn.Parameter of an embedding the model marks sparse; row PAD is never read.
    table: Any
    #: The model's precomputed tensors for some texts -> (ids, weights), both (texts, slots); a
    #: slot whose id is PAD is empty. The weights must not depend on learned parameters.
    bags: Callable[..., tuple[Any, Any]]
    #: (texts, width) features -> (texts, classes) logits, in torch (the rest of the model).
    head: Callable[[Any], Any]
    #: When `head` only adds a bias (a linear model: `ngram` with dim=0), that (classes,)
    #: nn.Parameter: the whole step of a single-label run is then compiled, loss included.
    bias: Any = None


def takes_encoder(factory: Callable[..., Any], argument: str = "encoder") -> bool:
    """Whether a model factory names an `encoder` (or another) argument (not only **kwargs)."""
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False
    found = parameters.get(argument)
    return found is not None and found.kind in (found.POSITIONAL_OR_KEYWORD, found.KEYWORD_ONLY)


Spec = DatasetSpec | EncoderSpec | ModelSpec


def _derive_params(spec: Spec) -> None:
    """Fill `params` from `config`; a wrong `config` is left for the contract check to name."""
    config = spec.config
    if config is not None and not spec.params and isinstance(config, type) and issubclass(config, Config):
        object.__setattr__(spec, "params", params_of(config))
