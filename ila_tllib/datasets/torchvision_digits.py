"""``-d TorchvisionDigits``: MNIST, USPS, SVHN and their RGB variants in torchvision's file formats
and from torchvision's download sources, with tllib's class names and call signature.

tllib's own ``-d Digits`` reads image lists of PNG files (:mod:`.digits`); these
read the original files instead (full SVHN, not tllib's class-balanced list).
torchvision owns the file formats and the download; this module only fixes
the interface (``mode``, ``split``, ``classes``, integer ``targets``) and turns
"not there and could not be fetched" into a
:class:`~ila_tllib.datasets.errors.DatasetNotFoundError` that shows the layout
torchvision expects, so the files can be copied in by hand on an offline
machine.
"""
import os
from typing import Callable, List, Optional, Sequence

import torchvision
from PIL import Image
from torchvision.datasets import VisionDataset

from .digits import DIGIT_CLASSES
from .errors import DatasetFormatError, DatasetNotFoundError, UnknownDomainError, not_found_message
from .staging import made_folders, remove_if_empty

__all__ = ["TorchvisionMNIST", "TorchvisionUSPS", "TorchvisionSVHN", "TorchvisionMNISTRGB", "TorchvisionUSPSRGB",
           "TorchvisionSVHNRGB", "TorchvisionDigits", "TORCHVISION_DIGITS"]


class _TorchvisionDigits(VisionDataset):
    """Common part of the digit datasets; see :class:`TorchvisionMNIST` for the arguments."""

    title = ""
    source = ""
    splits: Sequence[str] = ("train", "test")
    default_mode = "L"
    CLASSES = DIGIT_CLASSES

    def __init__(self, root: str, mode: Optional[str] = None, split: str = "train", download: bool = True,
                 transform: Optional[Callable] = None, target_transform: Optional[Callable] = None):
        root = os.path.expanduser(root)
        super().__init__(root, transform=transform, target_transform=target_transform)
        mode = mode or self.default_mode
        if mode not in ("L", "RGB"):
            raise ValueError("{}: mode must be 'L' or 'RGB', got {!r}".format(type(self).__name__, mode))
        if split not in self.splits:
            raise ValueError("{}: unknown split {!r}; valid splits are: {}".format(
                type(self).__name__, split, ", ".join(self.splits)))
        self.mode = mode
        self.split = split
        self.classes = list(self.CLASSES)
        self.class_to_idx = {name: i for i, name in enumerate(self.classes)}

        missing = [p for p in self.expected_files(root, split) if not os.path.isfile(p)]
        if missing and not download:
            self._not_found(root, split, missing[0], "Automatic download is disabled (download=False).")
        made = made_folders(*{os.path.dirname(p) for p in missing})    # removed again (if empty) on failure
        try:
            # Only let torchvision go to the network when something is missing,
            # so a complete offline copy never triggers a connection attempt.
            self.data_source = self._open(root, split, download=bool(missing))
        except Exception as err:  # torchvision raises RuntimeError / URLError / OSError
            remove_if_empty(made)
            reason = "{}: {}".format(type(err).__name__, str(err).strip()).rstrip(": ")
            if missing:
                self._not_found(root, split, missing[0], "Automatic download failed: " + reason, cause=err)
            # every file is there: one is damaged or truncated, and torchvision fetches only missing files
            files = self.read_files(root, split)
            which, them = ("one of them is", "them") if len(files) > 1 else ("it is", "it")
            raise DatasetFormatError("{}: the {} split's {} cannot be read ({}): {} damaged or truncated; delete {} "
                                     "to download {} again, or copy {} in again.".format(
                                         type(self).__name__, split, ", ".join(files), reason, which, them, them,
                                         them)) from err
        self.targets: List[int] = [int(t) for t in self._raw_targets()]

    # -------------------------------------------------------------- subclass hooks
    @classmethod
    def expected_files(cls, root: str, split: str) -> List[str]:
        """The files torchvision needs for ``split`` (absolute paths)."""
        raise NotImplementedError

    @classmethod
    def read_files(cls, root: str, split: str) -> List[str]:
        """The files torchvision reads for ``split`` (absolute paths)."""
        return cls.expected_files(root, split)

    @classmethod
    def layout(cls, split: str) -> List[str]:
        raise NotImplementedError

    def _open(self, root: str, split: str, download: bool):
        raise NotImplementedError

    def _raw_targets(self):
        return self.data_source.targets

    # ------------------------------------------------------------------ common
    def _not_found(self, root, split, missing, note, cause=None):
        error = DatasetNotFoundError(not_found_message(
            type(self).__name__, missing, root, self.layout(split), self.source, note), path=missing)
        if cause is not None:
            raise error from cause
        raise error

    @classmethod
    def domains(cls) -> List[str]:
        return [cls.__name__]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __getitem__(self, index: int):
        image, _ = self.data_source[index]
        target = self.targets[index]
        if not isinstance(image, Image.Image):
            image = Image.fromarray(image)
        image = image.convert(self.mode)
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target

    def __len__(self) -> int:
        return len(self.targets)

    def extra_repr(self) -> str:
        return "Split: {}\nMode: {}".format(self.split, self.mode)


