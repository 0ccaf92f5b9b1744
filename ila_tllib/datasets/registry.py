"""Name -> dataset registry and the helpers the training scripts use:
:func:`build_domain` (``-d NAME -s DOMAIN``), :func:`read_labels`,
:func:`class_names` and :func:`num_classes`.
"""
from typing import Callable, Dict, List, Optional, Sequence

from torch.utils.data import ConcatDataset, Dataset, Subset

from .digits import DIGIT_DATASETS, Digits
from .errors import UnknownDatasetError, UnknownDomainError
from .imagelist import ImageFolderDomains, ImageListDomains
from .office import Birds31, DomainNet, Office31, OfficeHome, VisDA2017
from .offline_digits import OfflineDigits

__all__ = ["DATASETS", "DIGIT_DATASETS", "get_dataset_names", "list_domains", "build_domain",
           "read_labels", "class_names", "num_classes"]

#: ``-d`` name -> class.  Every class is built as ``cls(root, domain, split=...,
#: download=..., transform=..., **kwargs)``.
DATASETS: Dict[str, type] = {
    "Office31": Office31,
    "OfficeHome": OfficeHome,
    "VisDA2017": VisDA2017,
    "DomainNet": DomainNet,
    "Digits": Digits,
    "Birds31": Birds31,
    "ImageList": ImageListDomains,
    "ImageFolder": ImageFolderDomains,
    "OfflineDigits": OfflineDigits,
}

# Datasets whose domains are discovered on disk, so listing them needs ROOT.
_DISCOVERED = {"ImageList", "ImageFolder"}


def get_dataset_names() -> List[str]:
    """The registered dataset names, in registry order."""
    return list(DATASETS)


def _match(name: str, valid: Sequence[str]) -> Optional[str]:
    """``name`` itself when valid, else its unique case-insensitive match
    (so ``-s a`` finds Office-31's ``A``), else None."""
    if name in valid:
        return name
    folded = [v for v in valid if v.lower() == str(name).lower()]
    return folded[0] if len(folded) == 1 else None


def _dataset_name(data_name: str) -> str:
    found = _match(data_name, list(DATASETS))
    if found is None:
        raise UnknownDatasetError(data_name, DATASETS)
    return found


def list_domains(data_name: str, root: Optional[str] = None) -> List[str]:
    """The domains of a dataset.  ``ImageList`` / ``ImageFolder`` find theirs
    under ``root`` (and raise DatasetNotFoundError when there are none)."""
    name = _dataset_name(data_name)
    if name in _DISCOVERED:
        if root is None:
            raise ValueError("{} finds its domains on disk; pass root".format(name))
        return DATASETS[name].domains(root)
    return DATASETS[name].domains()


def build_domain(data_name: str, root: str, domain: str, split: str = "train",
                 transform: Optional[Callable] = None, download: bool = True, **kwargs) -> Dataset:
    """Build one domain of a dataset.

    Args:
        data_name (str): a key of :data:`DATASETS` (``-d``).
        root (str): the dataset root.
        domain (str): the task key (``-s`` / ``-t``), e.g. ``'A'`` for
            Office31, ``'MNIST'`` for Digits, a list stem for ImageList.
        split (str): ``'train'`` or ``'test'``; only DomainNet and the digits
            datasets have splits, the others use the whole domain for both.
        transform (callable, optional): image transform.
        download (bool): allow downloading (OfflineDigits: exporting) missing data.
        **kwargs: passed on, e.g. ``target_transform``, ``mode`` (``'L'`` /
            ``'RGB'``) or ``check_files``.

    Returns:
        the dataset; its class names are ``dataset.classes``
        (see :func:`class_names`, :func:`num_classes`).

    Raises:
        UnknownDatasetError: ``data_name`` is not registered (lists the valid ones).
        UnknownDomainError: ``domain`` is not a domain of it (lists the valid ones).
        DatasetNotFoundError, DatasetFormatError: from the dataset itself.
    """
    name = _dataset_name(data_name)
    valid = list_domains(name, root)
    found = _match(domain, valid)
    if found is None:
        raise UnknownDomainError(name, domain, valid)
    return DATASETS[name](root, found, split=split, download=download, transform=transform, **kwargs)


def read_labels(dataset: Dataset) -> List[int]:
    """The integer label of every sample, in order, without decoding any image.

    Works for the ImageList-based datasets (``samples``), the digit datasets
    and torchvision datasets with ``targets`` or ``labels``, and for
    :class:`~torch.utils.data.Subset` / :class:`~torch.utils.data.ConcatDataset`
    of those.
    """
    if isinstance(dataset, Subset):
        inner = read_labels(dataset.dataset)
        return [inner[int(i)] for i in dataset.indices]
    if isinstance(dataset, ConcatDataset):
        return [label for part in dataset.datasets for label in read_labels(part)]
    samples = getattr(dataset, "samples", None)
    if isinstance(samples, list):
        return [int(sample[1]) for sample in samples]
    for attribute in ("targets", "labels"):
        values = getattr(dataset, attribute, None)
        if values is not None:
            if hasattr(values, "tolist"):  # tensor / ndarray
                values = values.tolist()
            return [int(v) for v in values]
    raise TypeError("read_labels: cannot read labels of {} without decoding images (it has no "
                    "samples, targets or labels)".format(type(dataset).__name__))


def class_names(dataset: Dataset) -> List[str]:
    """The class names of a built dataset (label i is ``class_names(ds)[i]``)."""
    while isinstance(dataset, Subset):
        dataset = dataset.dataset
    if isinstance(dataset, ConcatDataset):
        dataset = dataset.datasets[0]
    return list(dataset.classes)


def num_classes(dataset: Dataset) -> int:
    """The number of classes of a built dataset."""
    return len(class_names(dataset))
