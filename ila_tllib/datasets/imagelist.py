"""Image-list datasets: the tllib ``ImageList`` and the two readers for own data.

* :class:`ImageList` -- the building block of every benchmark here: a list file
  of ``relative/path label`` lines plus a list of class names.
* :class:`ImageListDomains` -- ``-d ImageList``: one list file per domain.
* :class:`ImageFolderDomains` -- ``-d ImageFolder``: one folder per domain, one
  sub-folder per class.

All three check their input when they are built (not lazily in a data-loader
worker), so that a typo in a list file is reported once, with file name and
line number, instead of as a crash in the middle of training.
"""
import io
import os
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from PIL import Image
from torchvision.datasets import VisionDataset

from .errors import DatasetFormatError, DatasetNotFoundError, UnknownDomainError, not_found_message

__all__ = [
    "IMG_EXTENSIONS",
    "ImageList",
    "ImageListDomains",
    "ImageFolderDomains",
    "read_image_list",
    "read_class_names",
]

#: File endings accepted as images by :class:`ImageFolderDomains`.
IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")

# How many missing files a DatasetFormatError lists before summarising; the
# first few are enough to see the pattern (wrong root, wrong prefix, ...).
_MAX_MISSING_SHOWN = 5


def _text_lines(path: str, kind: str, holds: str) -> List[str]:
    """The lines of the text file ``path`` (``kind``, e.g. "an image list", which ``holds`` such lines); a
    file that is not UTF-8, or a folder in its place, raises DatasetFormatError naming it."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except IsADirectoryError:
        raise DatasetFormatError("{} is a folder, not {}: {} is a text file of {}; move the folder away".format(
            path, kind, kind, holds)) from None
    except OSError as e:     # a link to nowhere, no permission to read
        target = " (a link to {}, which is missing)".format(os.readlink(path)) if os.path.islink(path) and \
            not os.path.exists(path) else ""
        raise DatasetFormatError("{} cannot be read{}: {}; {} is a text file of {}: fix or remove it".format(
            path, target, e.strerror or e, kind, holds)) from None
    try:
        # utf-8-sig: a byte-order mark (Windows editors write one) is not part of the first line
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DatasetFormatError("{}, line {}: not UTF-8 text (bad byte at offset {}); {} holds {}".format(
            path, data[:e.start].count(b"\n") + 1, e.start, kind, holds)) from None
    return io.StringIO(text, newline=None).readlines()     # as a text-mode read: \r\n and \r end lines


def read_image_list(data_list_file: str, root: str, num_classes: Optional[int] = None,
                    first_label: int = 0) -> List[Tuple[str, int, int]]:
    """Parse an image list file.

    Each non-blank line is ``path label``; ``path`` may contain spaces (the label
    is the last field) when that file exists (otherwise a line of more than two
    fields is malformed), is taken relative to ``root`` unless absolute, and
    ``label`` is an integer in ``[0, num_classes)``.  Blank lines and lines
    starting with ``#`` are skipped.

    Args:
        data_list_file (str): the list file.
        root (str): directory the relative paths start from.
        num_classes (int, optional): when given, labels outside
            ``[0, num_classes)`` raise :class:`DatasetFormatError`.
        first_label (int): the label the file gives the first class (PACS's
            lists count from 1); returned labels count from 0.

    Returns:
        list of ``(absolute path, label, line number)``.

    Raises:
        DatasetFormatError: on a malformed line, a label out of range or a list
            without any sample.
    """
    lines = _text_lines(data_list_file, "an image list", "'relative/path label' lines")
    entries = []
    for lineno, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.rsplit(maxsplit=1)
        if len(fields) != 2:
            raise DatasetFormatError(
                "{}, line {}: malformed line {!r}; expected 'relative/path label'".format(
                    data_list_file, lineno, line))
        path, label_text = fields
        if len(line.split()) > 2 and not os.path.isfile(_under(root, path)):
            # tllib reads everything before the label as the path, so that paths may hold spaces; a
            # path that does not exist is far more likely an extra field than a missing file
            raise DatasetFormatError(
                "{}, line {}: malformed line {!r}: {} fields where 'relative/path label' has 2 (and no "
                "file {!r} exists, so the spaces are not part of a path); remove the extra fields".format(
                    data_list_file, lineno, line, len(line.split()), path))
        try:
            label = int(label_text)
        except ValueError:
            raise DatasetFormatError(
                "{}, line {}: malformed line {!r}; the label {!r} is not an integer "
                "(expected 'relative/path label')".format(data_list_file, lineno, line, label_text)
            ) from None
        label -= first_label
        if label < 0 or (num_classes is not None and label >= num_classes):
            valid = "{}..{}".format(first_label, first_label + num_classes - 1) if num_classes is not None \
                else ">= {}".format(first_label)
            raise DatasetFormatError(
                "{}, line {}: label {} is outside the class list (valid labels: {})".format(
                    data_list_file, lineno, label + first_label, valid))
        entries.append((_under(root, path), label, lineno))
    if not entries:
        raise DatasetFormatError("{}: the image list is empty (no 'relative/path label' line)".format(
            data_list_file))
    return entries


def _under(root: str, path: str) -> str:
    return path if os.path.isabs(path) else os.path.join(root, path)


def check_files_exist(entries: Sequence[Tuple[str, int, int]], data_list_file: str) -> None:
    """Raise :class:`DatasetFormatError` naming the first few listed images that
    do not exist on disk."""
    missing = [(path, lineno) for path, _, lineno in entries if not os.path.isfile(path)]
    if not missing:
        return
    shown = "\n".join("  line {}: {}".format(lineno, path) for path, lineno in missing[:_MAX_MISSING_SHOWN])
    more = "\n  ... and {} more".format(len(missing) - _MAX_MISSING_SHOWN) \
        if len(missing) > _MAX_MISSING_SHOWN else ""
    raise DatasetFormatError(
        "{}: {} of {} listed image files are missing:\n{}{}".format(
            data_list_file, len(missing), len(entries), shown, more))


def read_class_names(classes_file: str) -> List[str]:
    """Read one class name per line (blank lines skipped, order = label)."""
    names = [line.strip() for line in _text_lines(classes_file, "a class list", "one class name per line")
             if line.strip()]
    if not names:
        raise DatasetFormatError("{}: the class list is empty (expected one class name per line)".format(
            classes_file))
    if len(set(names)) != len(names):
        duplicates = sorted({n for n in names if names.count(n) > 1})
        raise DatasetFormatError("{}: duplicate class names: {}".format(classes_file, ", ".join(duplicates)))
    return names


class ImageList(VisionDataset):
    """A dataset described by a list of ``(image path, label)`` lines.

    Args:
        root (str): root directory; relative paths in the list start here.
        classes (list[str]): the class names; label ``i`` is ``classes[i]``.
        data_list_file (str): the list file.  Each line is
            ``relative/path/to/image.jpg label`` with an integer label in
            ``[0, len(classes))``, for example::

                amazon/images/back_pack/frame_0001.jpg 0
                amazon/images/bike/frame_0001.jpg 1

        transform (callable, optional): applied to the PIL image, e.g.
            ``torchvision.transforms.ToTensor()``.
        target_transform (callable, optional): applied to the integer label.
        mode (str, optional): PIL mode images are converted to; defaults to the
            class attribute :attr:`image_mode` (``'RGB'``; grey datasets use ``'L'``).
        check_files (bool): check at construction that every listed image
            exists (default ``True``).

    Attributes:
        classes (list[str]), class_to_idx (dict[str, int]), num_classes (int),
        samples (list of ``(absolute path, label)``), targets (list[int]).

    ``dataset[i]`` is ``(image, label)``; the file is decoded only then.

    Raises:
        DatasetFormatError: malformed line, label outside ``classes``, empty
            list or (with ``check_files``) missing image files.
    """

    image_mode = "RGB"
    first_label = 0   # the label the list files give the first class

    def __init__(self, root: str, classes: Sequence[str], data_list_file: str,
                 transform: Optional[Callable] = None, target_transform: Optional[Callable] = None,
                 mode: Optional[str] = None, check_files: bool = True):
        super().__init__(root, transform=transform, target_transform=target_transform)
        self.classes = list(classes)
        self.class_to_idx: Dict[str, int] = {name: i for i, name in enumerate(self.classes)}
        self.data_list_file = data_list_file
        self.mode = mode or self.image_mode
        entries = read_image_list(data_list_file, self.root, len(self.classes), self.first_label)
        if check_files:
            check_files_exist(entries, data_list_file)
        self.files_checked = check_files   # read by the registry, which checks other datasets' lists itself
        self.samples: List[Tuple[str, int]] = [(path, label) for path, label, _ in entries]

    def parse_data_file(self, file_name: str) -> List[Tuple[str, int]]:
        """Return the ``(absolute path, label)`` pairs listed in ``file_name``."""
        return [(path, label) for path, label, _ in
                read_image_list(file_name, self.root, len(self.classes), self.first_label)]

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.classes)

    @property
    def targets(self) -> List[int]:
        """The labels of all samples, in order (no image is decoded)."""
        return [label for _, label in self.samples]

    def loader(self, path: str) -> Image.Image:
        """Open an image and convert it to :attr:`mode`; an unreadable file raises DatasetFormatError naming it."""
        try:
            with open(path, "rb") as handle:
                image = Image.open(handle)
                return image.convert(self.mode)
        # PIL signals broken files with these, and a header claiming a huge image with DecompressionBombError
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
            raise DatasetFormatError("cannot read image {} ({}: {}); replace or delete it and its line in {}".format(
                path, type(e).__name__, e, self.data_list_file)) from None

    def __getitem__(self, index: int):
        path, target = self.samples[index]
        image = self.loader(path)
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target

    def __len__(self) -> int:
        return len(self.samples)

    def extra_repr(self) -> str:
        return "Classes: {}\nList file: {}".format(self.num_classes, self.data_list_file)


# --------------------------------------------------------------------------- own data

_IMAGE_LIST_LAYOUT = [
    "ROOT/image_list/<domain>.txt   one 'relative/path label' line per image (paths relative to ROOT)",
    "ROOT/classes.txt               optional, one class name per line (line i = label i);"
    " without it the classes are 0..max label over all lists",
    "ROOT/<any>/<image files>       the images the lists point to",
]


class ImageListDomains(ImageList):
    """Own data given as one image list per domain (``-d ImageList``).

    Layout on disk::

        ROOT/
            classes.txt            # optional: one class name per line, line i = label i
            image_list/
                <domain>.txt       # 'relative/path label' lines, paths relative to ROOT
                <other domain>.txt
            ...images anywhere under ROOT...

    The domains are the stems of the ``.txt`` files in ``ROOT/image_list``.
    Without ``classes.txt`` the classes are ``'0'..'K'`` with ``K`` the largest
    label over *all* lists, so every domain gets the same class count.

    Args:
        root (str): ROOT above.
        task (str): the domain, i.e. the stem of a list file.
        split (str): ignored -- a domain is one list, used whole (as in tllib's
            Office-31, where the target training set is also the test set).
        download (bool): ignored; own data cannot be downloaded.
        transform, target_transform, mode, check_files: see :class:`ImageList`.

    Raises:
        DatasetNotFoundError: ``ROOT/image_list`` missing or holds no ``.txt``.
        UnknownDomainError: ``task`` is not one of the list stems.
        DatasetFormatError: see :class:`ImageList`.
    """

    def __init__(self, root: str, task: str, split: str = "train", download: bool = False,
                 transform: Optional[Callable] = None, target_transform: Optional[Callable] = None,
                 mode: Optional[str] = None, check_files: bool = True):
        root = os.path.expanduser(root)
        domains = self.domains(root)
        if task not in domains:
            raise UnknownDomainError("ImageList", task, domains, where=os.path.join(root, "image_list"))
        classes = self._classes(root, domains)
        self.task = task
        self.split = split
        super().__init__(root, classes, self.list_file(root, task), transform=transform,
                         target_transform=target_transform, mode=mode, check_files=check_files)

    @staticmethod
    def list_file(root: str, task: str) -> str:
        return os.path.join(root, "image_list", task + ".txt")

    @classmethod
    def domains(cls, root: str) -> List[str]:
        """The domains found under ``root`` (stems of ``root/image_list/*.txt``)."""
        list_dir = os.path.join(os.path.expanduser(root), "image_list")
        found = sorted(name[:-4] for name in os.listdir(list_dir)
                       if name.endswith(".txt") and not name.startswith(".")) \
            if os.path.isdir(list_dir) else []
        if not found:
            missing = list_dir if not os.path.isdir(list_dir) else os.path.join(list_dir, "<domain>.txt")
            raise DatasetNotFoundError(not_found_message(
                "ImageList", missing, root, _IMAGE_LIST_LAYOUT, "your own images"), path=missing)
        return found

    @classmethod
    def _classes(cls, root: str, domains: Sequence[str]) -> List[str]:
        classes_file = os.path.join(root, "classes.txt")
        if os.path.isfile(classes_file):
            return read_class_names(classes_file)
        # No names given: number the classes so that every domain's lists fit,
        # which keeps labels (and the classifier size) equal across domains.
        labelled = [(label, lineno, cls.list_file(root, domain)) for domain in domains
                    for _, label, lineno in read_image_list(cls.list_file(root, domain), root)]
        max_label, lineno, path = max(labelled)
        # a class no list gives an image is most often a mistyped label, which would grow the classifier
        unused = max_label + 1 - len({label for label, _, _ in labelled})
        if unused:
            raise DatasetFormatError(
                f"{path}, line {lineno}: label {max_label} numbers {max_label + 1} classes, and {unused} of them "
                f"have no image in any list of ROOT {root}: correct the label, or name every class in "
                f"{classes_file} (one name per line, in label order)")
        return [str(i) for i in range(max_label + 1)]


def _is_visible_dir(path: str) -> bool:
    return os.path.isdir(path) and not os.path.basename(path).startswith(".")


def _is_image_file(name: str) -> bool:
    return name.lower().endswith(IMG_EXTENSIONS) and not name.startswith(".")


def _holds_an_image(folder: str) -> bool:
    """Whether an image file lies anywhere under ``folder`` (links followed, each real folder once); stops at
    the first."""
    seen = set()
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        if any(_is_image_file(name) for name in filenames):
            return True
    return False


def _class_folders(domain_dir: str) -> List[str]:
    """The class folders of a domain: its visible sub-folders that hold an image. A run's log folder put
    under ROOT (``--log ROOT/logs``, or the default ``--log`` run from ROOT) holds checkpoints, not images:
    it is neither a domain nor a class."""
    return [name for name in sorted(os.listdir(domain_dir))
            if _is_visible_dir(os.path.join(domain_dir, name)) and _holds_an_image(os.path.join(domain_dir, name))]


class ImageFolderDomains(ImageList):
    """Own data given as one folder per domain and one sub-folder per class
    (``-d ImageFolder``).

    Layout on disk::

        ROOT/
            <domain>/
                <class>/
                    <image>.jpg     # any depth below the class folder
            <other domain>/
                <class>/...

    The domains are the sub-folders of ROOT that hold at least one class
    folder, a sub-folder holding an image.  The classes are the union of the
    class folder names over *all* domains, sorted, so a label means the same
    class in every domain even when a domain lacks some classes.  Files are
    taken when their name ends with one of :data:`IMG_EXTENSIONS`
    (case-insensitive). A folder without images (a run's ``--log`` put under
    ROOT) is neither a domain nor a class.

    Args:
        root (str): ROOT above.
        task (str): the domain folder name.
        split (str): ignored (a domain is used whole).
        download (bool): ignored; own data cannot be downloaded.
        transform, target_transform, mode: see :class:`ImageList`.

    Raises:
        DatasetNotFoundError: ROOT missing or without domain folders.
        UnknownDomainError: ``task`` is not a domain folder.
        DatasetFormatError: the domain holds no image.
    """

    def __init__(self, root: str, task: str, split: str = "train", download: bool = False,
                 transform: Optional[Callable] = None, target_transform: Optional[Callable] = None,
                 mode: Optional[str] = None, check_files: bool = True):
        # Deliberately does not call ImageList.__init__: there is no list file.
        root = os.path.expanduser(root)
        problem = self.why_not_a_domain(root, task)
        if problem is not None:
            raise problem
        domains = self.domains(root)
        if task not in domains:
            raise UnknownDomainError("ImageFolder", task, domains, where=root)
        VisionDataset.__init__(self, root, transform=transform, target_transform=target_transform)
        self.task = task
        self.split = split
        self.mode = mode or self.image_mode
        self.classes = sorted({name for domain in domains for name in _class_folders(os.path.join(root, domain))})
        self.class_to_idx = {name: i for i, name in enumerate(self.classes)}
        self.data_list_file = os.path.join(root, task)
        self.samples = self._scan(os.path.join(root, task))
        self.files_checked = True   # found on disk
        if not self.samples:
            raise DatasetFormatError("{}: domain {!r} holds no image file (looked for {} under "
                                     "{}/<class>/)".format(self.data_list_file, task,
                                                           "/".join(IMG_EXTENSIONS), self.data_list_file))

    def _scan(self, domain_dir: str) -> List[Tuple[str, int]]:
        samples = []
        class_tops = {name: os.path.realpath(os.path.join(domain_dir, name)) for name in self.classes}
        for name in self.classes:
            class_dir = os.path.join(domain_dir, name)
            if not os.path.isdir(class_dir):
                continue
            top = class_tops[name]
            others = [other + os.sep for other_name, other in class_tops.items()
                      if other_name != name and not (top + os.sep).startswith(other + os.sep)]

            def in_another_class(path):
                return any((path + os.sep).startswith(other) for other in others)
            walked = {top}
            for dirpath, dirnames, filenames in os.walk(class_dir, followlinks=True):
                # a link back up the tree or to a folder already walked would repeat images, and one into
                # another class's folder would take its images as this class's
                kept = []
                for sub in sorted(d for d in dirnames if not d.startswith(".")):
                    real = os.path.realpath(os.path.join(dirpath, sub))
                    if real not in walked and not top.startswith(real + os.sep) and not in_another_class(real):
                        walked.add(real)
                        kept.append(sub)
                dirnames[:] = kept
                for filename in sorted(filenames):
                    path = os.path.join(dirpath, filename)
                    if _is_image_file(filename) and not (os.path.islink(path) and
                                                         in_another_class(os.path.realpath(path))):
                        samples.append((path, self.class_to_idx[name]))
        return samples

    @classmethod
    def why_not_a_domain(cls, root: str, task: str) -> Optional[DatasetFormatError]:
        """Why the folder ``ROOT/task``, which exists, is not a domain (it holds no class folder with an
        image); None when it is one or is not there."""
        folder = os.path.join(os.path.expanduser(root), task)
        if not _is_visible_dir(folder) or _class_folders(folder):
            return None
        return DatasetFormatError("{}: domain {!r} holds no image file (looked for {} under {}/<class>/)".format(
            folder, task, "/".join(IMG_EXTENSIONS), folder))

    @classmethod
    def domains(cls, root: str) -> List[str]:
        """The domain folders under ``root`` (those holding a class folder with an image)."""
        root = os.path.expanduser(root)
        found = []
        if os.path.isdir(root):
            for name in sorted(os.listdir(root)):
                path = os.path.join(root, name)
                if _is_visible_dir(path) and any(_is_visible_dir(os.path.join(path, sub)) and
                                                 _holds_an_image(os.path.join(path, sub)) for sub in os.listdir(path)):
                    found.append(name)
        if not found:
            missing = root if not os.path.isdir(root) else os.path.join(root, "<domain>", "<class>")
            raise DatasetNotFoundError(not_found_message(
                "ImageFolder", missing, root,
                ["ROOT/<domain>/<class>/<image files>   one folder per domain, one sub-folder per class"],
                "your own images"), path=missing)
        return found
