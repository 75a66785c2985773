"""The Jinja2 environment of toolkit's HTML pages (toolkit/templates/web): autoescaping on,
so nothing from a run folder or a request can inject markup; control characters in text
(newlines, terminal escapes) are written as visible escapes such as `\n`, so text from a run
folder cannot start a line of its own in the page; undefined names are errors."""

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
        finalize=_visible,
    )
    env.filters["percent"] = lambda v: "–" if v is None else f"{100 * v:.1f}%"
    env.filters["score"] = lambda v: "–" if v is None else f"{v:.3f}"
    env.filters["count"] = lambda v: f"{int(v):,}"
    return env


def _visible(value: object) -> object:
    """Plain text with its control characters made visible; markup and numbers as they are."""
    from markupsafe import Markup

    from toolkit.safe_files import shown

    return shown(value) if isinstance(value, str) and not isinstance(value, Markup) else value


def render(template: str, **context: object) -> str:
    """Render one of the page templates."""
    return environment().get_template(template).render(**context)
