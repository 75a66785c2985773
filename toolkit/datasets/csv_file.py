"""`csv`: any CSV or TSV file with a text column and a label column.

For character name to writer, page title to subreddit, or anything a user has. The first
row names the columns. The delimiter comes from the `delimiter` parameter, else from the
extension (`.tsv`, `.tab`: tab), else csv.Sniffer's guess among comma, tab, semicolon and
pipe. Fields follow the usual CSV quoting ("a, b" is one field; "" is a quote inside one).
Rows whose text or label is empty are dropped and counted; blank lines are skipped.

With `label_delimiter` (e.g. `|`), a label cell holds a set of labels (`a|b`), read after the
CSV quoting (so the delimiter may also stand inside a quoted cell): labels left empty are
dropped and counted, repeated ones count once, and a text found on several rows is one text
with all their labels (multi-label data, `TextDataset.label_sets`).
"""

from __future__ import annotations

import codecs
import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import toolkit

DELIMITERS = {"comma": ",", "tab": "\t", "semicolon": ";", "pipe": "|"}
TAB_EXTENSIONS = (".tsv", ".tab")
_SNIFF_BYTES = 64 * 1024


def _read_text(path: Path, encoding: str, record: toolkit.Provenance) -> str:
    if not path.exists():
        raise toolkit.ToolkitError(f"CSV file '{path}' does not exist; check dataset.path.")
    if not path.is_file():
        raise toolkit.ToolkitError(f"'{path}' is not a file; give dataset.path a CSV or TSV file.")
    data = record.add_file(path)
    try:
        codec = codecs.lookup(encoding).name
    except LookupError:
        raise toolkit.ToolkitError(
            f"unknown encoding '{encoding}' for dataset.encoding; use e.g. utf-8, latin-1 or cp1252."
        ) from None
    try:
        # utf-8-sig: a byte-order mark (Excel writes one) is not part of the first column name.
        text = data.decode("utf-8-sig" if codec == "utf-8" else codec)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise toolkit.ToolkitError(
            f"CSV file '{path}' is not {encoding}: bad byte 0x{data[exc.start]:02x} on line {line}; "
            "set --param dataset.encoding=ENCODING (e.g. latin-1 or cp1252) or re-save it as UTF-8."
        ) from None
    return text


def choose_delimiter(path: Path, text: str, delimiter: str) -> str:
    """The delimiter: the parameter's, else by extension, else sniffed (comma if unsure)."""
    if delimiter != "auto":
        return DELIMITERS[delimiter]
    if path.suffix.lower() in TAB_EXTENSIONS:
        return "\t"
    sample = text[:_SNIFF_BYTES]
    if len(text) > _SNIFF_BYTES and "\n" in sample:
        sample = sample[: sample.rindex("\n")]  # whole lines only
    try:
        return csv.Sniffer().sniff(sample, delimiters="".join(DELIMITERS.values())).delimiter
    except csv.Error:
        return ","


def _column(header: list[str], wanted: str, role: str, path: Path, delimiter: str) -> int:
    positions = [i for i, name in enumerate(header) if name == wanted]
    if len(positions) > 1:
        raise toolkit.ToolkitError(
            f"CSV file '{path}' has {len(positions)} columns named '{wanted}'; rename one."
        )
    if positions:
        return positions[0]
    hint = toolkit.did_you_mean(wanted, header)
    shown = ", ".join(f"'{name}'" for name in header)
    named = {"\t": "tab"}.get(delimiter, repr(delimiter))
    raise toolkit.ToolkitError(
        f"CSV file '{path}' has no column '{wanted}' (dataset.{role}_column).{hint} Its columns, "
        f"split at {named}: {shown}; set --param dataset.{role}_column=NAME or dataset.delimiter."
    )


