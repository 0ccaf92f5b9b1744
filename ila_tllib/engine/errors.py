"""What a run can end with, and the exit code each end gives.

======  ==========================================================================
code    meaning
======  ==========================================================================
0       the run finished (training printed ``test_acc1``; test/analysis printed theirs)
2       bad input: a flag, the data, a checkpoint, the ``--log`` folder, the disk, a
        batch larger than the GPU's memory; one ``error: ...`` line names the problem and
        the fix, before any training where it can be known before, and nothing finished
        was overwritten
3       divergence: the loss, the weights or the BatchNorm statistics became
        non-finite; the run stopped before saving, earlier checkpoints stay as they were
130     interrupted (Ctrl-C): one ``interrupted: ...`` line says what ``--resume`` would
        continue from; the process ends as killed by SIGINT (the shell shows 130)
======  ==========================================================================

Under torchrun every process ends with the code of the first error (see :mod:`.peers`). Any other
code is a bug: Python's 1 with a traceback.
"""
import errno
import re
from typing import Optional, Tuple

import torch

from ..backend import BackendChoiceError, TllibUnavailableError
from ..datasets.errors import DatasetError
from ..models import BackboneError

__all__ = ["UsageError", "DivergenceError", "PeerStopped", "EXIT_OK", "EXIT_USAGE", "EXIT_DIVERGED",
           "EXIT_INTERRUPTED", "classify", "disk_problem", "out_of_memory"]

EXIT_OK, EXIT_USAGE, EXIT_DIVERGED, EXIT_INTERRUPTED = 0, 2, 3, 130

# disk problems the user fixes outside the program, reported as bad input
_DISK_ERRNOS = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
                errno.EROFS: "read-only file system", errno.EACCES: "permission denied",
                errno.EPERM: "operation not permitted"}
_FULL = {errno.ENOSPC, errno.EDQUOT}     # the rest: no right to read or write there


class UsageError(Exception):
    """A problem with the user's input: printed as one message, exit code 2, no traceback."""


class DivergenceError(Exception):
    """Training became non-finite: printed as one message, exit code 3, nothing saved after it."""


class PeerStopped(Exception):
    """Another process of a torchrun run stopped on an error: this one stops with its code and message."""

    def __init__(self, rank: int, code: int, message: str):
        super().__init__(rank, code, message)
        self.rank, self.code, self.message = rank, code, message

    def __str__(self):
        return f"process {self.rank} stopped: {self.message}"


def _one_message(error: BaseException) -> str:
    """The error's own message. A DataLoader worker re-raises with the worker's whole traceback in the
    message ("Caught X in DataLoader worker process 0. Original Traceback ..."): keep the original
    message only, the text after the traceback's last ``module.Type: `` line."""
    text = str(error)
    if "Original Traceback" in text:
        found = list(re.finditer(r"^[\w.]*(?:Error|Exception): ", text, re.M))
        if found:
            text = text[found[-1].end():]
    return text.strip()


def classify(error: BaseException) -> Optional[Tuple[int, str]]:
    """(exit code, message) for the errors a user can cause; None for a bug (let it raise)."""
    if isinstance(error, (UsageError, DatasetError, BackboneError, BackendChoiceError, TllibUnavailableError)):
        return EXIT_USAGE, _one_message(error)
    if isinstance(error, DivergenceError):
        return EXIT_DIVERGED, str(error)
    if isinstance(error, PeerStopped):
        return error.code, str(error)
    exhausted = out_of_memory(error)
    if exhausted:
        return EXIT_USAGE, (f"{exhausted}: lower -b, or ILA's own class-balanced source batch (the log's "
                            f"'batches:' line gives its size; --samples-per-class, --classes-per-batch), or add "
                            f"--amp")
    if isinstance(error, OSError) and error.errno in _DISK_ERRNOS:
        # a checkpoint's own write says more (engine.run); this is any other file, read or written: only a
        # write fills a disk, so that one reads as a checkpoint's does ("... writing PATH")
        if error.errno in _FULL:
            return EXIT_USAGE, f"{disk_problem(error)}: free space there, then run again"
        where = f" ({error.filename})" if error.filename else ""
        fix = "give access to it, or choose another folder (ROOT for the data, --log for the run's files)"
        return EXIT_USAGE, f"{_DISK_ERRNOS[error.errno]}{where}: {fix}"
    return None


#: torch's error for a GPU without the memory asked for (``torch.cuda``'s name before torch 2.5)
_OUT_OF_MEMORY = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError


def out_of_memory(error: BaseException) -> Optional[str]:
    """torch's own words for a GPU that ran out of memory, e.g. ``CUDA out of memory. Tried to allocate
    2.00 GiB``; None for any other error. With many classes ILA's class-balanced batch alone can hold
    thousands of images. The host's allocator failing is left a traceback: a tensor of absurd size there is
    more often a bug than a batch."""
    if not isinstance(error, _OUT_OF_MEMORY):
        return None
    found = re.match(r"(.*?out of memory\.(?: Tried to allocate [\d.]+ \w+)?)", _one_message(error), re.S)
    return found.group(1).rstrip(".") if found else "out of memory on the device"


def disk_problem(error: BaseException) -> Optional[str]:
    """What went wrong, e.g. ``no space left on the device writing PATH``, for the disk errors a user
    fixes outside the program; None for any other error."""
    if isinstance(error, OSError) and error.errno in _DISK_ERRNOS:
        where = f" writing {error.filename}" if error.filename else ""
        return f"{_DISK_ERRNOS[error.errno]}{where}"
    return None
