"""Limits on what comes from outside: files, parameters, requests. Documented in the README
("Limits"); each is checked where the input enters, with a one-line error.

Where a user may need more, the limit is a parameter (`train.max_length`, `serve
--max-length`); the others are far above any sensible run and exist so that a typo or a
hostile file cannot make the toolkit allocate memory or time without end.
"""

from __future__ import annotations

import os

#: Longest text, in characters, fed to a model (the `train.max_length` default): longer texts
#: are cut to it, at training and at prediction alike, and the cuts are counted.
MAX_TEXT_LENGTH = 256
#: The largest `train.max_length` accepted.
MAX_TEXT_LENGTH_LIMIT = 10_000
MAX_EPOCHS = 10_000
MAX_EXAMPLES = 1_000_000_000
MAX_BATCH_SIZE = 4096
#: Hidden units, embedding sizes and layers of the built-in models.
MAX_MODEL_WIDTH = 4096
MAX_MODEL_LAYERS = 16
#: Seeds are what numpy and torch accept: 0 to 2**32 - 1.
MAX_SEED = 2**32 - 1
#: Files read from a run folder: JSON and CSV files at most this large, JSON at most this deep.
MAX_RUN_FILE_BYTES = 16 * 2**20
MAX_JSON_DEPTH = 64


def cpu_count() -> int:
    """The CPUs this process may use: the most threads a run may ask for."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)
