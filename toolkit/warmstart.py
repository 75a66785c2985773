"""Warm starts (`toolkit run --init RUN`): training starts from a trained run's model and its
fitted encoder instead of from scratch, to continue training or to fine-tune on new data.

The dataset is the run's unless one is named; on the run's dataset the run's dataset and
split parameters and seed are the defaults, so that training on keeps the run's test texts
out of training. The data's classes must be the run's, unless `train.new_classes=add`: then
the classes the run never saw get new output rows (initialised as a fresh model's are) after
the run's own, which keep their weights. The encoder is the run's as fitted; characters it does not know
are counted and said (they are read as its unknown character).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolkit.errors import ToolkitError
from toolkit.safe_files import shown

if TYPE_CHECKING:
    from torch import nn

    from toolkit.splits import Split
    from toolkit.types import Encoder, TextDataset


def init_config(path: str | Path) -> dict[str, Any]:
    """The config.json of the run folder a warm start begins from (checked to be complete)."""
    from toolkit.rundir import open_run

    try:
        _, config = open_run(path)
    except ToolkitError as exc:  # the folder may come from a config file's [run] init, not a flag
        raise ToolkitError(f"the run to start from (--init, or a config file's [run] init): {exc}") from None
    return config


def init_params(
    folder: Path, config: Mapping[str, Any], model: str, encoder: str, same_data: bool = False
) -> dict[str, Any]:
    """The init run's model and encoder parameters as `group.name` values, after checking
    that the planned model and encoder are the run's; with `same_data` (the run's dataset)
    its dataset and split parameters too, so that the run's test texts stay out of training."""
    for kind, planned in (("model", model), ("encoder", encoder)):
        recorded = config.get(kind, {}).get("name")
        if planned != recorded:
            raise ToolkitError(
                f"--init run '{shown(folder)}' has {kind} '{shown(recorded)}', not '{planned}'; a warm "
                f"start continues the same {kind}: leave out --{kind} or give --{kind} {shown(recorded)}."
            )
    values = {f"{kind}.{name}": value for kind in ("model", "encoder")
              for name, value in config[kind].get("params", {}).items()}
    if same_data:
        values |= {f"dataset.{name}": value for name, value in config["dataset"].get("params", {}).items()}
        values |= {f"split.{name}": value for name, value in config.get("split", {}).items()
                   if name not in ("seed", "sizes")}
    return values


def check_kept_params(
    folder: Path, config: Mapping[str, Any], resolved: Mapping[str, Mapping[str, Any]]
) -> None:
    """Refuse model or encoder parameters set otherwise than the init run's: a warm start
    continues that very model and encoder."""
    for kind in ("model", "encoder"):
        recorded = config[kind].get("params", {})
        for name, value in resolved[kind].items():
            if name in recorded and recorded[name] != value:
                raise ToolkitError(
                    f"--init run '{shown(folder)}' has {kind}.{name}={shown(recorded[name])}, not "
                    f"{shown(value)}; a warm start keeps the run's {kind} as it is: leave {kind}.{name} out."
                )


@dataclass(frozen=True)
class WarmStart:
    """What a run started from: the run folder, its classes, the classes added, and how many
    training texts hold characters the encoder does not know."""

    run: Path
    classes: tuple[str, ...]
    added_classes: tuple[str, ...]
    texts_with_unknown_characters: int
    unknown_characters: str

    def record(self) -> dict[str, Any]:
        """As config.json records it ("init")."""
        return {"run": str(self.run.resolve()), "classes": list(self.classes),
                "added_classes": list(self.added_classes),
                "texts_with_unknown_characters": self.texts_with_unknown_characters,
                "unknown_characters": self.unknown_characters}


