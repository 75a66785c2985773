"""`toolkit report RUN_DIR` and `toolkit compare RUN_DIR...`, and the end-of-run summary."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from toolkit.safe_files import shown

if TYPE_CHECKING:  # pandas, sklearn and matplotlib load only when a command needs them
    import pandas as pd

    from toolkit.evaluation import Report


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
    for index, row in frame.iterrows():
        table.add_row(_plain(index), *(_plain(_cell(v)) for v in row))
    return table


#: Short headers so the per-class table fits an 80-column terminal.
SHORT_HEADERS = {
    "support": "n", "correct": "right", "accuracy": "acc", "precision": "prec",
    "confused_with": "mistaken for", "confused_count": "times",
}


def print_report(report: Report, console: Console | None = None) -> None:
    """The overall numbers and the per-class table."""
    console = console or Console()
    console.print(frame_table(report.summary, "Test results"))
    per_class = report.per_class.rename(columns=lambda c: SHORT_HEADERS.get(c, c.replace("_accuracy", "")))
    console.print(frame_table(per_class, "Per class"))


def report(run_dir: Annotated[Path, typer.Argument(help="A run folder made by `toolkit run`.")]) -> None:
    """Re-render a run's plots and HTML report, and show its results."""
    from toolkit.rendering import rerender
    from toolkit.rundir import read_run

    html = rerender(run_dir)
    print_report(read_run(run_dir).report)
    typer.echo(f"Report: {html}")


def compare(
    run_dirs: Annotated[list[Path], typer.Argument(help="Two or more run folders.")],
    html: Annotated[
        Path | None,
        typer.Option("--html", help="Also write the comparison as a self-contained HTML page here."),
    ] = None,
) -> None:
    """Put runs side by side: overall metrics, and per-class accuracy with a column per run."""
    from toolkit.compare import compare_runs

    summary, per_class = compare_runs(run_dirs)
    console = Console()
    console.print(frame_table(summary, "Overall"))
    console.print(frame_table(per_class, "Per-class accuracy"))
    if html is not None:
        from toolkit.rendering import write_compare

        typer.echo(f"Comparison page: {write_compare(run_dirs, html)}")


def add_to(app: typer.Typer) -> None:
    app.command("report")(report)
    app.command("compare")(compare)
