"""Batch prediction over many files: in this process (`local`) or on a Dask cluster (`dask`).

The input is one or more files (a glob pattern or a folder; any fsspec path: local, s3://,
gs://, https://..., compressed ones too): CSV or TSV (a `column` of texts), Parquet (a
`column`), or text files (one text a line). Each input file is one partition; blank texts are
skipped. Each partition becomes one output file, `part-00000.parquet` (or `.csv`) and on,
in the order of the sorted input paths, with the columns `input`, then `class_1`,
`log_probability_1` ... `class_N`, `log_probability_N` (natural logarithms, most likely first);
with `min_confidence` an `abstained` column (true: the class cells are empty), with `coverage`
a `set` column (the prediction set's classes as a JSON list, most likely first); for a
multi-label run `labels` (the predicted set, `a|b`) and `label_probabilities` (`0.91|0.62`).

Both engines run the same function on the same partitions, so their outputs are identical
row for row; it predicts through `Predictor.rank` (`toolkit.ranking`), as every prediction
does. The `dask` engine reads the input as a Dask dataframe (`dask.dataframe.from_map`, one
partition per file), predicts partition by partition on the workers of a `LocalCluster`
(or of the scheduler at `scheduler`, e.g. tcp://host:8786), and writes the partitions from the
workers. The run folder's files (a few hundred kilobytes: JSON and safetensors) travel with the
tasks and each worker process loads the model once, on its first partition; the workers need
toolkit and the run's plugins installed, not the run folder. Dask is imported only here.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolkit.csv_cells import safe_cell
from toolkit.errors import ToolkitError
from toolkit.limits import check_processes
from toolkit.runtimes import DEFAULT_RUNTIME, check_runtime
from toolkit.safe_files import file_mode, shown

if TYPE_CHECKING:
    import pandas as pd

    from toolkit.predictor import Predictor

ENGINES = ("local", "dask")
FORMATS = ("parquet", "csv")
#: Seconds to wait for a Dask scheduler to answer before giving up.
CONNECT_TIMEOUT = 10
#: At most this many worker processes for a LocalCluster.
MAX_WORKERS = 64
CSV_SUFFIXES = (".csv", ".tsv")
PARQUET_SUFFIXES = (".parquet", ".parq", ".pq")
COMPRESSIONS = (".gz", ".bz2", ".xz", ".zst")
INPUT = "input"


@dataclass(frozen=True)
class BatchResult:
    """What a batch prediction wrote."""

    output: str
    files: list[str]  # the output partitions, in input order
    rows: int
    seconds: float
    engine: str
    workers: int | None = None  # Dask workers that took part


def predict_files(
    run: str | Path,
    input: str | Sequence[str],
    output: str | Path,
    column: str | None = None,
    top: int = 3,
    engine: str = "local",
    scheduler: str | None = None,
    workers: int | None = None,
    output_format: str = "parquet",
    batch_size: int = 4096,
    plugins: Sequence[str] = (),
    min_confidence: float | None = None,
    coverage: float | None = None,
    escape_csv: bool = True,
    runtime: str = DEFAULT_RUNTIME,
) -> BatchResult:
    """Predict every text of the `input` files with the run folder `run`, writing one
    partition per input file into the folder `output` (see the module doc). CSV partitions
    get texts and class names made safe for spreadsheets (`toolkit.csv_cells`) unless
    `escape_csv` is false. `runtime` as `load_run` takes it: "onnx" through the run's ONNX export in
    onnxruntime (`toolkit export`), "numpy" the model's forward pass on numpy arrays, on every worker."""
    if engine not in ENGINES:
        raise ToolkitError(f"unknown engine '{engine}'; use one of {', '.join(ENGINES)}.")
    if output_format not in FORMATS:
        raise ToolkitError(f"unknown output format '{output_format}'; use one of {', '.join(FORMATS)}.")
    if engine == "local" and (scheduler is not None or workers is not None):
        raise ToolkitError("--scheduler and --workers belong to --engine dask.")
    if scheduler is not None and workers is not None:
        raise ToolkitError("give --scheduler (a running cluster) or --workers (a local one), not both.")
    if workers is not None and not 1 <= workers <= MAX_WORKERS:
        raise ToolkitError(f"--workers must be between 1 and {MAX_WORKERS}; got {workers}.")
    if workers is not None:
        check_processes("--workers", workers)
    if top < 1 or batch_size < 1:
        raise ToolkitError("top and batch size must be at least 1.")
    from toolkit.calibration import check_coverage, check_min_confidence

    check_min_confidence(min_confidence)  # before any input is read
    check_coverage(coverage)
    paths = input_paths(input)
    for path in paths:
        _check_column(path, column)
    run_files = read_run_files(run, runtime)
    predictor = _cached_predictor(run_files, tuple(plugins), runtime)  # a bad run fails here, before any work
    top = min(top, len(predictor.classes))
    predictor.checked_threshold(min_confidence, coverage)  # a run without conformal scores fails here
    target = _Output(str(output))  # claimed before any work: a second prediction into it is refused now
    started = time.perf_counter()
    job = _Job(run_files, tuple(plugins), column, top, batch_size, output_format, min_confidence, coverage,
               escape_csv, predictor.multi_label is not None, runtime)
    try:
        if engine == "local":
            names = [target.write(i, job(path), output_format, escape_csv) for i, path in enumerate(paths)]
            rows, used = sum(n for _, n in names), None
            written = [name for name, _ in names]
        else:
            written, rows, used = _on_dask(job, paths, target, scheduler, workers)
        target.commit()
    except OSError as exc:  # a full disk, a folder made read-only meanwhile (Dask re-raises workers' too)
        target.discard()
        raise cannot_write(str(output), exc) from None
    except BaseException:
        target.discard()
        raise
    return BatchResult(str(output), written, rows, time.perf_counter() - started, engine, used)


