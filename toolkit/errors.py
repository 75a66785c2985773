"""User-facing errors: one line that says what is wrong and how to fix it."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class ToolkitError(Exception):
    """A mistake the user can fix (bad name, bad parameter, bad file).

    The CLI prints it as one line and exits with code 2, without a traceback.
    """


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return ' Did you mean 'x'?' for the closest choice, or '' when none is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" Did you mean '{close[0]}'?" if close else ""


def unknown_name(kind: str, name: str, available: Iterable[str]) -> ToolkitError:
    """The error for an unknown dataset/model/encoder/parameter name."""
    names = sorted(available)
    listing = ", ".join(names) if names else "(none)"
    return ToolkitError(f"unknown {kind} '{name}'.{did_you_mean(name, names)} Available: {listing}.")
