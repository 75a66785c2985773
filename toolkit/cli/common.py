"""Helpers the command modules share: error handling, the registry of this invocation,
listing plugin parts, printing a report, loading a run to predict with.

Kept free of torch, pandas and matplotlib at import time, so the CLI starts fast.
"""

from __future__ import annotations

import errno
import os
import signal
import sys
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import click
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup

from toolkit.errors import ToolkitError
from toolkit.params import Param
from toolkit.registry import DISABLE_PREFIX, Registry, load_registry
from toolkit.runtimes import DEFAULT_RUNTIME
from toolkit.safe_files import shown
from toolkit.types import ModelSpec

if TYPE_CHECKING:  # pandas, sklearn and torch load only when a command needs them
    import pandas as pd

    from toolkit.evaluation import Report
    from toolkit.predictor import Predictor

DEBUG_ENV_VAR = "TOOLKIT_DEBUG"
#: The shell's status for a command stopped by Ctrl-C (128 + SIGINT).
INTERRUPTED_EXIT = 130
#: The shell's status for a command stopped by SIGTERM (128 + SIGTERM).
TERMINATED_EXIT = 128 + signal.SIGTERM


@contextmanager
def sigterm_unwinds() -> Iterator[None]:
    """SIGTERM raises SystemExit(143) inside the block, so `finally` blocks and `except
    BaseException` clean-ups (claimed folders, temporary files) run on the way out."""

    def _exit(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, _exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


#: Errors of writing to a stream that no retry fixes: a full disk or device, a closed pipe.
_STREAM_FULL = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EPIPE, errno.EIO)


@contextmanager
def writing_stdout() -> Iterator[None]:
    """Output printed inside the block, flushed at its end; stdout that cannot take it (a full
    disk, /dev/full, a closed pipe) is one line, not a traceback, and Python's own flush at
    exit is kept from failing a second time."""
    try:
        yield
        sys.stdout.flush()
    except OSError as exc:
        if exc.errno not in _STREAM_FULL:
            raise
        with suppress(OSError, ValueError):  # what is left in the buffer can go nowhere
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        fix = (
            "the program reading it stopped early" if exc.errno == errno.EPIPE
            else "free some space where it goes, or write to a file with --output"
        )
        raise ToolkitError(
            f"cannot write to standard output ({exc.strerror}); the output is incomplete: {fix}."
        ) from None


class StdoutConsole(Console):
    """rich's Console on stdout whose closed pipe is an OSError, as a print's is, which
    `writing_stdout` says in one line (rich's own exits with code 1 and says nothing)."""

    def on_broken_pipe(self) -> None:
        raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))


class ToolkitGroup(TyperGroup):
    """Turns a ToolkitError anywhere below into one line on stderr and exit code 2 (with the
    traceback first under --traceback or TOOLKIT_DEBUG=1)."""

    #: An error from loading plugins while the app was built: reported before anything else
    #: runs, --help included, since a refused plugin must not look loaded.
    startup_error: ToolkitError | None = None

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if ctx.parent is None and self.startup_error is not None:
            _report(ctx, self.startup_error, show_traceback="--traceback" in args)
        return super().parse_args(ctx, args)

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        """Click's own usage errors (an unknown command or option, a bad or missing value) as
        one line on stderr and exit code 2, as toolkit's errors are; typer prints a box."""
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except typer.Abort:
            typer.echo("Aborted!", err=True)
            sys.exit(1)
        except Exception as exc:
            if _is_click(exc, "UsageError"):
                message = " ".join(exc.format_message().split()).rstrip(".")
                command = exc.ctx.command_path if exc.ctx is not None else "toolkit"
                typer.echo(f"Error: {message}; see '{command} --help'.", err=True)
            elif _is_click(exc, "ClickException"):
                exc.show()
            else:
                raise
            sys.exit(exc.exit_code)
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            if ctx.parent is None:
                ctx.obj = load_registry(cli_plugins(ctx))  # before the command name is looked up
            try:
                with writing_stdout():  # every command's: a closed pipe or full disk is one line
                    return super().invoke(ctx)
            except Exception as exc:  # click's NoSuchOption, whichever click typer runs on
                option = getattr(exc, "option_name", None)
                if ctx.parent is None and option in ROOT_OPTIONS:
                    raise ToolkitError(_misplaced(option, getattr(exc, "ctx", None))) from None
                raise
        except ToolkitError as exc:
            _report(ctx, exc)

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        return _flags_without_placeholder(super().get_params(ctx))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:  # every command's own flags, plugins' commands' too
            _flags_without_placeholder(command.get_params(ctx))
        return command


