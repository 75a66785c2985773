"""The kit for dataset plugins: what every `load` needs besides reading its own format.

- `Provenance` builds the record of where a dataset came from, in the one format that run
  folders, reports, `toolkit datasets show` and prediction (`normalize_like`) read.
- `Provenance.normalize_pairs` normalises texts, drops those that are blank or become empty,
  and counts the drops by reason.
- `normalization_field` (in a `toolkit.Config` dataclass) or `normalization_param` (in a
  list of `Param`s) is the `normalization` parameter, declared once with one help text; each
  dataset picks only its default.
- `labels_field` (in a `toolkit.Config` dataclass) is the `labels` parameter (single or
  multi) of datasets that can read a text under several labels as one multi-label text;
  `Provenance.multi_label_dataset` builds that TextDataset, identical texts merged.
- `dataset_from_files` turns `<label>.txt` files (`toolkit.read_label_folder`,
  `toolkit.read_label_zip`) into a TextDataset with all of the above.

`toolkit.did_you_mean` (from `toolkit.errors`) completes it, for "unknown X" messages.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from hashlib import sha256
from pathlib import Path
from typing import Any, TypeVar

from toolkit.errors import ToolkitError
from toolkit.normalization import NORMALIZATIONS, normalize
from toolkit.params import Param, param_field
from toolkit.textfiles import LabelFiles, line_counts
from toolkit.types import TextDataset

T = TypeVar("T")

NORMALIZATION_HELP = (
    "How texts are normalised (a trained run normalises what it predicts the same way): "
    "ascii: the tutorial's unicodeToAscii (Ślusàrski -> Slusarski, other scripts dropped); "
    "unidecode: transliterate to ASCII (Straße -> Strasse); "
    "raw: as in the source (accents kept; pair it with encoder.alphabet=auto)."
)

#: Provenance keys the record writes itself (`counts` and `total` come from
#: `TextDataset.from_pairs`); other fields may not take these names.
RESERVED = ("source", "sha256", "dropped", "normalization", "shared_texts", "options",
            "loaded_at", "counts", "total")


#: `labels=multi`: a text found under several labels is one text with all of them.
LABEL_KINDS = ("single", "multi")
LABELS_HELP = (
    "single: one class per text (a text under two classes is two texts); multi: every distinct "
    "text once, with the set of all its classes (multi-label classification)."
)
#: Why a line is left out when `labels=multi` merges it into an earlier line with the same text.
MERGED = "same text again (labels merged)"


def labels_field(default: str = "single") -> Any:
    """The `labels` parameter of a dataset's `toolkit.Config` dataclass: single or multi."""
    return param_field(default, LABELS_HELP, choices=LABEL_KINDS)


def normalization_param(default: str = "raw") -> Param:
    """The `normalization` parameter of a dataset, with `default` as its default: the same
    name, help and choices (`toolkit.NORMALIZATIONS`) in every dataset that declares it."""
    return Param("normalization", str, default, NORMALIZATION_HELP, choices=NORMALIZATIONS)


def normalization_field(default: str = "raw") -> Any:
    """The same parameter as a field of a dataset's `toolkit.Config` dataclass:
    `normalization: str = toolkit.normalization_field("ascii")`."""
    return param_field(default, NORMALIZATION_HELP, choices=NORMALIZATIONS)


