"""`toolkit predict` (names or a file) and `toolkit interactive`."""

from __future__ import annotations

import csv
import functools
import itertools
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TextIO

import typer

from toolkit.cli.common import (
    RunOption,
    RuntimeOption,
    cli_plugins,
    load_predictor,
    refuse_unreadable,
    registry_from,
    say_cut,
    sigterm_unwinds,
)
from toolkit.errors import ToolkitError
from toolkit.runtimes import DEFAULT_RUNTIME
from toolkit.safe_files import atomic_file, shown

if TYPE_CHECKING:  # torch and friends load only when a command needs them
    from toolkit.predictor import Prediction

#: Files smaller than this (1 MiB, about 100,000 names) are predicted without progress shown.
PROGRESS_FROM_BYTES = 1 << 20

TopOption = Annotated[int, typer.Option("--top", "-n", min=1, help="How many classes to show per name.")]
MinConfidenceOption = Annotated[
    float | None,
    typer.Option("--min-confidence", help="Answer \"unknown\" (abstain) when the top probability is below "
                 "this, between 0 and 1 (the run's report shows the accuracy each value buys)."),
]
CoverageOption = Annotated[
    float | None,
    typer.Option("--coverage", help="Also give each name's prediction set: the classes that hold the "
                 "true one with this probability, e.g. 0.9 (docs/calibration.md)."),
]
ThresholdOption = Annotated[
    float | None,
    typer.Option("--threshold", help="Multi-label runs: predict every class whose probability reaches "
                 "this (between 0 and 1) instead of the thresholds the run chose on validation."),
]


def _print(prediction: Prediction) -> None:
    typer.echo(f"> {shown(prediction.text)}")
    _print_guesses(prediction)


def _print_guesses(prediction: Prediction) -> None:
    if not prediction.guesses:
        typer.echo("(no prediction: nothing of it is left after normalisation)")
    if prediction.abstained:
        typer.echo("unknown (abstained: the top probability is below --min-confidence)")
    for guess in prediction.guesses:
        typer.echo(f"({guess.log_probability:.2f}) {shown(guess.label)}")
    if prediction.set is not None and prediction.guesses:
        members = ", ".join(f"{shown(g.label)} {g.probability:.2f}" for g in prediction.set)
        typer.echo(f"set: {members}")
    if prediction.labels is not None and prediction.guesses:
        members = ", ".join(f"{shown(g.label)} {g.probability:.2f}" for g in prediction.labels)
        typer.echo(f"labels: {members or '(none)'}")


def _options(
    min_confidence: float | None, coverage: float | None, threshold: float | None = None
) -> dict[str, float | None]:
    """The abstention, prediction-set and threshold options, refused in one line before any
    model loads (the threshold only when given: the batch path takes no threshold)."""
    from toolkit.calibration import check_coverage, check_min_confidence

    check_min_confidence(min_confidence)
    check_coverage(coverage)
    if threshold is not None and not 0 < threshold < 1:
        raise ToolkitError(f"--threshold must be between 0 and 1 (e.g. 0.5); got {threshold:g}.")
    options = {"min_confidence": min_confidence, "coverage": coverage}
    return options | ({"threshold": threshold} if threshold is not None else {})