# -- input -------------------------------------------------------------------------------


def input_paths(input: str | Sequence[str]) -> list[str]:
    """The files of a glob pattern, a folder (its files, not hidden ones) or a list of paths,
    sorted; any fsspec URL works."""
    import fsspec

    patterns = [input] if isinstance(input, str) else list(input)
    found: list[str] = []
    for pattern in patterns:
        fs, _, matches = fsspec.get_fs_token_paths(pattern)
        protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
        for match in matches:
            if fs.isdir(match):
                found += [p for p in fs.find(match) if not Path(p).name.startswith(".")]
            else:
                found.append(match)
        found = [p if protocol in ("file", "local") or "://" in p else f"{protocol}://{p}" for p in found]
    if not found:
        raise ToolkitError(f"no input files match {input!r}; check the path or pattern.")
    return sorted(dict.fromkeys(found))


def _kind(path: str) -> str:
    name = path.lower()
    for suffix in COMPRESSIONS:
        name = name.removesuffix(suffix)
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    return "text"


def _check_column(path: str, column: str | None) -> None:
    kind = _kind(path)
    if kind != "text" and column is None:
        raise ToolkitError(f"'{path}' is a {kind.upper()} file; name the text column with --column.")
    if kind == "text" and column is not None:
        raise ToolkitError(f"'{path}' is a text file (one text a line); --column is for CSV and Parquet.")


def read_texts(path: str, column: str | None) -> pd.DataFrame:
    """One input file as a one-column frame (`input`), blank texts dropped."""
    import fsspec
    import pandas as pd

    kind = _kind(path)
    try:
        if kind == "parquet":
            with fsspec.open(path, "rb") as handle:
                frame = pd.read_parquet(handle, columns=[column])
            texts = frame[column]
        elif kind == "csv":
            with fsspec.open(path, "rt", encoding="utf-8", newline="", compression="infer") as handle:
                frame = pd.read_csv(
                    handle, usecols=[column], dtype=str, keep_default_na=False,
                    sep="\t" if ".tsv" in path.lower() else ",",
                )
            texts = frame[column]
        else:
            with fsspec.open(path, "rt", encoding="utf-8", newline="", compression="infer") as handle:
                texts = pd.Series([line.rstrip("\r\n") for line in handle], dtype=object)
    except UnicodeDecodeError as exc:
        raise ToolkitError(f"input file '{path}' is not UTF-8 ({exc.reason}).") from None
    except (KeyError, ValueError) as exc:  # pyarrow's errors are ValueErrors too
        reason = " ".join(str(exc).split())[:300] or type(exc).__name__
        raise ToolkitError(f"cannot read column {column!r} of '{path}' as {kind} ({reason}).") from None
    except FileNotFoundError:
        raise ToolkitError(f"input file '{path}' does not exist.") from None
    texts = texts.astype(object)
    keep = texts.map(lambda t: isinstance(t, str) and bool(t.strip()))
    return pd.DataFrame({INPUT: texts[keep].to_numpy(dtype=object)})


# -- prediction, the same in both engines ------------------------------------------------


