"""Datasets of ``ila_tllib``: every dataset tllib's adaptation scripts accept, under the same
names, on-disk layouts and download sources; readers for own data; and digits that ship inside
PyPI packages for runs without any download.

=================  =====================================  ====================================
``-d`` name        domains (``-s`` / ``-t``)              built by
=================  =====================================  ====================================
Office31           A, D, W                                tllib's class, else :class:`Office31`
OfficeHome         Ar, Cl, Pr, Rw                         tllib's class, else :class:`OfficeHome`
VisDA2017          Synthetic, Real                        tllib's class, else :class:`VisDA2017`
DomainNet          c, i, p, q, r, s                       tllib's class, else :class:`DomainNet`
OfficeCaltech      A, D, W, C                             tllib's class, else :class:`OfficeCaltech`
PACS               A, C, P, S                             tllib's class, else :class:`PACS`
ImageNetR          IN, IN-val, INR, art, cartoon, ...     tllib's class, else :class:`ImageNetR`
ImageNetSketch     IN, IN-val, sketch                     tllib's class, else :class:`ImageNetSketch`
Digits             MNIST, USPS, SVHN, MNISTRGB, ...       tllib's classes, else :mod:`.digits`
ImageList          stems of ROOT/image_list/*.txt         :class:`ImageListDomains`
ImageFolder        folders ROOT/<domain>/<class>/         :class:`ImageFolderDomains`
OfflineDigits      mnist, uci, mnistm, syn, street, scan  :class:`OfflineDigits`
Birds31            C, I, N                                :class:`Birds31`
TorchvisionDigits  MNIST, USPS, SVHN, MNISTRGB, ...       :class:`TorchvisionDigits`
=================  =====================================  ====================================

"tllib's class" means :mod:`ila_tllib.backend` found tllib; the choice is the backend's alone.
Use :func:`build_domain` to get one domain by name.
"""
import warnings

# `python -m ila_tllib.datasets.offline_digits` runs a module that importing
# this package has already loaded; runpy warns about that, harmlessly here
# (the CLI uses only its own copy).  Silence exactly that message.
warnings.filterwarnings("ignore", category=RuntimeWarning,
                        message=r"'ila_tllib\.datasets\.offline_digits' found in sys\.modules")

from .benchmark import MIRROR_ENV, BenchmarkImageList
from .digits import DIGIT_CLASSES, DIGIT_DOMAINS, MNIST, MNISTRGB, SVHN, SVHNRGB, USPS, USPSRGB
from .errors import (DatasetError, DatasetFormatError, DatasetNotFoundError, UnknownDatasetError,
                     UnknownDomainError)
from .imagelist import ImageFolderDomains, ImageList, ImageListDomains
from .imagenet_variants import ImageNetR, ImageNetSketch
from .office import Birds31, DomainNet, Office31, OfficeHome, VisDA2017
from .office_caltech import OfficeCaltech
from .offline_digits import OfflineDigits, export_offline_digits
from .pacs import PACS
from .registry import (DATASETS, NOT_FOR_ADAPTATION, build_domain, class_names, dataset_name, find_domain,
                       get_dataset_names, list_domains, num_classes, read_labels, val_is_test)
from .torchvision_digits import TORCHVISION_DIGITS, TorchvisionDigits

__all__ = [
    "ImageList", "ImageListDomains", "ImageFolderDomains", "BenchmarkImageList",
    "Office31", "OfficeHome", "VisDA2017", "DomainNet", "OfficeCaltech", "PACS", "ImageNetR", "ImageNetSketch",
    "Birds31", "MNIST", "USPS", "SVHN", "MNISTRGB", "USPSRGB", "SVHNRGB", "DIGIT_DOMAINS", "DIGIT_CLASSES",
    "TorchvisionDigits", "TORCHVISION_DIGITS", "OfflineDigits", "export_offline_digits",
    "DATASETS", "NOT_FOR_ADAPTATION", "dataset_name", "get_dataset_names", "list_domains", "find_domain",
    "build_domain",
    "val_is_test", "read_labels", "class_names", "num_classes",
    "DatasetError", "DatasetNotFoundError", "DatasetFormatError", "UnknownDatasetError", "UnknownDomainError",
    "MIRROR_ENV",
]