def predict(
    ctx: typer.Context,
    run: RunOption,
    names: Annotated[list[str] | None, typer.Argument(help="Names to classify.")] = None,
    top: TopOption = 3,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON instead of text (with --input: JSON Lines, not CSV).")
    ] = False,
    input_file: Annotated[
        str | None,
        typer.Option(
            "--input", "-i",
            help="A text file (one item a line) or a CSV (with --column); with an --output folder, "
            "a glob pattern or folder of CSV, Parquet or text files (any fsspec path).",
        ),
    ] = None,
    column: Annotated[str | None, typer.Option(help="The CSV or Parquet column holding the texts.")] = None,
    output: Annotated[
        str | None,
        typer.Option(
            "--output", "-o",
            help="Where to write the CSV (default stdout); a folder (ending in /) gets one Parquet "
            "or CSV partition per input file.",
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Texts per forward pass.")] = 4096,
    threads: Annotated[
        int, typer.Option(min=1, help="CPU threads for torch (more helps only big models on idle cores).")
    ] = 1,
    engine: Annotated[
        str, typer.Option(help="local (this process) or dask (a cluster) for an --output folder.")
    ] = "local",
    scheduler: Annotated[
        str | None, typer.Option(help="With --engine dask: a running scheduler, e.g. tcp://host:8786.")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="With --engine dask and no --scheduler: local worker processes.")
    ] = None,
    output_format: Annotated[
        str, typer.Option("--format", help="Partitions in an --output folder: parquet or csv.")
    ] = "parquet",
    min_confidence: MinConfidenceOption = None,
    coverage: CoverageOption = None,
    runtime: RuntimeOption = DEFAULT_RUNTIME,
    threshold: ThresholdOption = None,
    raw_csv: Annotated[
        bool,
        typer.Option(
            "--raw-csv",
            help="Write CSV cells as they are: by default a text or class starting with = + - @, a tab "
            "or CR gets a leading ' so a spreadsheet shows it rather than running it as a formula.",
        ),
    ] = False,
) -> None:
    """Classify names given on the command line, or every line of a file (to a CSV), or many
    files into a folder of partitions (locally or on a Dask cluster; see docs/scale.md).
    SIGTERM stops it at once, leaving no partial output (exit 143)."""
    options = _options(min_confidence, coverage, threshold)
    with sigterm_unwinds():  # stdout is held to one line by ToolkitGroup (writing_stdout)
        _predict(ctx, run, names, top, as_json, input_file, column, output, batch_size, threads, engine,
                 scheduler, workers, output_format, raw_csv, options, runtime)


def _predict(
    ctx: typer.Context, run: Path, names: list[str] | None, top: int, as_json: bool,
    input_file: str | None, column: str | None, output: str | None, batch_size: int, threads: int,
    engine: str, scheduler: str | None, workers: int | None, output_format: str, raw_csv: bool,
    options: dict[str, float | None], runtime: str = DEFAULT_RUNTIME,
) -> None:
    if input_file is None and not names:
        raise ToolkitError("give names to classify, or --input FILE; see `toolkit predict --help`.")
    if input_file is not None and names:
        raise ToolkitError("give either names or --input FILE, not both.")
    if engine != "local" or (output is not None and _is_folder(output)):
        _predict_batch(ctx, run, input_file, column, output, top, as_json, batch_size, engine,
                       scheduler, workers, output_format, not raw_csv, options, runtime)
        return
    if scheduler is not None or workers is not None:
        raise ToolkitError("--scheduler and --workers belong to --engine dask.")
    if output is not None:
        _check_output_file(Path(output), run)
    if input_file is not None:
        _check_input_file(Path(input_file), column)
    predictor = load_predictor(ctx, run, threads, runtime)
    predictor.class_thresholds(options.get("threshold"))  # a threshold for a single-label run: one line
    top = min(top, len(predictor.classes))  # the CSV header has a column pair per guess
    if input_file is None:
        assert names is not None
        predictions = predictor.predict(names, top, **options)
        unreadable = [p.text for p in predictions if not p.guesses]
        refuse_unreadable(unreadable, (predictor.config.get("provenance") or {}).get("normalization"))
        if as_json:
            typer.echo(json.dumps([p.to_dict() for p in predictions], indent=2, ensure_ascii=False))
        else:
            for prediction in predictions:
                _print(prediction)
        say_cut(predictor.truncated, predictor.max_length)
        return
    from toolkit.allocator import keep_freed_memory
    from toolkit.prediction_output import write_csv, write_json_lines

    keep_freed_memory()  # this process predicts batch after batch: their memory is reused
    input_path = Path(input_file)
    batches = _with_progress(_read_batches(input_path, column, batch_size), input_path)
    rankings = predictor.rank_stream(batches, top, **options)
    if as_json:
        write = write_json_lines
    else:
        write = functools.partial(
            write_csv, top=top, abstain=options["min_confidence"] is not None,
            sets=options["coverage"] is not None, escape=not raw_csv,
            labels=predictor.multi_label is not None,
        )
    if output is None:
        write(rankings, out=sys.stdout)
    else:
        with atomic_file(Path(output), text=True) as out:
            count = write(rankings, out=out)
        typer.echo(f"Wrote {count:,} prediction{'s' if count != 1 else ''} to {output}", err=True)
    say_cut(predictor.truncated, predictor.max_length)