def read_run_files(run: str | Path, runtime: str = DEFAULT_RUNTIME) -> dict[str, bytes]:
    """The run folder's files a prediction needs, as bytes (checked when loaded); with
    `runtime="onnx"` its ONNX export too (refused in one line, naming the run, without one)."""
    from toolkit.predictor import NEEDED, OPTIONAL
    from toolkit.rundir import open_run

    check_runtime(runtime)
    folder, _ = open_run(run, NEEDED)
    present = [name for name in OPTIONAL if (folder / name).is_file()]
    files = {name: (folder / name).read_bytes() for name in (*NEEDED, *present)}
    if runtime == "onnx":
        from toolkit.onnx_runtime import ONNX_FILE, read_export

        files[ONNX_FILE] = read_export(folder)  # none, or no onnxruntime: one line naming this run
    return files


_PREDICTORS: dict[tuple[str, tuple[str, ...], str], Predictor] = {}
#: How often this process loaded a run (the tests check: once per worker process).
LOADS = {"count": 0}


def _cached_predictor(
    run_files: dict[str, bytes], plugins: tuple[str, ...], runtime: str = DEFAULT_RUNTIME
) -> Predictor:
    """The run loaded once per process: from a private temporary copy of its files."""
    from toolkit.predictor import load_run

    digest = hashlib.sha256(b"".join(hashlib.sha256(run_files[n]).digest() for n in sorted(run_files)))
    key = (digest.hexdigest(), plugins, runtime)
    if key not in _PREDICTORS:
        folder = Path(tempfile.mkdtemp(prefix="toolkit-run-"))
        try:
            for name, content in run_files.items():
                (folder / name).write_bytes(content)
            _PREDICTORS[key] = load_run(folder, plugins, threads=1, runtime=runtime)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        LOADS["count"] += 1
    return _PREDICTORS[key]


def predict_frame(
    predictor: Predictor, frame: pd.DataFrame, top: int, batch_size: int,
    min_confidence: float | None = None, coverage: float | None = None, label_sets: bool = False,
) -> pd.DataFrame:
    """`frame[INPUT]`'s top classes and log-probabilities, predicted in consecutive batches of
    `batch_size` texts (so a partition gives the same numbers whichever engine predicts it). A
    text with nothing left after the run's normalisation gets no classes (empty, NaN), as in
    `toolkit predict`. `label_sets` (a multi-label run): also `labels`, the predicted set as
    `a|b`, and `label_probabilities`, theirs in the same order (toolkit.multilabel)."""
    import numpy as np
    import pandas as pd

    from toolkit.multilabel import label_set_cells

    texts = frame[INPUT].tolist()
    cells = np.full((len(texts), 2), "", dtype=object)
    labels = np.full((len(texts), top), None, dtype=object)
    logs = np.full((len(texts), top), np.nan, dtype=np.float64)
    abstained = np.zeros(len(texts), dtype=bool)
    sets = np.full(len(texts), "[]", dtype=object)
    options = {"min_confidence": min_confidence, "coverage": coverage}
    for start in range(0, len(texts), batch_size):
        ranking = predictor.rank(texts[start:start + batch_size], top, **options)
        rows = slice(start, start + len(ranking))
        answered = ranking.answered[:, None]
        labels[rows] = np.where(answered, ranking.labels(), None)
        logs[rows] = np.where(answered, ranking.log_probabilities, np.nan)
        if ranking.abstained is not None:
            abstained[rows] = ranking.abstained
        if ranking.set_order is not None:
            members = ranking.sets()
            sets[rows] = [json.dumps([label for label, _ in found], ensure_ascii=False) for found in members]
        if ranking.label_order is not None:
            cells[rows] = [label_set_cells(found) for found in ranking.label_sets()]
    columns: dict[str, Any] = {INPUT: np.asarray(texts, dtype=object)}
    for rank in range(top):
        columns[f"class_{rank + 1}"] = labels[:, rank]
        columns[f"log_probability_{rank + 1}"] = logs[:, rank]
    if min_confidence is not None:
        columns["abstained"] = abstained
    if coverage is not None:
        columns["set"] = sets
    if label_sets:
        columns["labels"], columns["label_probabilities"] = cells[:, 0], cells[:, 1]
    return pd.DataFrame(columns)


