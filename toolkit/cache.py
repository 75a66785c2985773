"""Where downloaded data lives, and installing it so a half-done download never counts.

A folder is replaced in two renames (the old one aside, the new one in), and the old one is
then deleted: a reader in the middle would find no folder, or files vanishing under it. So
`install_folder` swaps under an exclusive lock and readers read inside `reading_folder(target)`,
under a shared one: they see the old folder or the new one, whole. The lock is an flock on the
cache folder itself (no lock file to leave behind); where flock is missing (Windows) reading
is not locked.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import platformdirs

CACHE_ENV = "TOOLKIT_CACHE_DIR"


def cache_dir() -> Path:
    """The user cache folder for toolkit (TOOLKIT_CACHE_DIR overrides the platform default)."""
    override = os.environ.get(CACHE_ENV)
    return Path(override).expanduser() if override else Path(platformdirs.user_cache_dir("toolkit"))


def install_folder(target: Path, build: Callable[[Path], None]) -> Path:
    """Create or replace the folder `target` atomically.

    `build(tmp)` fills a temporary sibling folder, which then takes `target`'s place by
    rename. If `build` raises (or is interrupted), nothing is left behind and an existing
    `target` is untouched; readers never see a half-built folder.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    retired = None
    try:
        build(staging)
        with _locked(target.parent, exclusive=True):  # no reader is in the middle of reading it
            if target.exists():
                # A folder cannot be renamed over a non-empty one: move the old one aside first.
                retired = Path(tempfile.mkdtemp(prefix=f".{target.name}-old-", dir=target.parent))
                os.replace(target, retired / target.name)
            os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if retired is not None and not target.exists():  # the old folder back where it was
            os.replace(retired / target.name, target)
        raise
    finally:
        if retired is not None:
            shutil.rmtree(retired, ignore_errors=True)
    return target


@contextmanager
def reading_folder(target: Path) -> Iterator[None]:
    """Read `target` (a folder `install_folder` may replace meanwhile) inside this block: the
    replacement waits until the block ends, and a replacement in progress finishes first."""
    with _locked(Path(target).parent, exclusive=False):
        yield


@contextmanager
def _locked(folder: Path, exclusive: bool) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # Windows: no flock
        fcntl = None  # type: ignore[assignment]
    try:
        handle = os.open(folder, os.O_RDONLY) if fcntl is not None else None
    except OSError:  # no cache folder yet: nothing is installed, nothing to wait for
        handle = None
    if handle is None:
        yield
        return
    try:
        fcntl.flock(handle, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(handle)  # closing releases the lock
