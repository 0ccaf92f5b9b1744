"""Atomic writes: a kill at any moment leaves either the old file or the new one, never half of one."""
import os
import tempfile

import torch

__all__ = ["save_atomic"]


def save_atomic(obj, path: str):
    """``torch.save`` into a temporary file beside ``path``, flush it to disk, then rename over ``path``."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".pth")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the mode torch.save would
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
