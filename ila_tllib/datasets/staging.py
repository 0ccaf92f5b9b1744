"""Staging folders: a download or an export is written into a hidden folder next to its destination and
renamed into place only when complete. A killed process leaves its staging folder behind; the next one
removes those old enough that no live process can still be writing them."""
import contextlib
import glob
import os
import shutil
import time

__all__ = ["remove_stale_staging", "STALE_AFTER_S", "made_folders", "remove_if_empty"]

#: a staging folder in which nothing was touched for this long is a killed process's (a live download or
#: export writes into a file or a folder of it every few seconds)
STALE_AFTER_S = 3600


def _last_touched(path: str) -> float:
    """The newest modification time of ``path`` and of everything under it: appending to a file inside a
    folder does not touch the folder itself."""
    newest = os.path.getmtime(path)
    for folder, _, files in os.walk(path):
        for name in [folder] + [os.path.join(folder, f) for f in files]:
            try:
                newest = max(newest, os.path.getmtime(name))
            except OSError:      # removed meanwhile
                continue
    return newest


def remove_stale_staging(folder: str, prefix: str, now: float = None) -> int:
    """Remove the folders ``folder/prefix*`` in which nothing was modified for :data:`STALE_AFTER_S`;
    returns how many."""
    now = time.time() if now is None else now
    removed = 0
    for path in glob.glob(os.path.join(glob.escape(folder), glob.escape(prefix) + "*")):
        try:
            stale = os.path.isdir(path) and now - _last_touched(path) > STALE_AFTER_S
        except OSError:     # removed by another process meanwhile
            continue
        if stale:
            shutil.rmtree(path, ignore_errors=True)
            removed += not os.path.exists(path)
    return removed


def made_folders(*deepest: str) -> list:
    """The folders among ``deepest`` and their parents that do not exist yet (those a download into them
    would make), deepest first."""
    missing = set()
    for path in deepest:
        path = os.path.abspath(path)
        while not os.path.exists(path) and path not in missing:
            missing.add(path)
            path = os.path.dirname(path)
    return sorted(missing, key=len, reverse=True)


def remove_if_empty(folders) -> None:
    """Remove each of ``folders`` (deepest first) that exists and is empty: a failed download leaves ROOT as
    it found it."""
    for folder in folders:
        with contextlib.suppress(OSError):      # not empty, or not there: it stays as it is
            os.rmdir(folder)