def _check_input_file(path: Path, column: str | None) -> None:
    """Refuse an --input that is missing or needs --column, before the model loads."""
    if path.is_dir():
        raise ToolkitError(f"--input '{shown(path)}' is a folder; give a file with a text a line (or a CSV "
                           "with --column).")
    if not path.is_file():
        raise ToolkitError(f"input file '{shown(path)}' does not exist.")
    if path.suffix.lower() == ".parquet":
        raise ToolkitError(
            f"'{shown(path)}' is a Parquet file, which the batch engine reads: give --output a folder "
            "(a trailing slash, e.g. --output preds/) and --column."
        )
    if column is None and path.suffix.lower() in (".csv", ".tsv"):
        header = _first_line(path)
        raise ToolkitError(
            f"'{shown(path)}' looks like a CSV file; name the text column with --column"
            + (f" (its first line: {shown(header)[:200]})." if header else ".")
        )


def _first_line(path: Path) -> str:
    """The file's first line (at most 4 KiB of it), or "" when it cannot be read as text."""
    try:
        with path.open(encoding="utf-8", errors="replace", newline="") as file:
            return file.readline(4096).strip()
    except OSError:
        return ""


def _check_output_file(output: Path, run: Path) -> None:
    """Refuse an --output that cannot be written, or that is one of the run's own files, before
    predicting anything."""
    from toolkit.rundir import OWN_FILES

    parent = output.parent
    if output.is_dir():
        raise ToolkitError(f"--output '{shown(output)}' is a folder; give a file name.")
    if output.name in OWN_FILES and parent.is_dir() and run.is_dir() and parent.samefile(run):
        raise ToolkitError(
            f"--output '{shown(output)}' is the run's own {output.name}; write the predictions elsewhere."
        )
    if not parent.is_dir():
        raise ToolkitError(
            f"the folder of --output '{shown(output)}' does not exist; create it or choose another path."
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ToolkitError(
            f"cannot write into '{shown(parent)}' (permission denied); choose another --output."
        )


def _is_folder(output: str) -> bool:
    """An --output folder for partitions: a path given with a trailing slash (an existing folder
    without one is refused as a file name, so a slip never writes into a folder)."""
    return output.endswith(("/", os.sep))


def _predict_batch(
    ctx: typer.Context, run: Path, input_pattern: str | None, column: str | None, output: str | None,
    top: int, as_json: bool, batch_size: int, engine: str, scheduler: str | None, workers: int | None,
    output_format: str, escape_csv: bool, options: dict[str, float | None], runtime: str = DEFAULT_RUNTIME,
) -> None:
    from toolkit.batch import predict_files

    if input_pattern is None or output is None:
        raise ToolkitError("batch prediction needs --input FILES and an --output folder.")
    if as_json:
        raise ToolkitError("--json is for names and single files; an --output folder gets Parquet or CSV.")
    if "threshold" in options:
        raise ToolkitError("--threshold is for names and single files; an --output folder uses the run's.")
    registry_from(ctx)
    result = predict_files(
        run, input_pattern, output, column=column, top=top, engine=engine, scheduler=scheduler,
        workers=workers, output_format=output_format, batch_size=batch_size,
        plugins=cli_plugins(ctx), escape_csv=escape_csv, runtime=runtime, **options,
    )
    on = f" on {result.workers} Dask worker{'s' if result.workers != 1 else ''}" if result.workers else ""
    typer.echo(
        f"Wrote {result.rows:,} prediction{'s' if result.rows != 1 else ''} in {len(result.files)} "
        f"{output_format} partition{'s' if len(result.files) != 1 else ''} to "
        f"{result.output}{on} ({result.seconds:.1f} s).", err=True,
    )


def _read_batches(path: Path, column: str | None, size: int) -> Iterator[list[str]]:
    """The texts of a file in lists of up to `size`, streamed: non-blank lines, or one CSV column."""
    from toolkit.predictor import batched

    _check_input_file(path, column)
    handle = path.open(encoding="utf-8-sig", newline="")  # an Excel CSV starts with a BOM
    if column is not None:
        reader = csv.DictReader(handle, delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
        try:
            reader.fieldnames  # noqa: B018 - reads the header, where a file that is not UTF-8 shows first
        except UnicodeDecodeError as exc:
            handle.close()
            raise ToolkitError(f"input file '{shown(path)}' is not UTF-8 ({exc.reason}).") from None
        if column not in (reader.fieldnames or []):
            handle.close()
            raise ToolkitError(
                f"'{shown(path)}' has no column '{shown(column)}'; its columns are "
                f"{shown(', '.join(reader.fieldnames or []))}."
            )
        texts = (row[column] for row in reader if (row[column] or "").strip())
        return _close_after(batched(texts, size), handle)
    return _close_after(_line_batches(handle, size), handle)


def _line_batches(handle: TextIO, size: int) -> Iterator[list[str]]:
    """The non-blank lines of `handle`, without their ends, in lists of about `size`."""
    while lines := list(itertools.islice(handle, size)):
        batch = [line.rstrip("\r\n") for line in lines if line.strip()]
        if batch:
            yield batch


def _close_after(batches: Iterator[list[str]], handle: TextIO) -> Iterator[list[str]]:
    try:
        yield from batches
    except UnicodeDecodeError as exc:
        raise ToolkitError(f"input file '{handle.name}' is not UTF-8 ({exc.reason}).") from None
    finally:
        handle.close()


def _with_progress(batches: Iterator[list[str]], path: Path) -> Iterator[list[str]]:
    """Progress through a large file, by bytes read: a bar when stderr is a terminal, else (a
    log) a plain line at every tenth."""
    size = path.stat().st_size
    if size < PROGRESS_FROM_BYTES:
        yield from batches
        return
    if not sys.stderr.isatty():
        yield from _with_progress_lines(batches, path, size)
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(transient=True, console=Console(stderr=True)) as progress:
        task = progress.add_task(f"Predicting {path.name}", total=size)
        for batch in batches:
            progress.advance(task, _bytes(batch))
            yield batch


def _bytes(batch: list[str]) -> int:
    """The bytes of a batch's lines in the file (UTF-8, a line end each)."""
    return len("\n".join(batch).encode("utf-8")) + 1


def _with_progress_lines(batches: Iterator[list[str]], path: Path, size: int) -> Iterator[list[str]]:
    started, read, tenth, count = time.perf_counter(), 0, 1, 0
    for batch in batches:
        read += _bytes(batch)
        count += len(batch)
        while tenth < 10 and read * 10 >= size * tenth:
            typer.echo(f"Predicting {path.name}: {tenth * 10}% read ({count:,} texts, "
                       f"{time.perf_counter() - started:.0f} s)", err=True)
            tenth += 1
        yield batch


def interactive(
    ctx: typer.Context, run: RunOption, top: TopOption = 3, runtime: RuntimeOption = DEFAULT_RUNTIME
) -> None:
    """Type a text, see the guesses; an empty line or Ctrl-D quits."""
    predictor = load_predictor(ctx, run, runtime=runtime)
    typer.echo(f"{len(predictor.classes)} classes. Type a text (empty line or Ctrl-D to quit).")
    prompt = "> " if sys.stdin.isatty() else ""
    while True:
        try:
            text = input(prompt)
        except (EOFError, KeyboardInterrupt):
            break
        if not text.strip():
            break
        if not prompt:  # input piped in: show what each block of guesses answers
            typer.echo(f"> {shown(text)}")
        cut_before = predictor.truncated
        _print_guesses(predictor.predict([text], top)[0])
        say_cut(predictor.truncated - cut_before, predictor.max_length)


def add_to(app: typer.Typer) -> None:
    app.command("predict")(predict)
    app.command("interactive")(interactive)
