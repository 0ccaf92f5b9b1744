"""Atomic writes: a kill at any moment leaves either the old file or the new one, never half of one."""
import contextlib
import os
import tempfile
from typing import BinaryIO, Callable

import torch

__all__ = ["write_atomic", "save_atomic", "save_figure_atomic"]


def write_atomic(path: str, write: Callable[[BinaryIO], None]):
    """Call ``write`` on a temporary file beside ``path``, flush it to disk, then rename it over ``path``."""
    directory = os.path.dirname(os.path.abspath(path))
    suffix = os.path.splitext(path)[1]
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the mode a plain open would
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):   # the first error is the one to report
            os.remove(tmp)
        if isinstance(e, OSError) and e.filename is None:
            e.filename = path   # e.g. a full disk: say which file could not be written
        raise


def save_atomic(obj, path: str):
    """``torch.save`` to ``path`` atomically."""
    write_atomic(path, lambda f: torch.save(obj, f))


def save_figure_atomic(fig, path: str, **kwargs):
    """``fig.savefig`` to ``path`` atomically; the format follows the file's extension."""
    write_atomic(path, lambda f: fig.savefig(f, format=os.path.splitext(path)[1][1:] or None, **kwargs))
