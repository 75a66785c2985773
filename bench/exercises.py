"""The README's exercise table: test accuracy of each exercise's `toolkit run` command, and
the majority-class baseline of the same test split.

Each row runs the command shown in the table through `toolkit.run` (the code path of
`toolkit run`) with the default parameters and seed 0. The CSV row reads the names data
written as `names.csv` (columns text, label); the folder row reads the names folder. Usage:

    python bench/exercises.py                    # print the table
    python bench/exercises.py --write README.md  # and write it between the exercise markers
    python bench/exercises.py --param train.epochs=1 --param model.hidden_size=8  # a quick check

With --param the numbers are not the defaults' and --write is refused.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from scale_common import write_between_markers
from train_bench import load, machine

import toolkit
from toolkit.params import parse_assignments


@dataclass(frozen=True)
class Exercise:
    label: str
    command: str  # as shown in the README
    dataset: str
    params: dict[str, Any]


def exercises(names_csv: Path, names_folder: Path) -> list[Exercise]:
    return [
        Exercise("first name to gender", "toolkit run --dataset first-names-gender --model gru",
                 "first-names-gender", {}),
        Exercise("word to language (8 languages)",
                 "toolkit run --dataset words-language --model gru --param encoder.alphabet=auto",
                 "words-language", {"encoder.alphabet": "auto"}),
        Exercise("any CSV (here the names data as `names.csv`)",
                 "toolkit run --dataset csv --param path=names.csv --model gru",
                 "csv", {"dataset.path": str(names_csv)}),
        Exercise("any folder of `<label>.txt` (here the names folder)",
                 "toolkit run --dataset folder --param data_dir=PATH --model gru",
                 "folder", {"dataset.data_dir": str(names_folder)}),
    ]


def measure(exercise: Exercise, extra: dict[str, str], scratch: Path) -> dict[str, str]:
    started = time.perf_counter()
    result = toolkit.run(dataset=exercise.dataset, model="gru", params={**exercise.params, **extra},
                         seed=0, progress=False, output=scratch / exercise.dataset)
    majority = Counter(result.test_targets.tolist()).most_common(1)[0][1] / len(result.test_targets)
    print(f"  {exercise.dataset}: {result.test_accuracy():.1%} (baseline {majority:.1%}) in "
          f"{time.perf_counter() - started:.0f} s", flush=True)
    return {"exercise": exercise.label, "command": f"`{exercise.command}`",
            "test accuracy": f"{result.test_accuracy():.1%}", "baseline": f"{majority:.1%}"}


def table(rows: list[dict[str, str]]) -> str:
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    lines += ["| " + " | ".join(row[c] for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                        help="Extra parameter for every run (for a quick check; not with --write).")
    parser.add_argument("--write", type=Path, metavar="README", help="Write the table into this file.")
    args = parser.parse_args(argv)
    if args.write and args.param:
        parser.error("--write records the defaults' numbers; drop --param")
    extra = parse_assignments(args.param)
    before = load()
    print(f"Machine: {machine()}")
    print(f"Before: {before}")
    names = toolkit.load_dataset("names")
    names_folder = Path(toolkit.load_registry().dataset("names").location())
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        names_csv = scratch / "names.csv"
        pd.DataFrame({"text": names.texts, "label": names.labels()}).to_csv(names_csv, index=False)
        rows = [measure(e, extra, scratch) for e in exercises(names_csv, names_folder)]
    after = load()
    print(f"After: {after}")
    text = (f"On {machine()}, {time.strftime('%Y-%m-%d')}; {before} before, {after} after.\n\n"
            + table(rows))
    print("\n" + text)
    if args.write:
        write_between_markers(args.write, "exercises", text)
        print(f"\nWritten into {args.write}")


if __name__ == "__main__":
    main()