#: The options of `toolkit` itself, which go before the command.
ROOT_OPTIONS = ("--plugin", "--disable", "--traceback")


def _misplaced(option: str, command_ctx: click.Context | None) -> str:
    """`toolkit run --plugin x.py`: say where the option goes instead of click's bare refusal."""
    path = command_ctx.command_path.split(" ", 1) if command_ctx is not None else []
    command = path[1] if len(path) == 2 else "COMMAND"
    value = {"--plugin": " PATH_OR_MODULE", "--disable": " NAME"}.get(option, "")
    return (
        f"{option} is an option of toolkit itself and goes before the command: "
        f"toolkit {option}{value} {command} ..."
    )


def say_cut(count: int, max_length: int) -> None:
    """The notice that `count` texts were cut to the run's train.max_length, if any were."""
    if count:
        were = "text was" if count == 1 else "texts were"
        typer.echo(
            f"{count:,} {were} longer than {max_length:,} characters and cut to that length, as at "
            "training.", err=True,
        )


def _is_click(exc: BaseException, name: str) -> bool:
    """Whether `exc` is click's exception `name` or a subclass of it, from whichever click typer
    runs on (typer 0.2x carries its own copy of click)."""
    return any(cls.__name__ == name for cls in type(exc).__mro__)


def _report(ctx: click.Context, exc: ToolkitError, show_traceback: bool = False) -> NoReturn:
    """One line on stderr and exit code 2 (the traceback first under --traceback)."""
    if show_traceback or debugging(ctx):
        traceback.print_exception(exc, file=sys.stderr)
    typer.echo(f"Error: {shown(exc)}", err=True)  # text from a file cannot drive the terminal
    raise typer.Exit(2) from None


def _flags_without_placeholder(params: list[click.Parameter]) -> list[click.Parameter]:
    """`params` with no value placeholder on the flags: typer's help shows a flag's type as
    `<bool>`, as if `--json` or `--help` took a value."""
    for param in params:
        if getattr(param, "is_bool_flag", False) and param.metavar is None:
            param.metavar = ""
    return params


def debugging(ctx: click.Context | None = None) -> bool:
    """True under --traceback or TOOLKIT_DEBUG=1."""
    root = ctx.find_root() if ctx is not None else None
    flag = bool(root.params.get("show_traceback")) if root is not None else False
    return flag or os.environ.get(DEBUG_ENV_VAR, "").strip().lower() in ("1", "true", "yes", "on")


def new_typer(**kwargs: Any) -> typer.Typer:
    """A Typer app with toolkit's settings (error handling, no rich tracebacks)."""
    kwargs.setdefault("no_args_is_help", False)
    kwargs.setdefault("cls", ToolkitGroup)
    return typer.Typer(
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
        **kwargs,
    )


def cli_plugins(ctx: click.Context) -> list[str]:
    """The root options --plugin and --disable as one plugin list (`no:NAME` disables)."""
    params = ctx.find_root().params
    return [*(params.get("plugin") or []), *(DISABLE_PREFIX + n for n in params.get("disable") or [])]


def registry_from(ctx: click.Context) -> Registry:
    """The registry the root command loaded for this invocation."""
    root = ctx.find_root()
    if not isinstance(root.obj, Registry):
        root.obj = load_registry(cli_plugins(root))
    return root.obj


def param_line(param: Param) -> str:
    """One parameter as the listing commands show it."""
    facts = [f"{param.type.__name__}, default {param.default!r}"]
    if param.choices:
        facts.append(f"one of {', '.join(map(str, param.choices))}")
    if param.range_text():
        facts.append(str(param.range_text()))
    if param.search is not None:
        values = param.search.values
        every = values is not None and set(values) == set(param.choices or (False, True))
        facts.append("tune tries each" if every else f"tune searches {param.search}")
    return f"    {param.name} ({'; '.join(facts)}): {param.help}"


