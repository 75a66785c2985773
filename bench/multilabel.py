"""The README's multi-label table: test scores of multi-label runs on two real data sets.

- names with `--param dataset.labels=multi`: each of the 17,417 distinct names once, with every
  language it stands under (480 stand under two or more); beside it the single-label run on the
  same data, whose any-correct accuracy and ceiling say what one class per name can reach.
- Debian package descriptions with their debtags: the one-line synopsis of every package in
  this machine's apt lists (`/var/lib/apt/lists/*_Packages.lz4`, read with apt's own
  `apt-helper cat-file`), labelled with its tags of the facets `use`, `works-with` and `field`
  (what a package is for, what it works with, its field), each tag kept when at least
  MIN_TEXTS synopses carry it. Several words a text, several tags a text. The source file and
  its SHA-256 are printed and written beside the numbers.

Every run goes through `toolkit.run` (the code path of `toolkit run`), seed 0, the `ngram`
model with its own defaults, thresholds chosen on validation (train.threshold=auto). Usage:

    python bench/multilabel.py                    # print the table
    python bench/multilabel.py --write README.md  # and write it between the multilabel markers
"""

from __future__ import annotations

import argparse
import csv
import glob
import hashlib
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from scale_common import write_between_markers
from train_bench import load, machine

import toolkit

APT_LISTS = "/var/lib/apt/lists/*_main_binary-*_Packages.lz4"
APT_HELPER = "/usr/lib/apt/apt-helper"
FACETS = ("use::", "works-with::", "field::")
MIN_TEXTS = 50
MODEL = "ngram"


def packages_file() -> Path:
    """The largest main Packages list of this machine's apt sources (the release, not its updates)."""
    found = sorted(glob.glob(APT_LISTS), key=lambda p: Path(p).stat().st_size)
    if not found:
        raise SystemExit(f"no apt Packages list matches {APT_LISTS}; run apt-get update first")
    return Path(found[-1])


def stanzas(path: Path) -> list[dict[str, str]]:
    """The package stanzas of an apt Packages list, each field's lines joined."""
    text = subprocess.run([APT_HELPER, "cat-file", str(path)], check=True, capture_output=True,
                          text=True).stdout
    packages = []
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        key = None
        for line in block.splitlines():
            if line.startswith((" ", "\t")) and key is not None:
                fields[key] += " " + line.strip()
            elif ":" in line:
                key, value = line.split(":", 1)
                fields[key] = value.strip()
        if fields:
            packages.append(fields)
    return packages


def debtags_csv(path: Path, destination: Path) -> dict[str, Any]:
    """Write (synopsis, tags) rows to `destination`; return how the data set was made."""
    rows = []
    for fields in stanzas(path):
        tags = [t.strip() for t in fields.get("Tag", "").split(",") if t.strip().startswith(FACETS)]
        synopsis = fields.get("Description", "").strip()
        if tags and synopsis:
            rows.append((synopsis, tags))
    counts = Counter(tag for _, tags in rows for tag in set(tags))
    kept = {tag for tag, count in counts.items() if count >= MIN_TEXTS}
    with destination.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "tags"])
        for synopsis, tags in rows:
            mine = sorted(set(tags) & kept)
            if mine:
                writer.writerow([synopsis, "|".join(mine)])
    return {"source": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "tags": len(kept), "facets": ", ".join(FACETS)}


def scores(result: toolkit.RunResult) -> dict[str, float]:
    summary = result.report.summary["value"]
    return {name: float(summary[name]) for name in summary.index}


def row(label: str, command: str, numbers: dict[str, float], sizes: dict[str, int], classes: int) -> str:
    def cell(name: str, percent: bool = False) -> str:
        if name not in numbers:
            return "–"
        return f"{numbers[name]:.1%}" if percent else f"{numbers[name]:.3f}"

    command = command.replace("|", "\\|")  # a table cell, code span or not, ends at a bare |
    return (f"| {label} | `{command}` | {classes} | {sizes['test']:,} | {cell('micro_f1')} "
            f"| {cell('macro_f1')} | {cell('samples_f1')} | {cell('subset_accuracy', True)} "
            f"| {cell('accuracy', True)} "
            f"| {cell('any_correct_accuracy', True)} | {cell('accuracy_ceiling', True)} |")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", type=Path, metavar="README", help="Write the table into this file.")
    args = parser.parse_args()
    before = load()
    print(f"Machine: {machine()}")
    print(f"Before: {before}")
    lines = []
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        source = packages_file()
        tagged = scratch / "debtags.csv"
        made = debtags_csv(source, tagged)
        print(f"debtags data: {made}")
        runs = [
            ("names, one class per name", "toolkit run --dataset names --model ngram", "names", {}),
            ("names, every language of a name", "toolkit run --dataset names --model ngram "
             "--param dataset.labels=multi", "names", {"dataset.labels": "multi"}),
            ("Debian synopsis to debtags", "toolkit run --dataset csv --param path=debtags.csv "
             "--param label_column=tags --param label_delimiter='|' --model ngram", "csv",
             {"dataset.path": str(tagged), "dataset.label_column": "tags", "dataset.label_delimiter": "|"}),
        ]
        for label, command, dataset, params in runs:
            started = time.perf_counter()
            result = toolkit.run(dataset, model=MODEL, params=params, seed=0, output=scratch / label,
                                 progress=False)
            numbers = scores(result)
            print(f"{label}: {time.perf_counter() - started:.0f} s, {numbers}")
            lines.append(row(label, command, numbers, result.split.sizes(), len(result.classes)))
            if dataset == "csv":
                cardinality = numbers["label_cardinality_true"]
                made["texts"] = sum(result.split.sizes().values())
                made["cardinality"] = f"{cardinality:.2f}"
    after = load()
    print(f"After: {after}")
    text = "\n".join([
        f"On {machine()}, {time.strftime('%Y-%m-%d')}; {before} before, {after} after. "
        f"The debtags data: {made['texts']:,} distinct synopses from `{made['source']}` (SHA-256 "
        f"{made['sha256'][:16]}...), {made['tags']} tags of the facets {made['facets']} with at least "
        f"{MIN_TEXTS} synopses each, {made['cardinality']} tags per test synopsis.",
        "",
        "| data | command | classes | test texts | micro-F1 | macro-F1 | samples-F1 | subset accuracy "
        "| accuracy | any-correct accuracy | accuracy ceiling |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        *lines,
    ])
    print("\n" + text)
    if args.write:
        write_between_markers(args.write, "multilabel", text)
        print(f"\nWritten into {args.write}")


if __name__ == "__main__":
    main()
