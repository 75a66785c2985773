"""`toolkit datasets` and its `show|download|path`: list, inspect, fetch and locate datasets."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from toolkit.cache import cache_dir
from toolkit.cli.common import cli_plugins, new_typer, print_specs, registry_from, sigterm_unwinds
from toolkit.contracts import loaded_dataset
from toolkit.errors import ToolkitError
from toolkit.loading import dataset_params
from toolkit.params import parse_assignments
from toolkit.types import DatasetSpec

datasets_app = new_typer(help="List, inspect and download datasets.")

ParamOption = Annotated[
    list[str] | None,
    typer.Option(
        "--param", "-p", metavar="KEY=VALUE",
        help="Set a dataset parameter, e.g. normalization=raw (repeatable).",
    ),
]


@datasets_app.callback(invoke_without_command=True)
def datasets(ctx: typer.Context) -> None:
    """List the datasets, with their parameters."""
    if ctx.invoked_subcommand is None:
        print_specs("dataset", ctx)


def _resolve(ctx: typer.Context, name: str, param: list[str] | None) -> tuple[DatasetSpec, dict[str, Any]]:
    return dataset_params(name, parse_assignments(param or []), cli_plugins(ctx))


@datasets_app.command("show")
def show(ctx: typer.Context, name: str, param: ParamOption = None) -> None:
    """Per class: lines, distinct texts, texts shared with other classes; dropped lines."""
    spec, params = _resolve(ctx, name, param)
    from toolkit.describe import (  # pandas loads after the parameters are checked
        describe_dataset,
        frequent_label_pairs,
        label_cardinality,
    )

    data = loaded_dataset(registry_from(ctx).label("dataset", name), spec, params)
    provenance = data.provenance
    typer.echo(f"{name}: {len(data.classes)} classes, {len(data)} lines")
    typer.echo(f"source: {provenance.get('source', 'unknown')}")
    if "license" in provenance:
        typer.echo(f"licence: {provenance['license']}, {provenance.get('origin', 'origin not recorded')}")
    if "downloaded_from" in provenance:
        typer.echo(f"downloaded from: {provenance['downloaded_from']}")
    if "normalization" in provenance:
        typer.echo(f"normalization: {provenance['normalization']}")
    typer.echo("")
    typer.echo(describe_dataset(data).to_string())
    typer.echo("")
    dropped = provenance.get("dropped") or {}
    kept = ", ".join(f"{count} {reason}" for reason, count in dropped.items())
    typer.echo(f"dropped: {kept or 'none'}")
    pairs = frequent_label_pairs(data)
    if data.multi_label or len(pairs):
        kind = "multi-label" if data.multi_label else "single-label, texts under several classes merged"
        typer.echo(f"label cardinality: {label_cardinality(data):.3f} classes per distinct text ({kind})")
        shown = ", ".join(f"{row.first}+{row.second} {row.texts}" for row in pairs.itertuples())
        typer.echo(f"most frequent label pairs (texts): {shown or 'none'}")


@datasets_app.command("download")
def download(ctx: typer.Context, name: str, param: ParamOption = None) -> None:
    """Fetch a dataset's data into the cache now (again, if it is already there)."""
    spec, params = _resolve(ctx, name, param)
    if spec.download is None:
        raise ToolkitError(f"dataset '{name}' has nothing to download; it reads local or installed data.")
    with sigterm_unwinds():  # a stopped download leaves no temporary files in the cache
        folder = spec.download(**params)
    typer.echo(str(folder))


@datasets_app.command("path")
def path(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="A dataset; without it, the cache folder.")] = None,
    param: ParamOption = None,
) -> None:
    """Where downloaded data is cached; with NAME, where that dataset reads its data from."""
    if name is None:
        typer.echo(str(cache_dir()))
        return
    spec, params = _resolve(ctx, name, param)
    if spec.location is None:
        raise ToolkitError(f"dataset '{name}' keeps no data of its own in the cache.")
    typer.echo(str(spec.location(**params)))


def add_to(app: typer.Typer) -> None:
    app.add_typer(datasets_app, name="datasets")
