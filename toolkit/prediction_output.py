"""`toolkit predict --input`'s output files, CSV or JSON Lines, written a batch at a time.

The CSV is what Python's `csv.writer` writes (RFC 4180, CRLF, quoted only where needed), built
column by column: a batch's cells are taken from arrays (class names and probability digits from
small tables) and joined into one string, so there is no Python step per text or class. A text
that needs quoting or spreadsheet escaping (`toolkit.csv_cells`) is found by scanning the batch
joined into one string, and written by `csv.writer` itself.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from typing import TextIO

import numpy as np

from toolkit.csv_cells import safe_cell
from toolkit.ranking import Ranking

LINE_END = "\r\n"
#: A text whose cell may differ from the text holds one of INSIDE or starts with one of STARTS
#: (a formula's start or a space): a superset of what needs care, as such texts go to csv.writer.
_INSIDE = (",", '"', "\r")
_STARTS = ("=", "+", "-", "@", "\t", " ")
#: "%.6f" of k / 1,000,000 in two table look-ups: the integer part and first three decimals (with
#: the cell's leading comma), then the last three.
_HIGH = np.array([f",{k // 1000}.{k % 1000:03d}" for k in range(1001)], dtype=object)
_LOW = np.array([f"{k:03d}" for k in range(1000)], dtype=object)


def header(top: int, abstain: bool, sets: bool, labels: bool = False) -> list[str]:
    names = ["input", "predicted", "probability"]
    for rank in range(1, top + 1):
        names += [f"class_{rank}", f"probability_{rank}"]
    return names + ["abstained"] * abstain + ["set"] * sets + ["labels", "label_probabilities"] * labels


def write_csv(
    rankings: Iterable[Ranking], top: int, out: TextIO | io.TextIOBase, abstain: bool = False,
    sets: bool = False, escape: bool = True, labels: bool = False,
) -> int:
    """A CSV row per text; with `abstain` an `abstained` column (true: the class cells are
    empty), with `sets` a `set` column (the set's classes as a JSON list, most likely first),
    with `labels` (a multi-label run) `labels`, the predicted label set joined by `|`, and
    `label_probabilities`, each of its labels' probability in the same order.
    Texts and class names are made safe for spreadsheets unless `escape` is false
    (`toolkit.csv_cells`). A text with nothing left after normalisation gets empty cells."""
    out.write(cell_text(header(top, abstain, sets, labels)) + LINE_END)
    count = 0
    for ranking in rankings:
        out.write(csv_rows(ranking, top, abstain, sets, escape, labels))
        count += len(ranking)
    return count


def csv_rows(
    ranking: Ranking, top: int, abstain: bool, sets: bool, escape: bool, label_sets: bool = False
) -> str:
    """The CSV rows of one batch, CRLF-terminated."""
    count = len(ranking)
    if not count:
        return ""
    answered, read = ranking.answered, ranking.read
    # every row has every column; otherwise an unread text's row stops early
    padded = abstain or sets or label_sets
    labels = np.array([cell_text([safe_cell(name) if escape else name], ",") for name in ranking.class_names],
                      dtype=object)
    columns: list[np.ndarray] = [text_cells(ranking.texts, escape)]
    empty = np.full(count, ",", dtype=object)
    nothing = empty if padded else np.where(read, ",", "").astype(object)
    high, low = fixed6(ranking.probabilities)
    everyone = bool(answered.all())  # the usual batch: no cell to blank
    for rank in range(ranking.classes.shape[1] + 1):
        column = 0 if rank == 0 else rank - 1  # the predicted class and its probability repeat the first
        missing = empty if rank == 0 else nothing
        cells = [labels[ranking.classes[:, column]], high[:, column], low[:, column]]
        if not everyone:
            cells = [np.where(answered, cells[0], missing), np.where(answered, cells[1], missing),
                     np.where(answered, cells[2], "")]
        columns += cells
    if abstain:
        flags = ranking.abstained if ranking.abstained is not None else np.zeros(count, dtype=bool)
        columns.append(np.where(read, np.where(flags, ",true", ",false"), ",").astype(object))
    if sets:
        members = ranking.sets() if ranking.set_order is not None else [[]] * count
        columns.append(np.array(
            [cell_text([json.dumps([label for label, _ in found], ensure_ascii=False)], ",")
             for found in members], dtype=object))
    if label_sets:
        from toolkit.multilabel import label_set_cells

        chosen = ranking.label_sets() if ranking.label_order is not None else [[]] * count
        columns.append(np.array(
            [cell_text([safe_cell(names) if escape else names, chances], ",")
             for names, chances in map(label_set_cells, chosen)], dtype=object))
    columns.append(np.full(count, LINE_END, dtype=object))
    table = np.empty((count, len(columns)), dtype=object)
    for i, column in enumerate(columns):
        table[:, i] = column
    return "".join(table.ravel().tolist())


def text_cells(texts: Sequence[str], escape: bool) -> np.ndarray:
    """The CSV cells of `texts`: most as they are, the few that need care as csv.writer writes
    them (after `safe_cell` when `escape`)."""
    cells = np.empty(len(texts), dtype=object)
    cells[:] = list(texts)
    joined = "\n".join(texts)
    if joined.count("\n") != len(texts) - 1:  # a text holds a line break: look at each
        special: Iterable[int] = range(len(texts))
    else:
        starts = np.zeros(len(texts), dtype=np.int64)
        np.cumsum(np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))[:-1] + 1, out=starts[1:])
        found = _positions(joined, _INSIDE) + _positions("\n" + joined, tuple("\n" + c for c in _STARTS))
        special = np.unique(np.searchsorted(starts, found, side="right") - 1).tolist()
    for i in special:
        cells[i] = cell_text([safe_cell(texts[i]) if escape else texts[i]])
    return cells


def _positions(text: str, needles: tuple[str, ...]) -> list[int]:
    """Where each needle occurs in `text` (str.find: a C scan; a Python step per match only)."""
    found = []
    for needle in needles:
        at = text.find(needle)
        while at != -1:
            found.append(at)
            at = text.find(needle, at + 1)
    return found


def cell_text(cells: list[str], prefix: str = "") -> str:
    """`cells` as one CSV line without its end, exactly as csv.writer writes them."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator=LINE_END).writerow([*cells, ""])
    return prefix + buffer.getvalue()[: -len(LINE_END) - 1]  # without the extra empty cell


def fixed6(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each probability's ",%.6f" cell as two strings to join (unread rows: anything): table
    look-ups, with Python's own formatting for a value within rounding noise of a half."""
    scaled = np.nan_to_num(values, nan=0.0) * 1e6
    micros = np.rint(scaled)
    unsure = (np.abs(scaled - np.floor(scaled) - 0.5) < 1e-6) | (micros < 0) | (micros > 1e6)
    micros = np.clip(micros, 0, 1e6).astype(np.int64)
    high, low = _HIGH[micros // 1000], _LOW[micros % 1000]
    for row, column in zip(*np.nonzero(unsure & ~np.isnan(values)), strict=True):
        high[row, column], low[row, column] = f",{values[row, column]:.6f}", ""
    return high, low


def write_json_lines(rankings: Iterable[Ranking], out: TextIO | io.TextIOBase) -> int:
    """One JSON object a line, as the single-name --json output holds them."""
    count = 0
    for ranking in rankings:
        out.write("".join(json.dumps(answer, ensure_ascii=False) + "\n" for answer in ranking.dicts()))
        count += len(ranking)
    return count
