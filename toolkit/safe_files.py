"""Reading and writing files that someone else may have prepared (a run folder received from
another user) without being led astray: writes never follow a symlink, reads are bounded,
and text shown on a terminal cannot carry control sequences.
"""

from __future__ import annotations

import json
import os
import re
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from toolkit.errors import ToolkitError
from toolkit.limits import MAX_JSON_DEPTH, MAX_RUN_FILE_BYTES

#: C0 and C1 controls, DEL, and the bidirectional overrides that can make text read differently.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def shown(value: object) -> str:
    """`value` as text safe for a terminal or a one-line message: control characters (newlines,
    escape sequences, bidi overrides) written as visible escapes like `\\n` or `\\x1b`."""
    return _UNSAFE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), str(value))


def file_mode() -> int:
    """The permissions a new file gets under the current umask (0o644 under the usual 022)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextmanager
def atomic_file(path: Path, text: bool = False) -> Iterator[IO[Any]]:
    """A file to write that becomes `path` when the block ends without error: a fresh
    temporary beside `path` (created with O_EXCL and O_NOFOLLOW under a random name) renamed
    over it. A symlink at `path` is replaced, never followed; readers see the old file or the
    new one, never half of it; on an error nothing is left. The file gets the usual permissions
    (`file_mode`), whatever the temporary started with. `text`: UTF-8, newlines untranslated."""
    try:
        handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _cannot_write(path, exc) from None
    try:
        os.fchmod(handle, file_mode())
        options: dict[str, Any] = {"encoding": "utf-8", "newline": ""} if text else {}
        with open(handle, "w" if text else "wb", **options) as out:
            yield out
        os.replace(tmp, path)
    except OSError as exc:
        raise _cannot_write(path, exc) from None
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_atomic(path: Path, data: bytes | str) -> Path:
    """Write `data` to `path` through `atomic_file`."""
    with atomic_file(path) as out:
        out.write(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def _cannot_write(path: Path, exc: OSError) -> ToolkitError:
    return ToolkitError(
        f"cannot write '{shown(path)}' ({exc.strerror or exc}); check the folder's permissions "
        "or choose another place."
    )


def read_bounded(path: Path, limit: int = MAX_RUN_FILE_BYTES) -> bytes:
    """The bytes of the regular file `path`, refused when larger than `limit` (checked before
    reading: a sparse 5 GB file is refused at once) or when it is not a regular file."""
    try:
        handle = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a FIFO must not block
    except OSError as exc:
        raise ToolkitError(f"cannot read '{shown(path)}' ({exc.strerror or exc}).") from None
    with os.fdopen(handle, "rb") as file:
        info = os.fstat(file.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise ToolkitError(f"'{shown(path)}' is not a regular file; the run folder is damaged.")
        if info.st_size > limit:
            raise ToolkitError(
                f"'{shown(path)}' has {info.st_size:,} bytes; a run-folder file may have at most "
                f"{limit:,}. The run folder is damaged or not a toolkit run."
            )
        data = file.read(limit + 1)
    if len(data) > limit:  # it grew while being read
        raise ToolkitError(f"'{shown(path)}' has more than {limit:,} bytes; the run folder is damaged.")
    return data


def read_json(path: Path, limit: int = MAX_RUN_FILE_BYTES, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """A JSON file of at most `limit` bytes and `max_depth` levels of nesting."""
    data = read_bounded(path, limit)
    try:
        value = json.loads(data.decode("utf-8"))
    except RecursionError:
        value = None
        too_deep = True
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ToolkitError(
            f"'{shown(path)}' is not valid JSON ({shown(exc)}); the run folder is damaged."
        ) from None
    else:
        too_deep = _depth_exceeds(value, max_depth)
    if too_deep:
        raise ToolkitError(
            f"'{shown(path)}' nests JSON more than {max_depth} levels deep; the run folder is damaged."
        )
    return value


def _depth_exceeds(value: Any, max_depth: int) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > max_depth:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False
