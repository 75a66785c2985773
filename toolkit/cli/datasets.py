"""`toolkit datasets show|download|path`."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from toolkit.cache import cache_dir
from toolkit.cli import registry_from
from toolkit.cli.listing import datasets_app
from toolkit.describe import describe_dataset
from toolkit.errors import ToolkitError
from toolkit.params import Section, parse_assignments, resolve

ParamOption = Annotated[
    list[str] | None,
    typer.Option("--param", "-p", metavar="KEY=VALUE", help="Set a dataset parameter (repeatable)."),
]


def _dataset_params(ctx: typer.Context, name: str, param: list[str] | None) -> tuple[Any, dict]:
    spec = registry_from(ctx).dataset(name)
    section = Section("dataset", f"dataset '{name}'", spec.params)
    return spec, resolve([section], parse_assignments(param or []))["dataset"]


@datasets_app.command("show")
def show(ctx: typer.Context, name: str, param: ParamOption = None) -> None:
    """Per class: lines, distinct texts, texts shared with other classes; dropped lines."""
    spec, params = _dataset_params(ctx, name, param)
    data = spec.load(**params)
    table = describe_dataset(data)
    typer.echo(f"{name}: {len(data.classes)} classes, {len(data)} lines")
    typer.echo(f"source: {data.provenance.get('source', 'unknown')}")
    for key in ("normalization",):
        if key in data.provenance:
            typer.echo(f"{key}: {data.provenance[key]}")
    typer.echo("")
    typer.echo(table.to_string())
    dropped = data.provenance.get("dropped") or {}
    typer.echo("")
    if dropped:
        typer.echo("dropped: " + ", ".join(f"{count} {reason}" for reason, count in dropped.items()))
    else:
        typer.echo("dropped: none")


@datasets_app.command("download")
def download(ctx: typer.Context, name: str, param: ParamOption = None) -> None:
    """Fetch a dataset's data into the cache ahead of time."""
    spec, params = _dataset_params(ctx, name, param)
    if spec.download is None:
        raise ToolkitError(f"dataset '{name}' has nothing to download; it reads local or installed data.")
    typer.echo(str(spec.download(**params)))


@datasets_app.command("path")
def path(ctx: typer.Context, name: Annotated[str | None, typer.Argument()] = None,
         param: ParamOption = None) -> None:
    """Where data is cached; with NAME, where that dataset reads its data from."""
    if name is None:
        typer.echo(str(cache_dir()))
        return
    spec, params = _dataset_params(ctx, name, param)
    if spec.location is None:
        raise ToolkitError(f"dataset '{name}' keeps no data of its own in the cache.")
    typer.echo(str(spec.location(**params)))
