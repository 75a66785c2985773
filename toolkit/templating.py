"""The Jinja2 environment of toolkit's HTML pages (toolkit/templates/web): autoescaping on,
so nothing from a run folder or a request can inject markup; undefined names are errors."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import jinja2


@cache
def environment() -> jinja2.Environment:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("toolkit", "templates/web"),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
    )
    env.filters["percent"] = lambda v: "–" if v is None else f"{100 * v:.1f}%"
    env.filters["score"] = lambda v: "–" if v is None else f"{v:.3f}"
    env.filters["count"] = lambda v: f"{int(v):,}"
    return env


def render(template: str, **context: object) -> str:
    """Render one of the page templates."""
    return environment().get_template(template).render(**context)
