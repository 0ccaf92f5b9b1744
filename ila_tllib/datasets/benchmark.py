"""Shared machinery of the fixed benchmarks (Office-31, Office-Home, ...):
locating the files of one domain, the download, the "not found" message and
naming the classes.

A benchmark subclass only states facts: its domains, the list file and image
folder of each domain, the number of classes, where the data comes from (the
public archives tllib's dataset classes fetch, under the same names).
"""
import contextlib
import os
import shutil
import socket
import tarfile
import tempfile
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from urllib.parse import unquote, urlparse

from torchvision.datasets.utils import download_url, extract_archive

from .errors import DatasetNotFoundError, UnknownDomainError, not_found_message
from .imagelist import ImageList
from .staging import made_folders, remove_if_empty, remove_stale_staging

__all__ = ["BenchmarkImageList", "MIRROR_ENV", "STALL_TIMEOUT_S", "fetch_missing", "download_advice",
           "mirror_url", "stall_timeout"]

#: Environment variable naming a base URL (``https://...``) or a local folder
#: (``/data/mirror`` or ``file:///data/mirror``) that holds the archives of the
#: benchmarks as ``<base>/<DatasetClass>/<archive>``, e.g.
#: ``<base>/Office31/amazon.tgz``.  When set, it replaces the public URLs.
MIRROR_ENV = "ILA_TLLIB_DATA_MIRROR"

#: Seconds a download may wait for the next bytes before it counts as failed
#: (without it, a network that drops packets would hang the run).
STALL_TIMEOUT_S = 60

#: The share that serves tllib's archives; each archive is ``TSINGHUA.format(<file id>)``.
TSINGHUA = "https://cloud.tsinghua.edu.cn/f/{}/?dl=1"

Entry = Tuple[str, str, Optional[str]]   # (folder or file under ROOT, archive name, url)


def _local_path(url: str) -> Optional[str]:
    """The file a ``file://`` URL or plain path points to; None for network URLs."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return unquote(parsed.path)
    return url if "://" not in url else None


@contextlib.contextmanager
def stall_timeout(seconds: float = STALL_TIMEOUT_S):
    """Give every socket opened inside a timeout (urllib, as torchvision downloads, sets none)."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def mirror_url(dataset: str, archive: str) -> Optional[str]:
    """Where :data:`MIRROR_ENV` says ``archive`` of ``dataset`` lies; None when it is not set."""
    mirror = os.environ.get(MIRROR_ENV, "").strip().rstrip("/")
    return "{}/{}/{}".format(mirror, dataset, archive) if mirror else None


def _archives(entries: Iterable[Entry]) -> str:
    """``archive (url) for ROOT/folder/`` for each archive, its folders together (one archive may hold several)."""
    folders: Dict[Tuple[str, Optional[str]], List[str]] = {}
    for folder, archive, url in entries:
        folders.setdefault((archive, url), []).append("ROOT/{}/".format(folder))
    return "; ".join("{} ({}) for {}".format(archive, url or "no public address is known", ", ".join(held))
                     for (archive, url), held in folders.items())


def download_advice(dataset: str, needed: Sequence[Entry], others: Sequence[Entry] = (),
                    mirror: Optional[str] = None) -> str:
    """What a user can do today when the archives of ``needed`` cannot be fetched automatically: each one
    with its public address at once (and ``others``, the dataset's other archives still missing), so that one
    failed run tells every file to fetch.

    Args:
        needed: the ``(folder, archive, url)`` entries this run needs that are still missing
        others: entries missing for the dataset's other domains, named after the needed ones
        mirror: the value of :data:`MIRROR_ENV` when the archives were looked for there
    """
    addressed = [entry for entry in needed if entry[2]]
    text = ("Fetch by hand and unpack into ROOT, or put the archive itself in ROOT (the next run unpacks it): "
            + _archives(addressed) + "." if addressed else "")
    unknown = [entry for entry in needed if not entry[2]]
    if unknown:
        text += (" " if text else "") + "Put {} in place by hand (no public address is known).".format(
            ", ".join("ROOT/{}/".format(folder) for folder, _, _ in unknown))
    if others:
        text += " The other domains' archives, for other tasks: " + _archives(others) + "."
    if mirror:
        unset = (", or unset {} to download from the addresses above".format(MIRROR_ENV)
                 if addressed else "")
        return text + " Or put them in {}/{}/ (set by {}){}.".format(mirror.rstrip("/"), dataset, MIRROR_ENV, unset)
    return text + " Or set {}=<base url or folder> holding <base>/{}/<archive> to fetch them from a copy of " \
                  "your own.".format(MIRROR_ENV, dataset)


def _unpack(archive: str, into: str) -> None:
    """Unpack ``archive`` into the folder ``into``. A tar member that would land outside it (a ``..`` path,
    a link out of it) is refused, as tarfile's "data" filter refuses it (torchvision's ``extract_archive``
    unpacks tars unchecked); zipfile never writes outside ``into``."""
    if not tarfile.is_tarfile(archive):
        extract_archive(archive, into)
        return
    with tarfile.open(archive) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(into, filter="data")
            return
        for member in tar.getmembers():   # a Python without the filters: refuse what they would refuse
            names = [member.name] + ([member.linkname] if member.issym() or member.islnk() else [])
            if any(os.path.isabs(n) or ".." in n.replace("\\", "/").split("/") for n in names):
                raise tarfile.TarError("{!r} would be unpacked outside its folder".format(member.name))
        tar.extractall(into)


