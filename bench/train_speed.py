"""Training speed and model size: `ngram` against fastText on the names training split.

One process, one thread each, the same texts: `ngram` trained by `toolkit.run` (the code path
of `toolkit run --dataset names --model ngram`, its defaults, seed 0), once with each training
engine (`train.engine=compiled`, what the default `auto` uses when numba is installed, and
`train.engine=torch`, the torch step: the change's baseline in the same run), and fastText supervised
on that run's training split, with the setting bench/accuracy.py chose for names on validation
(each name one token of character 1-5-grams, 50 epochs). The two alternate, `--repeats` times,
and the medians are compared, so the machine's load weighs on both alike.

- `texts/s (training steps)`: `ngram`'s median epoch throughput as the trainer measures it
  (`names_per_sec`: the optimisation steps, no validation pass); fastText's is epochs times
  training texts over the seconds of `train_supervised` (reading its input file included);
- `texts/s (whole training)`: texts trained on over the fit's wall time (`RunResult.train_seconds`),
  which also counts fitting the encoder, encoding, precomputing n-gram ids and the validation
  pass after every epoch (before 2026-12-06 22:00 only the validation passes);
- sizes: `ngram`'s parameters and the bytes of the run's model.safetensors
  (`toolkit.model_size`, what `toolkit report` shows), fastText's `.bin` and the `.ftz` its
  `quantize` writes (default options, and its recipe for a small model: qnorm, retrain,
  cutoff 100,000 rows), with each model's test accuracy.

Usage:

    python bench/train_speed.py --write docs/benchmarks.md
    python bench/train_speed.py --repeats 1 --fasttext-epochs 2 --param train.epochs=1   # a quick check
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from accuracy import FASTTEXT_SETTINGS, fasttext_line, fasttext_predict, scores
from predict_bench import write_section
from train_bench import load, machine, markdown

import toolkit
from toolkit.model_size import human_bytes, model_size
from toolkit.params import parse_assignments
from toolkit.splits import Split

SECTION = "## Training speed and model size: `ngram` and fastText"
FASTTEXT_SETTING = "one token, char 1-5, 50 epochs"
#: fastText's own recipe for a small model (its docs' `quantize -qnorm -retrain -cutoff 100000`).
SMALL_QUANTIZE = {"qnorm": True, "retrain": True, "cutoff": 100_000}
SMALL_OPTIONS = "qnorm, retrain, cutoff 100,000"


#: `ngram`'s systems: their label and `train.engine`.
ENGINES = {"ngram (compiled step)": "compiled", "ngram (torch step)": "torch"}


def run_ngram(params: dict[str, Any], folder: Path) -> tuple[toolkit.RunResult, dict[str, Any]]:
    result = toolkit.run(dataset="names", model="ngram", params=params, seed=0, progress=False,
                         output=folder)
    history = result.history
    kept = history.loc[history["epoch"] == result.best_epoch, "val_acc"]
    return result, {
        "steps_texts_per_s": float(history["names_per_sec"].median()),
        "whole_texts_per_s": float(history["examples"].iloc[-1]) / result.train_seconds,
        "train_s": result.train_seconds, "epochs": len(history),
        "val_accuracy": float(kept.iloc[0]), "test_accuracy": result.test_accuracy(),
    }


def fasttext_file(split: Split, path: Path) -> Path:
    pairs = zip(split.train.texts, split.train.targets, strict=True)
    path.write_text("".join(f"__label__{t} {fasttext_line(x, True)}\n" for x, t in pairs), encoding="utf-8")
    return path


def run_fasttext(split: Split, train_file: Path, epochs: int) -> tuple[Any, dict[str, Any]]:
    import fasttext

    setting = {k: v for k, v in FASTTEXT_SETTINGS[FASTTEXT_SETTING].items() if k != "one_token"}
    setting["epoch"] = epochs
    started = time.perf_counter()
    model = fasttext.train_supervised(str(train_file), minCount=1, thread=1, seed=0, verbose=0, **setting)
    seconds = time.perf_counter() - started
    rate = epochs * len(split.train) / seconds
    return model, {"steps_texts_per_s": rate, "whole_texts_per_s": rate, "train_s": seconds, "epochs": epochs,
                   "val_accuracy": accuracy(model, split.val), "test_accuracy": accuracy(model, split.test)}


def accuracy(model: Any, data: Any) -> float:
    return scores(data.targets, fasttext_predict(model, data.texts, True))["accuracy"]


def sizes(result: toolkit.RunResult, fasttext_model: Any, split: Split, train_file: Path,
          folder: Path) -> list[dict[str, Any]]:
    """The size table's rows: `ngram`'s run, fastText's .bin, and its quantized .ftz."""
    ngram = model_size(result.run_dir)
    rows = [{"model": "ngram (model.safetensors)", "parameters": ngram.parameters,
             "file": human_bytes(ngram.weights_bytes), "bytes": ngram.weights_bytes,
             "test_accuracy": result.test_accuracy()}]
    matrix_rows, dim = fasttext_model.get_input_matrix().shape
    parameters = matrix_rows * dim + fasttext_model.get_output_matrix().size
    fasttext_model.save_model(str(folder / "model.bin"))
    rows.append(file_row("fastText (.bin)", parameters, folder / "model.bin", fasttext_model, split))
    fasttext_model.quantize(input=str(train_file), thread=1, verbose=0)
    fasttext_model.save_model(str(folder / "model.ftz"))
    rows.append(file_row("fastText quantized (.ftz)", None, folder / "model.ftz", fasttext_model, split))
    import fasttext

    pruned = fasttext.load_model(str(folder / "model.bin"))
    pruned.quantize(input=str(train_file), thread=1, verbose=0, **SMALL_QUANTIZE)
    pruned.save_model(str(folder / "pruned.ftz"))
    name = f"fastText quantized (.ftz), {SMALL_OPTIONS}"
    rows.append(file_row(name, None, folder / "pruned.ftz", pruned, split))
    return rows


