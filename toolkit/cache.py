"""Where downloaded data lives, and installing it so a half-done download never counts."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
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
    try:
        build(staging)
        if target.exists():
            # A folder cannot be renamed over a non-empty one: move the old one aside first.
            retired = Path(tempfile.mkdtemp(prefix=f".{target.name}-old-", dir=target.parent))
            os.replace(target, retired / target.name)
            os.replace(staging, target)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