class Provenance:
    """Where a dataset came from, filled in while `load` reads it::

        record = toolkit.Provenance(str(path), normalization=normalization, options={...})
        data = record.add_file(path)            # the file's bytes; their SHA-256 recorded
        pairs = record.normalize_pairs(rows)    # blank and emptied texts dropped and counted
        record.drop("empty label")              # any other reason a line was left out
        return record.dataset(texts, labels)

    The record (`as_dict`) holds, in this order: `source` (a path or a description), the
    extra `fields`, `sha256` (file name to the SHA-256 of its bytes), `dropped` (reason to
    count), `normalization` (when given), `shared_texts` (distinct texts found under more than
    one class; only from `dataset`), `options` (when given) and `loaded_at` (UTC, ISO 8601).
    `dataset` adds `counts` (texts per class) and `total` through `TextDataset.from_pairs`.
    `normalization=None` means the texts are not normalised and nothing is recorded.
    """

    def __init__(
        self,
        source: str,
        *,
        normalization: str | None = None,
        options: Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> None:
        if normalization is not None and normalization not in NORMALIZATIONS:
            raise ToolkitError(
                f"unknown normalization '{normalization}'; use one of {', '.join(NORMALIZATIONS)}."
            )
        self.source = source
        self.normalization = normalization
        self.options = dict(options) if options is not None else None
        self.fields: dict[str, Any] = {}
        self.sha256: dict[str, str] = {}
        self.dropped: Counter[str] = Counter()
        self.update(**fields)

    def update(self, **fields: Any) -> None:
        """Add or replace extra fields (a licence, a package version, raw line counts...)."""
        taken = sorted(set(fields) & set(RESERVED))
        if taken:
            raise ToolkitError(
                f"provenance field '{taken[0]}' is written by toolkit.Provenance itself; "
                "give it another name (or use add_file, drop, options)."
            )
        self.fields.update(fields)

    def add_file(self, path: str | Path, data: bytes | None = None, name: str | None = None) -> bytes:
        """Record the SHA-256 of a file read, under `name` (default: the file's name), and
        return its bytes (read from `path` unless `data` is given)."""
        path = Path(path)
        if data is None:
            data = path.read_bytes()
        self.sha256[name or path.name] = sha256(data).hexdigest()
        return data

    def drop(self, reason: str, count: int = 1) -> None:
        """Count `count` lines left out, under `reason` (e.g. "empty label"); 0 records nothing."""
        if count:
            self.dropped[reason] += count

    def normalize_pairs(self, pairs: Iterable[tuple[str, T]]) -> list[tuple[str, T]]:
        """Each `(text, anything)` with its text normalised, in order. A text that is blank
        (white space only) is dropped as "blank line", one that normalisation leaves empty as
        "empty after normalization"; both are counted in `dropped`."""
        kept: list[tuple[str, T]] = []
        for text, other in pairs:
            if not text.strip():
                self.drop("blank line")
                continue
            normalized = text if self.normalization is None else normalize(text, self.normalization)
            if not normalized:
                self.drop("empty after normalization")
                continue
            kept.append((normalized, other))
        return kept

    def as_dict(self, shared_texts: int | None = None) -> dict[str, Any]:
        """The provenance record, as `TextDataset.provenance` and run folders hold it."""
        record: dict[str, Any] = {
            "source": self.source,
            **self.fields,
            "sha256": dict(self.sha256),
            "dropped": dict(self.dropped),
        }
        if self.normalization is not None:
            record["normalization"] = self.normalization
        if shared_texts is not None:
            record["shared_texts"] = shared_texts
        if self.options is not None:
            record["options"] = dict(self.options)
        record["loaded_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        return record

    def dataset(self, texts: Sequence[str], labels: Sequence[str]) -> TextDataset:
        """The TextDataset of `texts` and `labels`, with this record as its provenance."""
        classes_of: dict[str, set[str]] = {}
        for text, label in zip(texts, labels, strict=False):
            classes_of.setdefault(text, set()).add(label)
        shared = sum(1 for classes in classes_of.values() if len(classes) > 1)
        return TextDataset.from_pairs(texts, labels, self.as_dict(shared_texts=shared))

    def multi_label_dataset(self, pairs: Iterable[tuple[str, Iterable[str]]]) -> TextDataset:
        """The multi-label TextDataset of `(text, labels)` pairs, with this record as its
        provenance: a text found again is merged into its first line (its labels added; the
        line counted in `dropped` as MERGED), repeated labels count once, and `shared_texts`
        counts the texts with more than one label."""
        labels_of: dict[str, dict[str, None]] = {}  # insertion-ordered sets
        for text, labels in pairs:
            if text in labels_of:
                self.drop(MERGED)
            labels_of.setdefault(text, {}).update(dict.fromkeys(labels))
        shared = sum(1 for labels in labels_of.values() if len(labels) > 1)
        return TextDataset.from_label_sets(
            list(labels_of), [list(labels) for labels in labels_of.values()],
            self.as_dict(shared_texts=shared),
        )


def _label_lines(files: LabelFiles) -> Iterable[tuple[str, str]]:
    return ((line, label) for label, lines in files.lines.items() for line in lines)


def labelled_lines(
    files: LabelFiles, normalization: str = "raw"
) -> tuple[list[str], list[str], dict[str, int]]:
    """Normalised (texts, labels) from `files`, and how many lines were dropped and why."""
    record = Provenance(files.source, normalization=normalization)
    pairs = record.normalize_pairs(_label_lines(files))
    return [text for text, _ in pairs], [label for _, label in pairs], dict(record.dropped)


def dataset_from_files(
    files: LabelFiles, normalization: str = "raw", extra: Mapping[str, Any] | None = None,
    labels: str = "single",
) -> TextDataset:
    """A TextDataset of `files`' lines, normalised, with provenance: source, `extra`, raw
    line counts per label (`lines`), SHA-256 of each file, dropped lines by reason,
    normalization, load time (see `Provenance`). `labels=multi`: a text in several files is
    one text with all their labels (`Provenance.multi_label_dataset`)."""
    record = Provenance(files.source, normalization=normalization, **(extra or {}))
    record.update(lines=dict(line_counts(files)))
    record.sha256.update(files.sha256)
    pairs = record.normalize_pairs(_label_lines(files))
    if labels == "multi":
        return record.multi_label_dataset((text, (label,)) for text, label in pairs)
    return record.dataset([text for text, _ in pairs], [label for _, label in pairs])