def file_row(name: str, parameters: int | None, path: Path, model: Any, split: Split) -> dict[str, Any]:
    size = path.stat().st_size
    return {"model": name, "parameters": parameters, "file": human_bytes(size), "bytes": size,
            "test_accuracy": accuracy(model, split.test)}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                        help="A parameter of the ngram runs, as in `toolkit run --param`.")
    parser.add_argument("--fasttext-epochs", type=int, default=FASTTEXT_SETTINGS[FASTTEXT_SETTING]["epoch"])
    parser.add_argument("--write", type=Path, metavar="FILE", help="Put the results in FILE (Markdown).")
    args = parser.parse_args(argv)
    params = {"train.threads": 1, **parse_assignments(args.param)}

    print(f"Machine: {machine()}")
    before = load()
    print(f"Before: {before}")
    rows: list[dict[str, Any]] = []
    size_rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="train-speed-") as scratch:
        folder = Path(scratch)
        train_file = None
        for repeat in range(args.repeats):
            measured = []
            for system, engine in ENGINES.items():
                run_folder = folder / f"run-{repeat}-{engine}"
                result, ngram = run_ngram({**params, "train.engine": engine}, run_folder)
                measured.append((system, ngram))
                if engine == "compiled":
                    compiled = result
            if train_file is None:
                train_file = fasttext_file(result.split, folder / "train.txt")
            fasttext_model, fast = run_fasttext(result.split, train_file, args.fasttext_epochs)
            for system, row in (*measured, ("fastText", fast)):
                rows.append({"system": system, "repeat": repeat + 1, **row, "load": load()})
                print(f"  {system} {repeat + 1}: {row['steps_texts_per_s']:,.0f} texts/s, "
                      f"test accuracy {row['test_accuracy']:.4f} ({rows[-1]['load']})", flush=True)
            if not size_rows:
                size_rows = sizes(compiled, fasttext_model, result.split, train_file, folder)
        train_size = len(result.split.train)
    after = load()
    print(f"After: {after}")
    text = report(rows, size_rows, train_size, args, before, after)
    print("\n" + text)
    if args.write is not None:
        write_section(args.write, text, SECTION)
        print(f"Wrote the section to {args.write}")


def report(rows: list[dict[str, Any]], size_rows: list[dict[str, Any]], train_size: int,
           args: argparse.Namespace, before: str, after: str) -> str:
    import pandas as pd

    runs = pd.DataFrame(rows)
    medians = runs.groupby("system", sort=False)[
        ["steps_texts_per_s", "whole_texts_per_s", "train_s", "val_accuracy", "test_accuracy"]
    ].median().reset_index()
    steps = dict(zip(medians["system"], medians["steps_texts_per_s"], strict=True))
    compiled, torch_step = (steps[system] for system in ENGINES)
    formats = {"steps_texts_per_s": ",.0f", "whole_texts_per_s": ",.0f", "train_s": ".2f",
               "val_accuracy": ".4f", "test_accuracy": ".4f", "parameters": ",.0f", "bytes": ",.0f"}
    command = " ".join(["python bench/train_speed.py", *_argv(args)])
    return "\n".join([
        f"{SECTION} (`bench/train_speed.py`)", "",
        f"`{command}`: {train_size:,} training texts (the names training split of seed 0), one thread "
        f"each, {args.repeats} alternating repeats, medians. {machine()}. Before: {before}; after: {after}.",
        "", markdown(medians, formats), "",
        f"`ngram`'s training steps run at **{compiled / steps['fastText']:.2f}x** fastText's texts/s "
        f"here with the compiled step (the default with numba installed) and "
        f"{torch_step / steps['fastText']:.2f}x with the torch step: the compiled step is "
        f"{compiled / torch_step:.2f}x the torch step's rate.", "",
        "Every repeat:", "", markdown(runs, formats), "",
        "Model size on the same data (`ngram`: the first repeat's run, as `toolkit report` shows it; "
        "fastText: the first repeat's model, saved, then `quantize`d):", "",
        markdown(pd.DataFrame(size_rows), formats), "",
    ])


def _argv(args: argparse.Namespace) -> list[str]:
    shown = [f"--repeats {args.repeats}"] + [f"--param {p}" for p in args.param]
    if args.fasttext_epochs != FASTTEXT_SETTINGS[FASTTEXT_SETTING]["epoch"]:
        shown.append(f"--fasttext-epochs {args.fasttext_epochs}")
    return shown + ([f"--write {args.write}"] if args.write else [])


if __name__ == "__main__":
    main()
