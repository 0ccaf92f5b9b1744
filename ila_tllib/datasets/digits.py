"""Digit datasets (MNIST, USPS, SVHN and their RGB variants) with tllib's
class names and call signature, read through torchvision.

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

from .errors import DatasetNotFoundError, UnknownDomainError, not_found_message

__all__ = ["MNIST", "USPS", "SVHN", "MNISTRGB", "USPSRGB", "SVHNRGB", "Digits", "DIGIT_DATASETS", "DIGIT_CLASSES"]

#: The ten class names, label i first (same spelling as tllib's digits).
DIGIT_CLASSES = ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four",
                 "5 - five", "6 - six", "7 - seven", "8 - eight", "9 - nine"]


class _TorchvisionDigits(VisionDataset):
    """Common part of the digit datasets; see :class:`MNIST` for the arguments."""

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
        try:
            # Only let torchvision go to the network when something is missing,
            # so a complete offline copy never triggers a connection attempt.
            self.data_source = self._open(root, split, download=bool(missing))
        except Exception as err:  # torchvision raises RuntimeError / URLError / OSError
            what = "Automatic download failed" if missing else "Reading the files failed"
            self._not_found(root, split, missing[0] if missing else root,
                            "{}: {}: {}".format(what, type(err).__name__, str(err).strip()), cause=err)
        self.targets: List[int] = [int(t) for t in self._raw_targets()]

    # -------------------------------------------------------------- subclass hooks
    @classmethod
    def expected_files(cls, root: str, split: str) -> List[str]:
        """The files torchvision needs for ``split`` (absolute paths)."""
        raise NotImplementedError

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


class MNIST(_TorchvisionDigits):
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
    def layout(cls, split):
        return ["ROOT/MNIST/raw/" + name + "   (unpacked from " + name + ".gz)" for name in cls._FILES]

    def _open(self, root, split, download):
        return torchvision.datasets.MNIST(root, train=(split == "train"), download=download)


class USPS(_TorchvisionDigits):
    """USPS handwritten digits (Hull 1994): 7,291 train / 2,007 test grey 16x16
    images, 10 classes.

    Args: as :class:`MNIST`.

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


class SVHN(_TorchvisionDigits):
    """SVHN street-view house numbers (Netzer et al. 2011): 73,257 train /
    26,032 test colour 32x32 crops, 10 classes (digit 0 is label 0).

    Args: as :class:`MNIST`; ``split`` may also be ``'extra'``.

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


class MNISTRGB(MNIST):
    """:class:`MNIST` with images converted to RGB by default."""
    default_mode = "RGB"


class USPSRGB(USPS):
    """:class:`USPS` with images converted to RGB by default."""
    default_mode = "RGB"


class SVHNRGB(SVHN):
    """:class:`SVHN` with images kept in RGB by default."""
    default_mode = "RGB"


#: ``-d Digits`` resolves its domains (``-s`` / ``-t``) through this mapping.
DIGIT_DATASETS = {cls.__name__: cls for cls in (MNIST, USPS, SVHN, MNISTRGB, USPSRGB, SVHNRGB)}


class Digits:
    """``-d Digits``: a dispatcher, not a dataset of its own.

    ``Digits(root, task, ...)`` returns an instance of
    ``DIGIT_DATASETS[task]`` (so ``isinstance(ds, Digits)`` is false), which
    lets the registry build every dataset with ``cls(root, task, ...)``, as
    tllib's scripts do with ``-d Digits -s MNIST -t USPS``.

    Args:
        root (str): folder holding the files in torchvision's layout (see
            :class:`MNIST`, :class:`USPS`, :class:`SVHN`).
        task (str): one of :meth:`domains`.
        split (str): ``'train'`` or ``'test'``.
        download (bool), transform, target_transform, mode: passed on.
    """

    def __new__(cls, root: str, task: str, split: str = "train", download: bool = True,
                transform: Optional[Callable] = None, target_transform: Optional[Callable] = None,
                mode: Optional[str] = None):
        if task not in DIGIT_DATASETS:
            raise UnknownDomainError("Digits", task, cls.domains())
        return DIGIT_DATASETS[task](root, mode=mode, split=split, download=download,
                                    transform=transform, target_transform=target_transform)

    @classmethod
    def domains(cls) -> List[str]:
        return list(DIGIT_DATASETS)
