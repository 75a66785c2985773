"""Prediction speed side by side: `toolkit predict` per built-in model, fastText and scikit-learn.

One run, the same names for every system: `--names N` (default 1,000,000) surnames drawn with
replacement from the names data with a fixed seed, top 3 classes, one thread each, every system
in a process of its own:

- `toolkit predict --run RUN --input names.txt --output out.csv` for each built-in model (a run
  trained for one epoch on the names data: speed does not depend on how well it learned); the
  time is the whole command: start-up, loading the run, reading, predicting, writing the CSV;
  and the same with `--runtime onnx` (the run exported by `toolkit export` first, not timed), and
  with `--runtime numpy` for a model that has a forward pass on numpy arrays (a linear `ngram`,
  the recurrent `rnn`, `gru`, `lstm`, `scratch-rnn`, `scratch-gru`, `cnn`, the default `ensemble`:
  no torch imported; what `toolkit predict`'s default runtime, auto, picks for it);
  the other rows ask for `--runtime torch`;
- fastText (`fasttext-numpy2`, the `toolkit[bench]` extra) trained on the same training split,
  each name one token of character 1-5-grams (its best setting on names in bench/accuracy.py):
  Python's `model.predict(list, k=3)` on the names already in memory;
- scikit-learn: TF-IDF character 1-5-grams (char_wb, sublinear tf) + LinearSVC on the same split:
  `decision_function(vectorizer.transform(names))` and an argsort, the names in memory.

A second table is the arithmetic floor of `rnn`, `gru`, `lstm` and `scratch-gru`: the hidden
state's matrix products and the gates' tanh per name at the float32 rates numpy reaches here on
one thread for their shapes.

Prints the table with the ratio to fastText and the load average before and after; `--write FILE`
puts it in FILE's "Prediction speed" section. Usage:

    python bench/predict_speed.py --write docs/benchmarks.md
    python bench/predict_speed.py --names 100000 --models ngram,scratch-rnn

More systems are more entries in `SYSTEMS` (a function giving a row), more tables more entries
in `TABLES`.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accuracy import FASTTEXT_SETTINGS, builtin_models, fasttext_line, fit_fasttext, the_split  # noqa: E402
from predict_bench import names_file  # noqa: E402
from scale_common import publish  # noqa: E402
from train_bench import load, machine, markdown  # noqa: E402

SECTION = "## Prediction speed side by side"
BENCH = Path(__file__).resolve()
#: Every child runs on one thread, whatever its library's default.
ONE_THREAD = {name: "1" for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
FASTTEXT = "one token, char 1-5, 50 epochs"
FORMATS = {"names_per_s": ",.0f", "seconds": ".2f", "x_fasttext": ".2f"}
#: What a toolkit row's label adds for its `--runtime`.
RUNTIME_LABELS = {
    "torch": "", "onnx": ", onnxruntime", "numpy": ", numpy runtime (no torch: what the default, auto, uses)",
}


@dataclass
class Setup:
    """What every system is measured on: the names file and the training split."""

    folder: Path
    names: Path
    count: int
    seed: int
    repeats: int
    epochs: int
    split: Any = None
    notes: list[str] = field(default_factory=list)
    reference: float = 0.0  # fastText's names/s, once measured

    def training_split(self) -> Any:
        if self.split is None:
            self.split = the_split("names", {}, self.seed)
        return self.split


def timed(command: list[str], repeats: int) -> float:
    """The median wall seconds of `command` (a child process on one thread) over `repeats`; a
    child that prints JSON with "seconds" times itself."""
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **ONE_THREAD})
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"{shlex.join(command)} failed:\n{done.stderr[-3000:]}")
        lines = done.stdout.strip().splitlines()
        if lines and lines[-1].startswith("{"):
            seconds = json.loads(lines[-1])["seconds"]
        runs.append(seconds)
    return statistics.median(runs)


def row(system: str, timed_part: str, setup: Setup, seconds: float) -> dict[str, Any]:
    return {"system": system, "timed": timed_part, "seconds": seconds, "names_per_s": setup.count / seconds}


# -- the systems ----------------------------------------------------------------------------


def train_names_run(model: str, run: Path, seed: int, epochs: int) -> None:
    """`toolkit run` of `model` on the names data into `run`, on one thread."""
    train = [sys.executable, "-m", "toolkit", "run", "-d", "names", "-m", model, "--seed", str(seed),
             "-p", f"train.epochs={epochs}", "-p", "train.threads=1", "-o", str(run)]
    subprocess.run(train, check=True, capture_output=True, env={**os.environ, **ONE_THREAD})


def toolkit_row(model: str, runtime: str = "torch") -> Callable[[Setup], dict[str, Any]]:
    def measure(setup: Setup) -> dict[str, Any]:
        run = setup.folder / f"run-{model}"
        env = {**os.environ, **ONE_THREAD}
        if not run.is_dir():
            train_names_run(model, run, setup.seed, setup.epochs)
        if runtime == "onnx" and not (run / "model.onnx").is_file():
            subprocess.run([sys.executable, "-m", "toolkit", "export", "--run", str(run)], check=True,
                           capture_output=True, env=env)
        command = [sys.executable, "-m", "toolkit", "predict", "--run", str(run), "--input", str(setup.names),
                   "--output", str(setup.folder / "out.csv"), "--top", "3", "--threads", "1",
                   "--runtime", runtime]
        torch_asked = runtime == "torch" and has_numpy_runtime(model)  # not what its default uses
        label = f"toolkit predict, `{model}`"
        label += ", `--runtime torch`" if torch_asked else RUNTIME_LABELS[runtime]
        return row(label, "the whole command", setup, timed(command, setup.repeats))

    return measure


def onnx_missing() -> str | None:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return ("onnx/onnxruntime are not installed (pip install -e '.[onnx]'): the onnxruntime rows "
                "are missing.")
    return None


def fasttext_row(setup: Setup) -> dict[str, Any]:
    options = dict(FASTTEXT_SETTINGS[FASTTEXT], epoch=5)  # a few epochs: speed does not depend on them
    model, _ = fit_fasttext(setup.training_split(), setup.seed, options)
    path = setup.folder / "fasttext.bin"
    model.save_model(str(path))
    seconds = timed(child_command("fasttext", path, setup), setup.repeats)
    return row("fastText, Python `predict(list, k=3)`", "predict on names in memory", setup, seconds)


def sklearn_row(setup: Setup) -> dict[str, Any]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.svm import LinearSVC

    split = setup.training_split()
    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 5), sublinear_tf=True)
    classifier = LinearSVC(C=1.0, random_state=setup.seed).fit(vectorizer.fit_transform(split.train.texts),
                                                                 split.train.targets)
    path = setup.folder / "sklearn.pickle"
    path.write_bytes(pickle.dumps((vectorizer, classifier)))
    seconds = timed(child_command("sklearn", path, setup), setup.repeats)
    return row("scikit-learn TF-IDF char 1-5 + LinearSVC", "transform, decision_function, argsort", setup,
               seconds)


def child_command(system: str, model: Path, setup: Setup) -> list[str]:
    return [sys.executable, str(BENCH), "--child", system, str(model), str(setup.names)]


def fasttext_missing() -> str | None:
    try:
        import fasttext  # noqa: F401
    except ImportError:
        return "fastText is not installed (pip install -e '.[bench]'): its row and the ratios are missing."
    return None


def has_numpy_runtime(model: str) -> bool:
    """Whether `model` with its default parameters has a forward pass on numpy arrays."""
    import toolkit

    spec = toolkit.load_registry().model(model)
    if spec.array_factory is None:
        return False
    from toolkit.params import Section, resolve
    from toolkit.plugins.onehot import OneHotEncoder

    encoder = OneHotEncoder("auto")
    encoder.fit(["a b"])
    params = resolve([Section("model", f"model '{model}'", spec.params)], {})["model"]
    return spec.build_arrays(vocab_size=encoder.vocab_size, num_classes=2, params=params,
                             encoder=encoder) is not None


def systems(models: Sequence[str]) -> list[Callable[[Setup], dict[str, Any]]]:
    """The rows of the prediction table, in order: fastText first (the ratios' reference)."""
    runtimes = ("torch",) if onnx_missing() else ("torch", "onnx")
    toolkit_rows = [
        toolkit_row(model, runtime) for model in models
        for runtime in (*runtimes, *(("numpy",) if has_numpy_runtime(model) else ()))
    ]
    return [fasttext_row, *toolkit_rows, sklearn_row]


def prediction_table(setup: Setup, models: Sequence[str]) -> str:
    missing = fasttext_missing()
    if onnx_missing():
        setup.notes.append(str(onnx_missing()))
    rows = []
    for measure in systems(models):
        if measure is fasttext_row and missing:
            setup.notes.append(missing)
            continue
        rows.append(measure(setup))
        print(f"  {rows[-1]['system']}: {rows[-1]['names_per_s']:,.0f} names/s ({load()})", flush=True)
    frame = pd.DataFrame(rows)
    reference = frame.loc[frame["system"].str.startswith("fastText"), "names_per_s"]
    setup.reference = float(reference.iloc[0]) if len(reference) else 0.0
    frame["x_fasttext"] = frame["names_per_s"] / setup.reference if setup.reference else float("nan")
    return markdown(frame[["system", "timed", "names_per_s", "x_fasttext", "seconds"]], FORMATS)


#: Per step and direction of each recurrent model: the gates (each `hidden` wide) its hidden
#: state's products make, and the values passed through tanh (the sigmoids are computed as tanh).
RECURRENT = {"rnn": (1, 1), "gru": (3, 3), "lstm": (4, 5), "scratch-gru": (3, 3)}
#: The first characters whose states the numpy passes read from tables (torch_rnn_numpy.py,
#: scratch_numpy.py).
PREFIX_STEPS = 2


def float32_rates(size: int, gates: int) -> tuple[float, float]:
    """Multiply-adds per second of a chunk's hidden state (1,024 texts) times a (size, gates x
    size) matrix, and tanh values per second over the product, float32 on one thread: medians
    of five rounds of 200 calls."""
    import numpy as np
    from threadpoolctl import threadpool_limits

    state = np.random.default_rng(0).random((1024, size), dtype=np.float32)
    weights = np.random.default_rng(1).random((size, gates * size), dtype=np.float32)
    out = np.empty((1024, gates * size), dtype=np.float32)
    rates = []
    with threadpool_limits(1):
        for work, count in ((lambda: np.matmul(state, weights, out=out), state.size * weights.shape[1]),
                            (lambda: np.tanh(out, out=out), out.size)):
            times = []
            for _ in range(5):
                started = time.perf_counter()
                for _ in range(200):
                    work()
                times.append((time.perf_counter() - started) / 200)
            rates.append(count / statistics.median(times))
    return rates[0], rates[1]


def floor_table(setup: Setup, models: Sequence[str]) -> str:
    """What the recurrent models' arithmetic alone costs here, at the float32 rates numpy reaches
    on one thread: at every character after a text's second, per direction, the hidden state
    times a (hidden, gates x hidden) matrix, and one tanh per gate value. The input's product is
    a table, and so is the state after the first two characters (a row per pair of characters:
    `PREFIX_STEPS`); no table removes the rest, as a state depends on the whole text read so
    far, and a table of three characters has a row per triple (185,193 for the names' 57
    characters, 190 MB for the default `gru`)."""
    import numpy as np

    from toolkit.plugins.scratch import ScratchGRUConfig
    from toolkit.plugins.torch_rnn import TorchRNNConfig

    lengths = np.array([len(name) for name in read_names(str(setup.names))])
    multiplied = float(np.maximum(lengths - PREFIX_STEPS, 0).mean())  # characters whose step multiplies
    rows = []
    for model in [m for m in models if m in RECURRENT]:
        gates, functions = RECURRENT[model]
        if model == "scratch-gru":
            size, directions, layers = ScratchGRUConfig().hidden_size, 1, 1
        else:
            config = TorchRNNConfig()
            size, directions, layers = config.hidden_size, 2 if config.bidirectional else 1, config.num_layers
        product_rate, tanh_rate = float32_rates(size, gates)
        steps = multiplied * layers * directions
        products, tanhs = steps * size * gates * size, steps * functions * size
        floor = 1 / (products / product_rate + tanhs / tanh_rate)
        shape = f"hidden {size}, {directions} direction(s), {layers} layer(s)"
        rows.append({"model": f"`{model}` (defaults: {shape})",
                     "multiply_adds_per_name": products, "tanh_per_name": tanhs,
                     "float32_gmac_per_s": product_rate / 1e9, "tanh_g_per_s": tanh_rate / 1e9,
                     "floor_names_per_s": floor})
        if setup.reference:
            rows[-1]["floor_x_fasttext"] = floor / setup.reference
    if not rows:
        return "(no recurrent model asked for)"
    print(f"  arithmetic floor: {rows} ({load()})", flush=True)
    return (f"Mean characters per drawn name: {lengths.mean():.2f}, of which {multiplied:.2f} multiply the "
            f"hidden state (the states after the first {PREFIX_STEPS} are table rows). A model cannot "
            "predict faster than `floor_names_per_s` on one thread here in float32, before reading, "
            "encoding, the rest of its elementwise arithmetic, the classifier or writing:\n\n"
            + markdown(pd.DataFrame(rows), {"multiply_adds_per_name": ",.0f", "tanh_per_name": ",.0f",
                                           "float32_gmac_per_s": ".1f", "tanh_g_per_s": ".2f",
                                           "floor_names_per_s": ",.0f", "floor_x_fasttext": ".2f"}))


#: The tables of the section: a heading and the function that measures it.
TABLES: list[tuple[str, Callable[[Setup, Sequence[str]], str]]] = [
    ("Prediction, top 3, names per second", prediction_table),
    ("The recurrent models' hidden-state products and gate functions alone (their arithmetic floor)",
     floor_table),
]


# -- the children: each system's prediction timed in a process of its own -------------------


def read_names(path: str) -> list[str]:
    with open(path, encoding="utf-8") as lines:
        return [line.rstrip("\n") for line in lines]


def child(system: str, model_path: str, names_path: str) -> None:
    names = read_names(names_path)
    if system == "fasttext":
        import fasttext

        model = fasttext.load_model(model_path)
        texts = [fasttext_line(name, FASTTEXT_SETTINGS[FASTTEXT]["one_token"]) for name in names]
        started = time.perf_counter()
        model.predict(texts, k=3)
    else:
        import numpy as np

        vectorizer, classifier = pickle.loads(Path(model_path).read_bytes())
        started = time.perf_counter()
        scores = classifier.decision_function(vectorizer.transform(names))
        np.argsort(-scores, axis=1)[:, :3]
    print(json.dumps({"seconds": time.perf_counter() - started}))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", type=int, default=1_000_000, help="How many names to predict.")
    parser.add_argument("--models", help="Comma-separated toolkit models (default: every built-in).")
    parser.add_argument("--seed", type=int, default=0, help="Draws the names, splits and trains.")
    parser.add_argument("--repeats", type=int, default=1, help="Runs per system; the median is kept.")
    parser.add_argument("--epochs", type=int, default=1, help="Training epochs of each toolkit run.")
    parser.add_argument("--write", type=Path, metavar="FILE", help="Put the section in FILE (Markdown).")
    parser.add_argument("--child", nargs=3, metavar=("SYSTEM", "MODEL", "NAMES"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child)
        return
    models = args.models.split(",") if args.models else builtin_models()
    print(f"Machine: {machine()}")
    before = load()
    print(f"Before: {before}")
    with tempfile.TemporaryDirectory(prefix="predict-speed-") as scratch:
        folder = Path(scratch)
        setup = Setup(folder, names_file(folder / "names.txt", args.names, args.seed), args.names, args.seed,
                      args.repeats, args.epochs)
        tables = [(heading, measure(setup, models)) for heading, measure in TABLES]
    after = load()
    print(f"After: {after}")
    command = shlex.join(["python", "bench/predict_speed.py", *(sys.argv[1:] if argv is None else argv)])
    text = (
        f"{SECTION} (`bench/predict_speed.py`)\n\n"
        f"`{command}` on {machine()}, on {time.strftime('%Y-%m-%d %H:%M')}; {before} before, {after} after "
        "(the machine may be shared: the ratios, from one run, are what to read).\n\n"
        f"{args.names:,} surnames drawn with replacement from the names data (seed {args.seed}), top 3, one "
        f"thread each, each system in a process of its own, the median of {args.repeats} run(s). "
        "toolkit's time is the whole `toolkit predict --run RUN --input names.txt --output out.csv` command "
        "(start-up, loading, reading, predicting, writing); fastText's and scikit-learn's are their "
        f"prediction calls on names already in memory. Runs trained {args.epochs} epoch(s) on the names "
        "data; fastText and scikit-learn on the same training split.\n\n"
        + "".join(f"{note}\n\n" for note in setup.notes)
        + "".join(f"{heading}:\n\n{table}\n\n" for heading, table in tables)
    )
    publish(text, SECTION, args.write)


if __name__ == "__main__":
    main()
