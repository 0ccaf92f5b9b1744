"""Staging folders: a download or an export is written into a hidden folder next to its destination and
renamed into place only when complete. A killed process leaves its staging folder behind; the next one
removes those old enough that no live process can still be writing them."""
import glob
import os
import shutil
import time

__all__ = ["remove_stale_staging", "STALE_AFTER_S"]

#: a staging folder untouched for this long is a killed process's (an export or a download writes into
#: it every few seconds; a whole export takes minutes)
STALE_AFTER_S = 3600


def remove_stale_staging(folder: str, prefix: str, now: float = None) -> int:
    """Remove the folders ``folder/prefix*`` not modified for :data:`STALE_AFTER_S`; returns how many."""
    now = time.time() if now is None else now
    removed = 0
    for path in glob.glob(os.path.join(glob.escape(folder), glob.escape(prefix) + "*")):
        try:
            stale = os.path.isdir(path) and now - os.path.getmtime(path) > STALE_AFTER_S
        except OSError:     # removed by another process meanwhile
            continue
        if stale:
            shutil.rmtree(path, ignore_errors=True)
            removed += not os.path.exists(path)
    return removed