class _DamagedByHand(OSError):
    """An archive put in ROOT by hand that does not unpack (no download was tried)."""


def _fetch(url: str, root: str, archive: str) -> None:
    """Take ``ROOT/<archive>`` put there by hand, else download ``archive`` (or take it from a local mirror),
    and unpack it, both in a staging folder inside ROOT; only a complete unpacking is renamed into place,
    so an interrupted download or a truncated archive leaves nothing behind that looks finished."""
    remove_stale_staging(root, ".{}.".format(archive))     # what a killed download left
    staging = tempfile.mkdtemp(prefix=".{}.".format(archive), dir=root)
    try:
        by_hand = os.path.join(root, archive)
        # the archive put in ROOT by hand first: the advice of a failed download is to do just that
        source = by_hand if os.path.exists(by_hand) else _local_path(url)
        if source is None:
            with stall_timeout():
                download_url(url, staging, filename=archive)
            source = os.path.join(staging, archive)
        unpacked = os.path.join(staging, "unpacked")
        try:
            _unpack(source, unpacked)
        except Exception as err:
            if source == by_hand:
                raise _DamagedByHand("ROOT/{}, put there by hand, cannot be unpacked ({}: {}); delete or replace "
                                     "it.".format(archive, type(err).__name__, str(err).strip())) from err
            raise
        for name in os.listdir(unpacked):
            if not os.path.exists(os.path.join(root, name)):    # what is there already stays
                os.rename(os.path.join(unpacked, name), os.path.join(root, name))
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def fetch_missing(root: str, entries: Iterable[Entry], dataset: str, others: Iterable[Entry] = ()
                  ) -> Optional[str]:
    """Download and unpack every ``(folder, archive, url)`` entry whose ``ROOT/folder`` is missing,
    from :data:`MIRROR_ENV` when it is set, else from ``url``; stop at the first that fails.

    Returns:
        None when everything is in place, else one paragraph naming the archive and the address that
        failed, then :func:`download_advice` for every entry still missing (``others``: the dataset's
        entries this run does not need, listed after them).
    """
    entries = list(entries)
    mirror = os.environ.get(MIRROR_ENV, "").strip() or None
    made = made_folders(root)            # removed again (if empty) when a download fails
    for folder, archive, url in entries:
        if os.path.exists(os.path.join(root, folder)):
            continue
        source = mirror_url(dataset, archive) or url
        if source is None:
            failure = "Automatic download is not available: no public address is known for {}'s {}.".format(
                dataset, archive)
        else:
            try:
                os.makedirs(root, exist_ok=True)
                _fetch(source, root, archive)
                continue
            except _DamagedByHand as err:
                failure = str(err)
            except Exception as err:  # network, HTTP, archive errors: all mean "not there"
                failure = "Automatic download of {} from {} failed ({}: {}).".format(
                    archive, source, type(err).__name__, str(err).strip())
        remove_if_empty(made)
        return failure + " " + download_advice(dataset, _still_missing(root, entries),
                                               _still_missing(root, others), mirror)
    return None


def _still_missing(root: str, entries: Iterable[Entry]) -> List[Entry]:
    return [entry for entry in entries if not os.path.exists(os.path.join(root, entry[0]))]


class BenchmarkImageList(ImageList):
    """Base of the image-list benchmarks; not used directly.

    Subclasses set the class attributes below.  Construction checks that the
    domain's list file and image folder exist, downloads the missing archives
    when ``download`` is true (the default, as in tllib), and otherwise raises
    :class:`DatasetNotFoundError` explaining the expected layout, the URL tried
    and what to do instead.

    Class attributes:
        title (str): human name used in messages, e.g. ``"Office-31"``.
        source (str): where the data comes from (page / paper).
        image_list (dict): task -> list file relative to ROOT (for split-aware
            datasets, a format string with ``{split}``).
        image_dirs (dict): task -> folder (relative to ROOT) that must exist
            for that task, or ``None`` when images may lie anywhere.
        image_pattern (dict): task -> how a listed path looks, for messages.
        download_list (list): ``(folder or file, archive file name, url or None)``,
            tllib's entries; an entry is fetched when its folder/file is missing.
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
            note = note or self._not_fetched_again(root, missing[0])
        else:
            note = "Automatic download is disabled (download=False)."
        raise DatasetNotFoundError(not_found_message(
            type(self).__name__, missing[0], root, self.layout(task, split),
            self.source, note), path=missing[0])

    def _download(self, root: str, task: str) -> Optional[str]:
        """Fetch the archives this task needs (its list and its image folder); return why it failed, or None."""
        wanted = {"image_list", self.list_path(task).split("/")[0]}
        if self.image_dirs.get(task):
            wanted.add(self.image_dirs[task].split("/")[0])
        return fetch_missing(root, [entry for entry in self.download_list if entry[0] in wanted],
                             type(self).__name__, [entry for entry in self.download_list if entry[0] not in wanted])

    def _not_fetched_again(self, root: str, missing: str) -> Optional[str]:
        """Why ``missing`` was not downloaded: the folder its archive unpacks to is there (a partial copy
        of that folder is not fetched again, as in tllib)."""
        relative = os.path.relpath(missing, root).replace(os.sep, "/")
        for folder, archive, _ in self.download_list:
            if relative.startswith(folder + "/") and os.path.exists(os.path.join(root, folder)):
                return ("ROOT/{} is there, so {} was not downloaded again (an archive is fetched only when its "
                        "folder is missing): remove ROOT/{} to fetch it again, or put the missing file "
                        "there.".format(folder, archive, folder))
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