@dataclass(frozen=True)
class CsvConfig(toolkit.Config):
    """`csv`'s parameters."""

    owner = "dataset 'csv'"
    path: str = toolkit.param_field(
        "", "The CSV or TSV file; its first row names the columns (required).", path=True,
    )
    text_column: str = toolkit.param_field("text", "The column holding the texts to classify.")
    label_column: str = toolkit.param_field("label", "The column holding each text's class.")
    delimiter: str = toolkit.param_field(
        "auto",
        "auto: tab for .tsv/.tab files, else guessed from the file; or comma, tab, semicolon, pipe.",
        choices=("auto", *DELIMITERS),
    )
    encoding: str = toolkit.param_field("utf-8", "The file's text encoding (e.g. utf-8, latin-1, cp1252).")
    normalization: str = toolkit.normalization_field("raw")
    label_delimiter: str | None = toolkit.param_field(
        None, "Read each label cell as a set of labels split at this string (e.g. '|' reads a|b as "
        "two labels): multi-label classification. Unset: one label per row.",
    )

    def check(self) -> str | None:
        if self.label_delimiter == "":
            return (
                "got an empty dataset.label_delimiter; give the string between the labels of a cell "
                "(e.g. --param dataset.label_delimiter='|'), or leave it out for one label per row"
            )
        if self.text_column == self.label_column:
            return (
                f"got the same column '{self.text_column}' for the text and the label; set "
                "dataset.text_column and dataset.label_column to two different columns"
            )
        return None


def load(**params: Any) -> toolkit.TextDataset:
    """The (text, label) rows of a CSV/TSV file, with provenance (see the module doc);
    `params` are `CsvConfig`'s."""
    config = CsvConfig(**params)
    if not config.path:  # not in check(): the default, "", must itself be a valid config
        raise toolkit.ToolkitError(
            "dataset 'csv' needs a file: pass --param dataset.path=FILE (a CSV or TSV whose first row "
            "names the columns; text and label by default)."
        )
    text_column, label_column = config.text_column, config.label_column
    file = Path(config.path).expanduser()
    record = toolkit.Provenance(str(file.resolve()), normalization=config.normalization)
    text = _read_text(file, config.encoding, record)
    if not text.strip():
        raise toolkit.ToolkitError(
            f"CSV file '{file}' is empty; it needs a header row ({text_column},{label_column}) "
            "and one row per item."
        )
    separator = choose_delimiter(file, text, config.delimiter)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=separator)
    try:
        header = [name.strip() for name in next(reader)]
        text_at = _column(header, text_column, "text", file, separator)
        label_at = _column(header, label_column, "label", file, separator)
        rows: list[tuple[str, str]] = []
        for row in reader:
            if not any(field.strip() for field in row):
                record.drop("blank line")
                continue
            if len(row) > len(header):
                raise toolkit.ToolkitError(
                    f"line {reader.line_num} of CSV file '{file}' has {len(row)} fields but the header has "
                    f"{len(header)}; quote fields that contain the delimiter, or set dataset.delimiter."
                )
            rows.append((
                row[text_at] if text_at < len(row) else "",
                (row[label_at] if label_at < len(row) else "").strip(),
            ))
    except csv.Error as exc:
        raise toolkit.ToolkitError(
            f"CSV file '{file}' is malformed near line {reader.line_num}: {exc}."
        ) from None
    if not rows:
        raise toolkit.ToolkitError(
            f"CSV file '{file}' has a header row but no data rows; add one row per item."
        )
    labelled: list[tuple[str, Any]] = []
    for item, label in rows:
        labels = _label_set(label, config.label_delimiter, record) if config.label_delimiter else label
        if not item.strip():
            record.drop("empty text")
        elif not labels:
            record.drop("empty label")
        else:
            labelled.append((item, labels))
    pairs = record.normalize_pairs(labelled)
    if not pairs:
        reasons = ", ".join(f"{count} {reason}" for reason, count in record.dropped.items())
        raise toolkit.ToolkitError(
            f"CSV file '{file}' has no row with both a text and a label ({reasons}); "
            f"fill the '{text_column}' and '{label_column}' columns."
        )
    record.update(rows=len(rows))
    record.options = {**config.as_dict(), "delimiter": separator}
    if config.label_delimiter:
        return record.multi_label_dataset(pairs)
    return record.dataset([item for item, _ in pairs], [label for _, label in pairs])


def _label_set(cell: str, delimiter: str, record: toolkit.Provenance) -> tuple[str, ...]:
    """The distinct labels of a cell, in order; empty ones (`a||b`, a trailing `|`) and
    repeats are counted in the record's drops."""
    parts = [part.strip() for part in cell.split(delimiter)]
    kept = tuple(dict.fromkeys(part for part in parts if part))
    if cell:
        record.drop("empty label in a label set", sum(1 for part in parts if not part))
    record.drop("repeated label in a label set", sum(1 for part in parts if part) - len(kept))
    return kept


@toolkit.hookimpl
def register_datasets(register) -> None:
    register(
        toolkit.DatasetSpec(
            name="csv",
            help="Any CSV or TSV file with a text column and a label column.",
            load=load,
            config=CsvConfig,
        )
    )
