"""Datasets of ``ila_tllib``: tllib's benchmarks under the same names and
on-disk layouts, readers for own data, and digits that ship inside PyPI
packages for runs without any download.

===============  =====================================  ===========================
``-d`` name      domains (``-s`` / ``-t``)              class
===============  =====================================  ===========================
Office31         A, D, W                                :class:`Office31`
OfficeHome       Ar, Cl, Pr, Rw                         :class:`OfficeHome`
VisDA2017        Synthetic, Real                        :class:`VisDA2017`
DomainNet        c, i, p, q, r, s                       :class:`DomainNet`
Digits           MNIST, USPS, SVHN, MNISTRGB, ...       :data:`DIGIT_DATASETS`
Birds31          C, I, N                                :class:`Birds31`
ImageList        stems of ROOT/image_list/*.txt         :class:`ImageListDomains`
ImageFolder      folders ROOT/<domain>/<class>/         :class:`ImageFolderDomains`
OfflineDigits    mnist, uci                             :class:`OfflineDigits`
===============  =====================================  ===========================

Use :func:`build_domain` to get one domain by name.
"""
import warnings

# `python -m ila_tllib.datasets.offline_digits` runs a module that importing
# this package has already loaded; runpy warns about that, harmlessly here
# (the CLI uses only its own copy).  Silence exactly that message.
warnings.filterwarnings("ignore", category=RuntimeWarning,
                        message=r"'ila_tllib\.datasets\.offline_digits' found in sys\.modules")

from .benchmark import MIRROR_ENV, BenchmarkImageList
from .digits import DIGIT_CLASSES, DIGIT_DATASETS, MNIST, MNISTRGB, SVHN, SVHNRGB, USPS, USPSRGB, Digits
from .errors import (DatasetError, DatasetFormatError, DatasetNotFoundError, UnknownDatasetError,
                     UnknownDomainError)
from .imagelist import ImageFolderDomains, ImageList, ImageListDomains
from .office import Birds31, DomainNet, Office31, OfficeHome, VisDA2017
from .offline_digits import OfflineDigits, export_offline_digits
from .registry import (DATASETS, build_domain, class_names, get_dataset_names, list_domains, num_classes,
                       read_labels)

__all__ = [
    "ImageList", "ImageListDomains", "ImageFolderDomains", "BenchmarkImageList",
    "Office31", "OfficeHome", "VisDA2017", "DomainNet", "Birds31",
    "MNIST", "USPS", "SVHN", "MNISTRGB", "USPSRGB", "SVHNRGB", "Digits", "DIGIT_DATASETS", "DIGIT_CLASSES",
    "OfflineDigits", "export_offline_digits",
    "DATASETS", "get_dataset_names", "list_domains", "build_domain", "read_labels", "class_names",
    "num_classes",
    "DatasetError", "DatasetNotFoundError", "DatasetFormatError", "UnknownDatasetError", "UnknownDomainError",
    "MIRROR_ENV",
]