def warm_start(
    init: Path, plugins: Sequence[str], new_classes: str, split: Split,
    build: Callable[[Encoder, int], nn.Module],
) -> tuple[Encoder, nn.Module, Split, WarmStart]:
    """The encoder and model of the run folder `init` for `split`'s data, and `split` with its
    classes in the model's output order (the run's classes first, then any added: allowed when
    `new_classes` is "add"). `build(encoder, classes)` makes a fresh model, seeded as any run's."""
    from toolkit.predictor import load_run

    loaded = load_run(init, plugins)
    if (loaded.multi_label is not None) != split.train.multi_label:
        kinds = ("multi-label", "single-label")
        if loaded.multi_label is None:
            kinds = kinds[::-1]
        raise ToolkitError(
            f"the --init run '{shown(init)}' is {kinds[0]} but this data is {kinds[1]}; start from a "
            f"{kinds[1]} run, or train from scratch."
        )
    old = tuple(loaded.classes)
    new = tuple(c for c in split.train.classes if c not in old)
    if new and new_classes != "add":
        raise ToolkitError(
            f"the data has {len(new)} class(es) the --init run '{shown(init)}' was not trained on "
            f"({', '.join(shown(c) for c in new[:5])}{', ...' if len(new) > 5 else ''}); pass "
            "--param train.new_classes=add to give them new output rows, or train from scratch."
        )
    classes = old + new
    model = loaded.model
    if new:
        model = _with_added_rows(build(loaded.encoder, len(classes)), loaded.model, len(old))
    unknown = _unknown_characters(loaded.encoder, split.train.texts)
    remapped = type(split)(
        *(_reordered(part, classes) for part in (split.train, split.val, split.test)),
        strategy=split.strategy, seed=split.seed,
    )
    info = WarmStart(Path(init), old, new, unknown[0], unknown[1])
    return loaded.encoder, model.train(), remapped, info


def _reordered(data: TextDataset, classes: Sequence[str]) -> TextDataset:
    index = {name: i for i, name in enumerate(classes)}
    if data.label_sets is not None:  # multi-label: every set in the new order, its first the target
        sets = tuple(tuple(sorted(index[data.classes[c]] for c in labels)) for labels in data.label_sets)
        return type(data)(data.texts, tuple(s[0] for s in sets), tuple(classes), data.provenance, sets)
    targets = tuple(index[data.classes[t]] for t in data.targets)
    return type(data)(data.texts, targets, tuple(classes), data.provenance)


def _with_added_rows(fresh: nn.Module, trained: nn.Module, old: int) -> nn.Module:
    """`fresh` (a model for more classes) holding the trained weights: every tensor copied,
    the output tensors' first `old` entries along their class axis from the trained model (a
    classifier's rows; the columns of `ngram`'s table, which holds a score per class)."""
    import torch

    state = fresh.state_dict()
    for key, value in trained.state_dict().items():
        target = state.get(key)
        if target is None:
            continue
        differ = [axis for axis, (was, now) in enumerate(zip(value.shape, target.shape, strict=False))
                  if was != now] if value.dim() == target.dim() else []
        if target.shape == value.shape:
            state[key] = value.clone()
        elif len(differ) == 1 and value.shape[differ[0]] == old < target.shape[differ[0]]:
            grown = target.clone()
            grown.narrow(differ[0], 0, old).copy_(value)
            state[key] = grown
        else:
            raise ToolkitError(
                f"the model's tensor '{key}' has shape {tuple(value.shape)} in the --init "
                f"run but {tuple(target.shape)} with the added classes; this model cannot add classes."
            )
    with torch.no_grad():
        fresh.load_state_dict(state)
    return fresh


def _unknown_characters(encoder: Encoder, texts: Sequence[str]) -> tuple[int, str]:
    """How many texts hold characters a character encoder's alphabet lacks, and which
    (the first 20); (0, "") for an encoder without an alphabet."""
    alphabet = getattr(encoder, "alphabet", None)
    if not isinstance(alphabet, str) or not alphabet:
        return 0, ""
    known = set(alphabet)
    count, missing = 0, set()
    for text in texts:
        outside = set(text) - known
        if outside:
            count += 1
            missing |= outside
    return count, "".join(sorted(missing)[:20])
