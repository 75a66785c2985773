"""`toolkit runs [DIR]`: every run in a folder as one table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def runs(
    folder: Annotated[
        Path, typer.Argument(help="The folder holding run folders.", show_default=True)
    ] = Path("runs"),
    sort: Annotated[
        str | None, typer.Option("--sort", metavar="COLUMN", help="Order by this column (default time).")
    ] = None,
    descending: Annotated[bool, typer.Option("--descending", help="Largest first.")] = False,
    where: Annotated[
        list[str] | None,
        typer.Option(
            "--where", metavar="KEY=VALUE",
            help="Keep the runs whose column KEY is VALUE, e.g. model=gru or train.epochs=4 (repeatable).",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the rows as JSON, every parameter too.")
    ] = False,
) -> None:
    """List the runs in a folder: dataset, model, the parameters that differ, test accuracy and
    macro-F1, seconds, interrupted or stopped early, size. Folders that are not runs are skipped."""
    from toolkit.run_index import runs_table

    table = runs_table(folder, where or [], sort, descending)
    if as_json:
        typer.echo(table.frame.to_json(orient="records", indent=2, force_ascii=False))
        return
    if table.frame.empty:
        typer.echo(f"No runs in {folder}" + (" match." if where else "."))
    else:
        typer.echo(table.shown().to_string(index=False))
    if table.skipped:
        typer.echo(f"Skipped {table.skipped} folder(s) in {folder} that are not runs.")


def add_to(app: typer.Typer) -> None:
    app.command("runs")(runs)