@dataclass(frozen=True)
class _Job:
    """Read one input file and predict it: what every partition runs, in either engine."""

    run_files: dict[str, bytes]
    plugins: tuple[str, ...]
    column: str | None
    top: int
    batch_size: int
    output_format: str
    min_confidence: float | None = None
    coverage: float | None = None
    escape_csv: bool = True
    label_sets: bool = False  # a multi-label run: the labels and label_probabilities columns
    runtime: str = DEFAULT_RUNTIME

    def __call__(self, path: str) -> pd.DataFrame:
        return self.predict(read_texts(path, self.column))

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        predictor = _cached_predictor(self.run_files, self.plugins, self.runtime)
        return predict_frame(predictor, frame, self.top, self.batch_size, self.min_confidence, self.coverage,
                             self.label_sets)

    def meta(self) -> pd.DataFrame:
        import pandas as pd

        columns: dict[str, Any] = {INPUT: pd.Series(dtype=object)}
        for rank in range(1, self.top + 1):
            columns[f"class_{rank}"] = pd.Series(dtype=object)
            columns[f"log_probability_{rank}"] = pd.Series(dtype="float64")
        if self.min_confidence is not None:
            columns["abstained"] = pd.Series(dtype=bool)
        if self.coverage is not None:
            columns["set"] = pd.Series(dtype=object)
        if self.label_sets:
            columns["labels"] = columns["label_probabilities"] = pd.Series(dtype=object)
        return pd.DataFrame(columns)


# -- output ------------------------------------------------------------------------------


class _Output:
    """The output folder. A local one is claimed before any work, as run folders are (created,
    or an empty one taken, with a lock file in it: a second prediction into it is refused at
    once); the partitions are written in a private folder inside it and moved into place at
    the end, so a failed or stopped prediction leaves nothing behind. A remote fsspec URL has
    no atomic rename: its partitions are written in place."""

    def __init__(self, output: str) -> None:
        self.final = output
        self.remote = "://" in output and not output.startswith("file://")
        self.moved: list[Path] = []
        if self.remote:
            self.folder = output.rstrip("/")
            return
        from toolkit.rundir import claim_run_dir

        self.claim = claim_run_dir(Path(output.removeprefix("file://")))
        try:
            self.staging = Path(tempfile.mkdtemp(prefix=".partial-", dir=self.claim.path))
        except OSError as exc:
            self.claim.release()
            raise cannot_write(output, exc) from None
        self.folder = str(self.staging)

    @staticmethod
    def name(index: int, output_format: str) -> str:
        return f"part-{index:05d}.{output_format}"

    def write(
        self, index: int, frame: pd.DataFrame, output_format: str, escape_csv: bool = True
    ) -> tuple[str, int]:
        path = f"{self.folder}/{self.name(index, output_format)}"
        write_partition(frame, path, output_format, escape_csv)
        return self.name(index, output_format), len(frame)

    def commit(self) -> None:
        if self.remote:
            return
        for name in sorted(os.listdir(self.staging)):
            os.chmod(self.staging / name, file_mode())  # mkstemp-style private files get the usual mode
            os.replace(self.staging / name, self.claim.path / name)
            self.moved.append(self.claim.path / name)
        self.staging.rmdir()
        self.claim.finish()

    def discard(self) -> None:
        if self.remote:
            return
        shutil.rmtree(self.staging, ignore_errors=True)
        for path in self.moved:  # all or nothing
            path.unlink(missing_ok=True)
        self.claim.release()


def cannot_write(output: str, exc: OSError) -> ToolkitError:
    """One line for an output folder that could not be written (a full disk, no permission)."""
    reason = exc.strerror or " ".join(str(exc).split())[:200] or type(exc).__name__
    return ToolkitError(
        f"cannot write the predictions into '{shown(output)}' ({reason}); nothing was left there. "
        "Free some space or choose a writable --output."
    )


def write_partition(frame: pd.DataFrame, path: str, output_format: str, escape_csv: bool = True) -> None:
    """One partition as Parquet or CSV; a CSV's text columns (inputs, classes) made safe for
    spreadsheets unless `escape_csv` is false."""
    import fsspec
    import numpy as np

    with fsspec.open(path, "wb") as handle:
        if output_format == "parquet":
            frame.to_parquet(handle, index=False)
        else:
            if escape_csv:
                from pandas.api.types import is_numeric_dtype

                texts = [c for c in frame if not is_numeric_dtype(frame[c])]
                frame = frame.assign(**{c: frame[c].map(safe_cell) for c in texts})
            # true and false, as `toolkit predict --output FILE.csv` writes them (pandas: True, False)
            flags = [c for c in frame if frame[c].dtype == bool]
            frame = frame.assign(**{c: np.where(frame[c], "true", "false") for c in flags})
            # CRLF, as RFC 4180 and `toolkit predict` write: pandas quotes a text holding a CR
            # only when CR is part of the line terminator, and a bare CR splits the row for readers.
            frame.to_csv(handle, index=False, encoding="utf-8", lineterminator="\r\n")


