"""Atomic writes: a kill at any moment leaves either the old file or the new one, never half of one."""
import contextlib
import os
import tempfile
from typing import BinaryIO, Callable

import torch

__all__ = ["write_atomic", "write_named_atomic", "save_atomic", "save_figure_atomic"]


def write_atomic(path: str, write: Callable[[BinaryIO], None]):
    """Call ``write`` on a temporary file beside ``path``, flush it to disk, then rename it over ``path``."""
    _replace_atomic(path, lambda f, tmp: write(f))


def write_named_atomic(path: str, write: Callable[[str], None]):
    """As :func:`write_atomic`, for a writer that takes a file name (tllib's t-SNE): it writes a temporary
    file beside ``path``, with ``path``'s extension, which is renamed over ``path`` once complete."""
    _replace_atomic(path, lambda f, tmp: write(tmp))


def _replace_atomic(path: str, write: Callable[[BinaryIO, str], None]):
    directory = os.path.dirname(os.path.abspath(path))
    suffix = os.path.splitext(path)[1]
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f, tmp)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the mode a plain open would
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):   # the first error is the one to report
            os.remove(tmp)
        # torch's zip writer turns a failed write of its file into a RuntimeError ("unexpected pos"); the
        # OSError behind it (a full disk) is what the user can act on
        failed = _os_error_behind(e)
        if failed is not None and (failed.filename is None or _is_temporary(failed.filename)):
            failed.filename = path   # e.g. a full disk: say which file could not be written, not a temporary
        if failed is not None and failed is not e:
            raise failed from None
        raise


def _is_temporary(filename) -> bool:
    """A temporary file of an atomic write (a writer may write atomically itself, into ours)."""
    return os.path.basename(os.fsdecode(filename)).startswith(".tmp-")


def _os_error_behind(error: BaseException):
    """``error`` if it is an OSError, else the first OSError among the exceptions it was raised from."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, OSError):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def save_atomic(obj, path: str):
    """``torch.save`` to ``path`` atomically."""
    write_atomic(path, lambda f: torch.save(obj, f))


def save_figure_atomic(fig, path: str, **kwargs):
    """``fig.savefig`` to ``path`` atomically; the format follows the file's extension."""
    write_atomic(path, lambda f: fig.savefig(f, format=os.path.splitext(path)[1][1:] or None, **kwargs))
