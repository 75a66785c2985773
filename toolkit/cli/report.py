"""`toolkit report RUN_DIR` and `toolkit compare RUN_DIR...`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from toolkit.cli.common import StdoutConsole, frame_table, print_report


def report(run_dir: Annotated[Path, typer.Argument(help="A run folder made by `toolkit run`.")]) -> None:
    """Re-render a run's plots and HTML report, and show its results."""
    from toolkit.model_size import size_line
    from toolkit.rendering import rerender
    from toolkit.rundir import read_run

    html = rerender(run_dir)
    print_report(read_run(run_dir).report)
    typer.echo(f"Model: {size_line(run_dir)}")
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
    page = None
    if html is not None:  # first: a page that cannot be written is refused before any table prints
        from toolkit.rendering import write_compare

        page = write_compare(run_dirs, html)
    console = StdoutConsole()
    console.print(frame_table(summary, "Overall"))
    console.print(frame_table(per_class, "Per-class accuracy"))
    if page is not None:
        typer.echo(f"Comparison page: {page}")


def add_to(app: typer.Typer) -> None:
    app.command("report")(report)
    app.command("compare")(compare)