# -- the Dask engine ---------------------------------------------------------------------


def _on_dask(
    job: _Job, paths: list[str], target: _Output, scheduler: str | None, workers: int | None
) -> tuple[list[str], int, int]:
    try:
        import dask.dataframe as dd
        from distributed import Client
    except ModuleNotFoundError:
        raise ToolkitError(
            "--engine dask needs Dask: pip install -e '.[dask]' in toolkit's folder."
        ) from None
    import dask

    cluster = None
    try:
        if scheduler is None:
            cluster = local_cluster(workers or 1)
            client = Client(cluster)
        else:
            client = _connect(Client, scheduler)
        with client, dask.config.set({"dataframe.convert-string": False}):
            used = len(client.nthreads())
            texts = dd.from_map(read_texts, paths, column=job.column, enforce_metadata=False,
                                meta=_text_meta())
            predictions = texts.map_partitions(job.predict, meta=job.meta(), enforce_metadata=False)
            written = predictions.map_partitions(
                _write_indexed, target.folder, job.output_format, job.escape_csv, meta=(None, "int64"),
                align_dataframes=False,
            )
            counts = written.compute()
    finally:
        if cluster is not None:
            cluster.close()
    names = [_Output.name(i, job.output_format) for i in range(len(paths))]
    return names, int(sum(counts)), used


def local_cluster(workers: int) -> Any:
    """A Dask LocalCluster of `workers` single-threaded worker processes for prediction.

    Dask starts workers with MALLOC_TRIM_THRESHOLD_=65536, so glibc hands torch's large
    buffers back to the kernel after every batch and takes them again with page faults:
    measured here, a GRU's forward pass ran about a quarter slower that way and the Dask
    engine predicted half as fast as the local one. These workers keep glibc's default.
    """
    import dask
    from distributed import LocalCluster

    with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):
        # The scheduler's HTTP endpoints on a free port of this machine: Dask's default, 8787,
        # may be taken by another cluster, and Dask then warns on stderr.
        return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                            dashboard_address=None, silence_logs=50,
                            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"})


def _text_meta() -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame({INPUT: pd.Series(dtype=object)})


def _write_indexed(
    frame: pd.DataFrame, folder: str, output_format: str, escape_csv: bool, partition_info: Any = None
):
    """Write one partition as part-<its number> (Dask passes `partition_info`)."""
    import pandas as pd

    index = partition_info["number"] if partition_info else 0
    write_partition(frame, f"{folder}/{_Output.name(index, output_format)}", output_format, escape_csv)
    return pd.Series([len(frame)], dtype="int64")


def _connect(client_class: Any, address: str) -> Any:
    """A client of the scheduler at `address`, or one line saying why not. The scheduler is
    asked who it is first, within the timeout: Dask's client waits for ever on a server that
    accepts the connection and stays silent, and fails with any error on one that answers
    garbage."""
    import asyncio

    try:
        asyncio.run(asyncio.wait_for(_identify_scheduler(address), CONNECT_TIMEOUT))
        return client_class(address, timeout=CONNECT_TIMEOUT)
    except Exception as exc:  # whatever garbage broke: struct.error, msgpack's, ValueError...
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        if isinstance(exc, TimeoutError):
            reason = f"no answer: {reason}" if str(exc) else "it did not answer"
        raise ToolkitError(
            f"cannot reach the Dask scheduler at '{address}' within {CONNECT_TIMEOUT} s ({reason}); "
            "check the address (e.g. tcp://host:8786) and that `dask scheduler` is running there."
        ) from None


async def _identify_scheduler(address: str) -> None:
    """Connect to `address` and ask for its identity, as Dask's own RPC does; refuse what does
    not answer as a Dask scheduler."""
    from distributed.comm import connect

    comm = await connect(address, timeout=CONNECT_TIMEOUT)
    try:
        await comm.write({"op": "identity", "reply": True})
        answer = await comm.read()
    finally:
        comm.abort()
    if not (isinstance(answer, dict) and answer.get("type") == "Scheduler"):
        kind = answer.get("type") if isinstance(answer, dict) else type(answer).__name__
        raise ValueError(f"it answered as {shown(kind)[:60]}, not as a Dask scheduler")