def print_specs(kind: str, ctx: typer.Context) -> None:
    """Every registered plugin part of `kind` (dataset, encoder, model) with its parameters."""
    registry = registry_from(ctx)
    specs = registry.specs[kind]
    if not specs:
        typer.echo(f"No {kind}s are registered.")
        return
    for name in sorted(specs):
        spec = specs[name]
        owner = registry.owner(kind, name)
        typer.echo(f"{name}: {spec.help}")
        typer.echo(f"  plugin: {owner.name}")
        if kind == "model":
            assert isinstance(spec, ModelSpec)
            typer.echo(f"  consumes: {', '.join(spec.consumes)}")
            if spec.train_defaults:
                defaults = ", ".join(f"{k}={v!r}" for k, v in spec.train_defaults.items())
                typer.echo(f"  trainer defaults: {defaults}")
        if kind == "encoder":
            typer.echo(f"  produces: {spec.produces}")
        if spec.params:
            typer.echo("  parameters:")
            for param in spec.params:
                typer.echo(param_line(param))
        else:
            typer.echo("  parameters: none")


def _cell(value: object) -> str:
    if isinstance(value, float):
        if value != value:  # NaN is the only float unequal to itself
            return "–"
        return f"{value:,.0f}" if value.is_integer() and abs(value) >= 10 else f"{value:.3f}"
    return "–" if value is None else str(value)


def _plain(value: object) -> str:
    """Text from a file as a table cell: no rich markup, no control characters."""
    return escape(shown(value))


def frame_table(frame: pd.DataFrame, title: str) -> Table:
    """A DataFrame as a rich table, the index as the first column."""
    table = Table(title=title, title_justify="left")
    longest = max((len(str(i)) for i in frame.index), default=0)
    table.add_column(_plain(frame.index.name or ""), style="bold", no_wrap=True, min_width=min(longest, 16))
    for column in frame.columns:
        table.add_column(_plain(column), justify="right")
    for index, *row in frame.itertuples(name=None):  # iterrows would make an all-number row's ints floats
        table.add_row(_plain(index), *(_plain(_cell(v)) for v in row))
    return table


#: Short headers so the per-class table fits an 80-column terminal.
SHORT_HEADERS = {
    "support": "n", "correct": "right", "accuracy": "acc", "precision": "prec",
    "confused_with": "mistaken for", "confused_count": "times",
}


def print_report(report: Report, console: Console | None = None) -> None:
    """The overall numbers and the per-class table."""
    console = console or StdoutConsole()
    console.print(frame_table(report.summary, "Test results"))
    per_class = report.per_class.rename(columns=lambda c: SHORT_HEADERS.get(c, c.replace("_accuracy", "")))
    console.print(frame_table(per_class, "Per class"))


RunOption = Annotated[Path, typer.Option("--run", "-r", help="A run folder made by `toolkit run`.")]
RuntimeOption = Annotated[
    str, typer.Option(help="torch; numpy: the model's forward pass on numpy arrays, without torch (a linear "
                      "ngram and the recurrent rnn, gru, lstm, scratch-rnn, scratch-gru have one); auto: "
                      "numpy when the model has it, else torch; onnx: the run's ONNX export (`toolkit "
                      "export`) in onnxruntime.")
]


def load_predictor(
    ctx: typer.Context, run: Path, threads: int = 1, runtime: str = DEFAULT_RUNTIME
) -> Predictor:
    """The run folder `run` loaded for predicting, with the plugins of this invocation."""
    from toolkit.predictor import load_run

    registry_from(ctx)  # make sure --plugin plugins are loaded before the model is rebuilt
    return load_run(run, cli_plugins(ctx), threads, runtime)


def refuse_unreadable(unreadable: Sequence[str], normalization: Any) -> None:
    """One line for the first text of which the run's normalisation leaves nothing to read."""
    if unreadable:
        raise ToolkitError(
            f"nothing of '{shown(unreadable[0])}' is left after the run's normalisation "
            f"({normalization}); give a text with characters the model reads."
        )
