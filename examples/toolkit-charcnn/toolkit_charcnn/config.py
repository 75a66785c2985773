"""charcnn's parameters, declared once: type, default, help, range and how to tune them.

toolkit imports this module with the plugin, for every command, so it must not import
torch; the model that reads these parameters is in `model.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

import toolkit


@dataclass(frozen=True)
class CharCNNConfig(toolkit.Config):
    """charcnn's parameters, each declared once: type, default, help, range, how to tune it."""

    owner = "model 'charcnn'"
    embedding_dim: int = toolkit.param_field(
        48, "Size of each character's learned embedding.", min=1, max=toolkit.MAX_MODEL_WIDTH,
        search=toolkit.Space.choice(32, 48, 64),
    )
    channels: int = toolkit.param_field(
        128, "Filters per convolution width.", min=1, max=toolkit.MAX_MODEL_WIDTH,
        search=toolkit.Space.choice(64, 128, 256),
    )
    widths: str = toolkit.param_field("2,3,4,5", "Convolution widths in characters, comma-separated.")
    dropout: float = toolkit.param_field(
        0.3, "Dropout on the pooled features.", min=0, below=1, search=toolkit.Space.range(0.0, 0.5),
    )

    def parsed_widths(self) -> tuple[int, ...]:
        """'2,3,4' -> (2, 3, 4); () for anything else."""
        try:
            parsed = tuple(int(part) for part in self.widths.split(","))
        except ValueError:
            return ()
        return parsed if parsed and min(parsed) >= 1 else ()

    def check(self) -> str | None:
        """A rule across or inside parameters that a range cannot say; toolkit checks it
        before reading any data."""
        if not self.parsed_widths():
            return f"needs widths as comma-separated positive integers such as 2,3,4; got {self.widths!r}"
        return None
