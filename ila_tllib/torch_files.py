"""Why a file of ``torch.save``'s cannot be read, in one plain line: for the messages of the flags that read
one (``--resume``, ``--pretrained``, BSP's ``--pretrain``, ``--phase test``)."""
import os
import re
import zipfile

__all__ = ["why_unreadable"]

#: terminal colour codes, which torch puts in some of its messages
_ANSI_ESCAPES = re.compile(r"\x1b\[[0-9;]*m")


def why_unreadable(path: str, error: Exception) -> str:
    """What follows ``path`` in a message saying why ``torch.load(path, weights_only=True)`` raised ``error``:
    ``holds more than a network's weights`` for a whole archive of other objects (a ``--resume`` state, say),
    else ``cannot be read (<error's first sentence>); it is damaged or not a checkpoint``."""
    if "Weights only load failed" in str(error) and _intact_archive(path):
        return "holds more than a network's weights" + (
            " (a --resume state)" if os.path.basename(path) == "resume.pth" else "")
    first = _first_sentence(_ANSI_ESCAPES.sub("", (str(error).strip().splitlines() or [""])[0]))
    if "Weights only load failed" in first:   # torch's advice to load it unsafely does not fit a damaged file
        first = "torch's weights-only reader could not read it"
    if not first:                             # torch's error for an empty file has no message at all
        first = "the file is empty" if os.path.getsize(path) == 0 else "no reason given"
    return f"cannot be read ({type(error).__name__}: {first}); it is damaged or not a checkpoint"


def _first_sentence(text: str, limit: int = 200) -> str:
    """``text`` up to its first full stop (torch's messages go on with advice), at most ``limit`` characters."""
    end = text.find(". ")
    text = text[:end + 1] if end >= 0 else text
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _intact_archive(path: str) -> bool:
    """Whether ``path`` is a whole zip archive, as torch.save writes (damaged bytes fail the weights-only
    reader too)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip() is None
    except (zipfile.BadZipFile, OSError, EOFError):
        return False
