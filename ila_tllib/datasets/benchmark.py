"""Shared machinery of the fixed benchmarks (Office-31, Office-Home, ...):
locating the files of one domain, the optional download, the
"not found" message and naming the classes.

A benchmark subclass only states facts: its domains, the list file and image
folder of each domain, the number of classes, where the data comes from.
"""
import os
from typing import Dict, List, Optional, Sequence, Tuple

from urllib.parse import unquote, urlparse

from torchvision.datasets.utils import download_and_extract_archive, extract_archive

from .errors import DatasetNotFoundError, UnknownDomainError, not_found_message
from .imagelist import ImageList

__all__ = ["BenchmarkImageList", "MIRROR_ENV"]

#: Environment variable naming a base URL (``https://...``) or a local folder
#: (``/data/mirror`` or ``file:///data/mirror``) that holds the archives of the
#: benchmarks as ``<base>/<DatasetClass>/<archive>``, e.g.
#: ``<base>/Office31/amazon.tgz``.  It is the download source whenever a class
#: knows no URL of its own.
MIRROR_ENV = "ILA_TLLIB_DATA_MIRROR"


def _local_path(url: str) -> Optional[str]:
    """The file a ``file://`` URL or plain path points to; None for network URLs."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return unquote(parsed.path)
    return url if "://" not in url else None


class BenchmarkImageList(ImageList):
    """Base of the image-list benchmarks; not used directly.

    Subclasses set the class attributes below.  Construction checks that the
    domain's list file and image folder exist, downloads the missing archives
    when ``download`` is true and a source is known, and otherwise raises
    :class:`DatasetNotFoundError` explaining the expected layout.

    Class attributes:
        title (str): human name used in messages, e.g. ``"Office-31"``.
        source (str): where the data comes from (page / paper).
        image_list (dict): task -> list file relative to ROOT (for split-aware
            datasets, a format string with ``{split}``).
        image_dirs (dict): task -> folder (relative to ROOT) that must exist
            for that task, or ``None`` when images may lie anywhere.
        image_pattern (dict): task -> how a listed path looks, for messages.
        download_list (list): ``(folder or file, archive file name, url or None)``;
            an entry is fetched when its folder/file is missing.
        NUM_CLASSES (int), CLASSES (list[str]): the class count and the names
            used when the list's paths do not reveal them.
        derive_class_names (bool): take class names from the folder holding
            each listed image (``.../<class>/<image>``) when that is consistent.
    """

    title = "benchmark"
    source = "its authors' page"
    image_list: Dict[str, str] = {}
    image_dirs: Dict[str, Optional[str]] = {}
    image_pattern: Dict[str, str] = {}
    download_list: List[Tuple[str, str, Optional[str]]] = []
    NUM_CLASSES = 0
    CLASSES: List[str] = []
    derive_class_names = True
    splits: Optional[Sequence[str]] = None  # None: split is ignored (domain used whole)

    def __init__(self, root: str, task: str, split: str = "train", download: bool = True,
                 transform=None, target_transform=None, mode: Optional[str] = None,
                 check_files: bool = True):
        root = os.path.expanduser(root)
        if task not in self.image_list:
            raise UnknownDomainError(type(self).__name__, task, self.domains())
        if self.splits is not None and split not in self.splits:
            raise ValueError("{}: unknown split {!r}; valid splits are: {}".format(
                type(self).__name__, split, ", ".join(self.splits)))
        self.task = task
        self.split = split
        list_file = os.path.join(root, self.list_path(task, split))
        self._ensure_files(root, task, split, list_file, download)
        super().__init__(root, self._initial_classes(root), list_file, transform=transform,
                         target_transform=target_transform, mode=mode, check_files=check_files)
        if self.derive_class_names:
            self.classes = self._names_from_paths()
            self.class_to_idx = {name: i for i, name in enumerate(self.classes)}

    # ------------------------------------------------------------------ facts
    @classmethod
    def domains(cls) -> List[str]:
        """The task keys of this dataset."""
        return list(cls.image_list.keys())

    @classmethod
    def list_path(cls, task: str, split: str = "train") -> str:
        """The list file of ``task`` relative to ROOT."""
        return cls.image_list[task].format(split=split)

    @classmethod
    def layout(cls, task: str, split: str = "train") -> List[str]:
        """Lines describing the files ``task`` needs, relative to ROOT."""
        pattern = cls.image_pattern[task]
        return ["ROOT/{:<28} lines '{} <label>' (label in 0..{})".format(
                    cls.list_path(task, split), pattern, cls.NUM_CLASSES - 1),
                "ROOT/{}".format(pattern)]

    def _initial_classes(self, root: str) -> List[str]:
        if len(self.CLASSES) == self.NUM_CLASSES:
            return list(self.CLASSES)
        return [str(i) for i in range(self.NUM_CLASSES)]

    # -------------------------------------------------------------- presence
    def _required(self, root: str, task: str, list_file: str) -> List[str]:
        paths = [list_file]
        if self.image_dirs.get(task):
            paths.append(os.path.join(root, self.image_dirs[task]))
        return paths

    def _ensure_files(self, root: str, task: str, split: str, list_file: str, download: bool) -> None:
        missing = [p for p in self._required(root, task, list_file) if not os.path.exists(p)]
        if not missing:
            return
        if download:
            note = self._download(root, task)
            missing = [p for p in self._required(root, task, list_file) if not os.path.exists(p)]
            if not missing:
                return
        else:
            note = "Automatic download is disabled (download=False)."
        raise DatasetNotFoundError(not_found_message(
            type(self).__name__, missing[0], root, self.layout(task, split),
            self.source, note), path=missing[0])

    def _download(self, root: str, task: str) -> Optional[str]:
        """Fetch the archives this task needs; return why it failed, or None."""
        wanted = {"image_list"}
        if self.image_dirs.get(task):
            wanted.add(self.image_dirs[task].split("/")[0])
        mirror = os.environ.get(MIRROR_ENV, "").rstrip("/")
        for entry, archive, url in self.download_list:
            if entry not in wanted or os.path.exists(os.path.join(root, entry)):
                continue
            if url is None and mirror:
                url = "{}/{}/{}".format(mirror, type(self).__name__, archive)
            if url is None:
                return ("Automatic download is not available: ila_tllib knows no public URL for "
                        "{}'s {!r}. Put the files in place by hand, or set {}=<base url> so that "
                        "<base url>/{}/{} is fetched.".format(
                            type(self).__name__, archive, MIRROR_ENV, type(self).__name__, archive))
            try:
                os.makedirs(root, exist_ok=True)
                local = _local_path(url)
                if local is not None:
                    # A folder on this machine: unpack in place, nothing to fetch
                    # (torchvision's downloader only handles http(s)).
                    extract_archive(local, root)
                else:
                    download_and_extract_archive(url, download_root=root, filename=archive,
                                                 remove_finished=True)
            except Exception as err:  # network, HTTP, archive errors: all mean "not there"
                return "Automatic download of {} failed: {}: {}".format(url, type(err).__name__, str(err).strip())
        return None

    # ----------------------------------------------------------- class names
    def _names_from_paths(self) -> List[str]:
        """Name each label by the folder its images sit in, when every label
        maps to one folder name and no two labels share one; keep the
        default names otherwise (and for labels the list does not use)."""
        seen: Dict[int, set] = {}
        for path, label in self.samples:
            seen.setdefault(label, set()).add(os.path.basename(os.path.dirname(path)))
        if any(len(names) != 1 for names in seen.values()):
            return self.classes
        names = list(self.classes)
        for label, found in seen.items():
            names[label] = next(iter(found))
        if len(set(names)) != len(names):
            return self.classes
        return names