class TorchvisionMNIST(_TorchvisionDigits):
    """MNIST handwritten digits (LeCun et al. 1998): 60,000 train / 10,000 test
    grey 28x28 images, 10 classes.

    Args:
        root (str): ROOT below.
        mode (str): ``'L'`` (grey, default) or ``'RGB'``.
        split (str): ``'train'`` or ``'test'``.
        download (bool): let torchvision download the missing files.
        transform (callable, optional): applied to the PIL image.
        target_transform (callable, optional): applied to the integer label.

    Layout on disk (torchvision's)::

        ROOT/MNIST/raw/train-images-idx3-ubyte
        ROOT/MNIST/raw/train-labels-idx1-ubyte
        ROOT/MNIST/raw/t10k-images-idx3-ubyte
        ROOT/MNIST/raw/t10k-labels-idx1-ubyte
    """

    title = "MNIST"
    source = "MNIST (LeCun et al. 1998, 'The MNIST database of handwritten digits'), as torchvision fetches it"
    _FILES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte",
              "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]

    @classmethod
    def expected_files(cls, root, split):
        # torchvision checks all four files whatever the split.
        return [os.path.join(root, "MNIST", "raw", name) for name in cls._FILES]

    @classmethod
    def read_files(cls, root, split):
        prefix = "train" if split == "train" else "t10k"
        return [path for path in cls.expected_files(root, split) if os.path.basename(path).startswith(prefix)]

    @classmethod
    def layout(cls, split):
        return ["ROOT/MNIST/raw/" + name + "   (unpacked from " + name + ".gz)" for name in cls._FILES]

    def _open(self, root, split, download):
        return torchvision.datasets.MNIST(root, train=(split == "train"), download=download)


class TorchvisionUSPS(_TorchvisionDigits):
    """USPS handwritten digits (Hull 1994): 7,291 train / 2,007 test grey 16x16
    images, 10 classes.

    Args: as :class:`TorchvisionMNIST`.

    Layout on disk (torchvision's)::

        ROOT/usps.bz2      # train split (LIBSVM format, bzip2)
        ROOT/usps.t.bz2    # test split
    """

    title = "USPS"
    source = ("USPS (Hull 1994, 'A database for handwritten text recognition research'), "
              "in the LIBSVM datasets' bzip2 files that torchvision fetches")
    _FILES = {"train": "usps.bz2", "test": "usps.t.bz2"}

    @classmethod
    def expected_files(cls, root, split):
        return [os.path.join(root, cls._FILES[split])]

    @classmethod
    def layout(cls, split):
        return ["ROOT/usps.bz2     (train split)", "ROOT/usps.t.bz2   (test split)"]

    def _open(self, root, split, download):
        return torchvision.datasets.USPS(root, train=(split == "train"), download=download)


class TorchvisionSVHN(_TorchvisionDigits):
    """SVHN street-view house numbers (Netzer et al. 2011): 73,257 train /
    26,032 test colour 32x32 crops, 10 classes (digit 0 is label 0).

    Args: as :class:`TorchvisionMNIST`; ``split`` may also be ``'extra'``.

    Layout on disk (torchvision's)::

        ROOT/train_32x32.mat
        ROOT/test_32x32.mat
        ROOT/extra_32x32.mat   # only for split='extra'
    """

    title = "SVHN"
    source = ("SVHN (Netzer et al. 2011, 'Reading Digits in Natural Images with Unsupervised Feature "
              "Learning'), the cropped-digits .mat files that torchvision fetches")
    splits = ("train", "test", "extra")

    @classmethod
    def expected_files(cls, root, split):
        return [os.path.join(root, split + "_32x32.mat")]

    @classmethod
    def layout(cls, split):
        return ["ROOT/train_32x32.mat", "ROOT/test_32x32.mat", "ROOT/extra_32x32.mat   (split='extra' only)"]

    def _open(self, root, split, download):
        return torchvision.datasets.SVHN(root, split=split, download=download)

    def _raw_targets(self):
        return self.data_source.labels


class TorchvisionMNISTRGB(TorchvisionMNIST):
    """:class:`TorchvisionMNIST` with images converted to RGB by default."""
    default_mode = "RGB"


class TorchvisionUSPSRGB(TorchvisionUSPS):
    """:class:`TorchvisionUSPS` with images converted to RGB by default."""
    default_mode = "RGB"


class TorchvisionSVHNRGB(TorchvisionSVHN):
    """:class:`TorchvisionSVHN` with images kept in RGB by default."""
    default_mode = "RGB"


#: ``-d TorchvisionDigits`` resolves its domains (``-s`` / ``-t``) through this mapping.
TORCHVISION_DIGITS = {cls.__name__[len('Torchvision'):]: cls for cls in (
    TorchvisionMNIST, TorchvisionUSPS, TorchvisionSVHN, TorchvisionMNISTRGB, TorchvisionUSPSRGB, TorchvisionSVHNRGB)}


class TorchvisionDigits:
    """``-d TorchvisionDigits``: a dispatcher, not a dataset of its own.

    ``Digits(root, task, ...)`` returns an instance of
    ``TORCHVISION_DIGITS[task]`` (so ``isinstance(ds, TorchvisionDigits)`` is false), which
    lets the registry build every dataset with ``cls(root, task, ...)``, as
    tllib's scripts do with ``-d Digits -s MNIST -t USPS``.

    Args:
        root (str): folder holding the files in torchvision's layout (see
            :class:`TorchvisionMNIST`, :class:`TorchvisionUSPS`, :class:`TorchvisionSVHN`).
        task (str): one of :meth:`domains`.
        split (str): ``'train'`` or ``'test'``.
        download (bool), transform, target_transform, mode: passed on.
    """

    def __new__(cls, root: str, task: str, split: str = "train", download: bool = True,
                transform: Optional[Callable] = None, target_transform: Optional[Callable] = None,
                mode: Optional[str] = None):
        if task not in TORCHVISION_DIGITS:
            raise UnknownDomainError("TorchvisionDigits", task, cls.domains())
        return TORCHVISION_DIGITS[task](root, mode=mode, split=split, download=download,
                                    transform=transform, target_transform=target_transform)

    @classmethod
    def domains(cls) -> List[str]:
        return list(TORCHVISION_DIGITS)
