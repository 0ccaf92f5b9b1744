"""The ``-d`` table and the helpers the training scripts use: :func:`build_domain` (``-d NAME -s
DOMAIN``), :func:`read_labels`, :func:`class_names` and :func:`num_classes`.

Every name tllib's image-classification adaptation scripts accept is known here:

- tllib's adaptation datasets are built as its scripts build them; their class comes from
  :mod:`ila_tllib.backend` (tllib's own when tllib imports, their archives fetched here from the
  addresses in tllib's classes, staged; else ours, in tllib's layout and from tllib's download sources),
  so the backend alone decides;
- tllib's digit classes are the domains of ``-d Digits``, and its single-domain datasets (for
  fine-tuning) end with a message saying so;
- ``ImageList``, ``ImageFolder``, ``OfflineDigits``, ``Birds31`` and ``TorchvisionDigits`` are
  this package's own.
"""
import os
import tarfile
import zipfile
from typing import Callable, Dict, List, Optional, Sequence

from torch.utils.data import ConcatDataset, Dataset, Subset

from .benchmark import download_advice, fetch_missing, stall_timeout
from .digits import DIGIT_DOMAINS
from .errors import DatasetError, DatasetNotFoundError, UnknownDatasetError, UnknownDomainError, not_found_message
from .imagelist import ImageFolderDomains, ImageListDomains, check_files_exist
from .office import Birds31
from .offline_digits import OfflineDigits
from .torchvision_digits import TorchvisionDigits

__all__ = ["DATASETS", "NOT_FOR_ADAPTATION", "dataset_name", "get_dataset_names", "list_domains", "find_domain",
           "build_domain", "val_is_test", "read_labels", "class_names", "num_classes"]

SPLITS = ("train", "val", "test")   # the roles a script builds: training set, validation set, test set


def _piece(name: str):
    from .. import backend   # at call time: importing the backend must not import tllib
    return getattr(backend, name)


def _ours(name: str):
    from .. import standalone
    return getattr(standalone, name)


def _layout(name: str) -> List[str]:
    return ["ROOT/{}/   (from {})".format(folder, archive) for folder, archive, _ in _ours(name).download_list]


def _tllib_stopped(name: str, root: str, download: bool, cause: Optional[BaseException] = None
                   ) -> DatasetNotFoundError:
    """tllib's dataset classes ``exit()`` when a download fails or a folder is missing, or let the
    download's or the file system's error through (``cause``): say which archive and URL (the same facts
    our class of that name carries) and what to do."""
    entries = _ours(name).download_list
    missing = [entry for entry in entries if not os.path.exists(os.path.join(root, entry[0]))] or entries
    folder, archive, url = missing[0]     # tllib fetches every domain's archive, so every missing one is needed
    why = "tllib's own message is above" if cause is None else "{}: {}".format(
        type(cause).__name__, str(cause).strip().splitlines()[0] if str(cause).strip() else "")
    if download:
        note = "tllib's {} could not download {} from {} ({}). {}".format(
            name, archive, url, why, download_advice(name, missing))
    else:
        note = "tllib's {} stopped: ROOT/{} is missing and the download is off.".format(name, folder)
    path = os.path.join(root, folder)
    return DatasetNotFoundError(not_found_message(name, path, root, _layout(name), _ours(name).source, note),
                                path=path)


def _build_with_backend(name: str, root: str, **kwargs) -> Dataset:
    """``backend.<name>(root=root, **kwargs)``, with tllib's exits turned into our message and its lists
    checked for missing images now rather than in the middle of training."""
    cls = _piece(name)
    if cls.__module__.startswith("tllib."):
        if not kwargs.get("download"):
            # tllib 0.4's download=False path fails on its own (a TypeError): check here, then let it
            # skip its downloads because everything is present
            if any(not os.path.exists(os.path.join(root, entry[0])) for entry in _ours(name).download_list):
                raise _tllib_stopped(name, root, download=False)
            kwargs["download"] = True
        else:
            # tllib's classes download and unpack straight into ROOT (a download cut off, or a damaged archive
            # put there by hand, leaves a half-unpacked folder that looks finished; a tar member may land
            # outside ROOT) and know no mirror: every archive missing is fetched first, from the mirror or
            # tllib's own address, unpacked staged and checked; tllib's class then finds its folders in place
            entries = getattr(cls, "download_list", None) or _ours(name).download_list
            failure = fetch_missing(root, entries, name)
            if failure:
                path = next((os.path.join(root, folder) for folder, _, _ in _ours(name).download_list
                             if not os.path.exists(os.path.join(root, folder))), root)
                raise DatasetNotFoundError(not_found_message(name, path, root, _layout(name), _ours(name).source,
                                                             failure), path=path)
    try:
        with stall_timeout():
            dataset = cls(root=root, **kwargs)
    except SystemExit:
        raise _tllib_stopped(name, root, kwargs.get("download", False)) from None
    except (OSError, EOFError, RuntimeError, tarfile.TarError, zipfile.BadZipFile) as err:
        if not cls.__module__.startswith("tllib.") or isinstance(err, DatasetError):
            raise     # our own classes' errors already say what to do
        # some of tllib's classes download through torchvision or ImageNet's loader, which raise instead
        raise _tllib_stopped(name, root, kwargs.get("download", False), err) from None
    if not getattr(dataset, "files_checked", False) and hasattr(dataset, "data_list_file"):
        check_files_exist([(path, label, i + 1) for i, (path, label) in enumerate(dataset.samples)],
                          dataset.data_list_file)
    return dataset


class TllibDataset:
    """A dataset of tllib's adaptation scripts (``dataset(root, task, download=True, transform)``).

    Args:
        name: the class name, in :mod:`tllib.vision.datasets` and in :mod:`ila_tllib.backend`.
        test_split: the ``split`` tllib's scripts pass for the test set (DomainNet: ``'test'``);
            None: the test set is the validation set, the target domain whole.
    """

    takes_mode = False

    def __init__(self, name: str, test_split: Optional[str] = None):
        self.name, self.test_split = name, test_split

    def domains(self, root: Optional[str]) -> List[str]:
        return list(_piece(self.name).domains())

    def val_is_test(self) -> bool:
        return self.test_split is None

    def build(self, root, domain, split, **kwargs):
        extra = {"split": self.test_split} if split == "test" and self.test_split else {}
        return _build_with_backend(self.name, root, task=domain, **extra, **kwargs)


class TllibDigits:
    """``-d Digits``: each domain is tllib's dataset of that name in ``ROOT/<domain>``; the target is
    validated and tested on its test split, as tllib's scripts do."""

    takes_mode = False
    source_only = ("SVHN", "SVHNRGB")   # one list and no test split in tllib

    def domains(self, root: Optional[str]) -> List[str]:
        return list(DIGIT_DOMAINS)

    def val_is_test(self) -> bool:
        return True

    def build(self, root, domain, split, **kwargs):
        if split != "train" and domain in self.source_only:
            raise DatasetError("-d Digits: {} has no test split (tllib's list is one class-balanced training "
                               "set), so it can only be the source; choose the target among {}".format(
                                   domain, ", ".join(d for d in DIGIT_DOMAINS if d not in self.source_only)))
        extra = {} if split == "train" else {"split": "test"}
        return _build_with_backend(domain, os.path.join(root, domain), **extra, **kwargs)


class OwnDataset:
    """One of this package's datasets: ``cls(root, domain, split='train'|'test', ...)``."""

    takes_mode = True

    def __init__(self, cls, domains_on_disk: bool = False):
        self.cls, self.domains_on_disk = cls, domains_on_disk

    def domains(self, root: Optional[str]) -> List[str]:
        if not self.domains_on_disk:
            return self.cls.domains()
        if root is None:
            raise ValueError("{} finds its domains on disk; pass root".format(self.cls.__name__))
        return self.cls.domains(root)

    def val_is_test(self) -> bool:
        return True

    def build(self, root, domain, split, **kwargs):
        return self.cls(root, domain, split="train" if split == "train" else "test", **kwargs)


#: ``-d`` name -> how it is built.
DATASETS: Dict[str, object] = {
    "Office31": TllibDataset("Office31"),
    "OfficeHome": TllibDataset("OfficeHome"),
    "VisDA2017": TllibDataset("VisDA2017"),
    "DomainNet": TllibDataset("DomainNet", test_split="test"),
    "OfficeCaltech": TllibDataset("OfficeCaltech"),
    "PACS": TllibDataset("PACS"),
    "ImageNetR": TllibDataset("ImageNetR"),
    "ImageNetSketch": TllibDataset("ImageNetSketch"),
    "Digits": TllibDigits(),
    "ImageList": OwnDataset(ImageListDomains, domains_on_disk=True),
    "ImageFolder": OwnDataset(ImageFolderDomains, domains_on_disk=True),
    "OfflineDigits": OwnDataset(OfflineDigits),
    "Birds31": OwnDataset(Birds31),
    "TorchvisionDigits": OwnDataset(TorchvisionDigits),
}

_SINGLE_DOMAIN = ("Aircraft", "CIFAR10", "CIFAR100", "COCO70", "CUB200", "Caltech101", "DTD", "EuroSAT", "Food101",
                  "OxfordFlowers102", "OxfordIIITPets", "PatchCamelyon", "Resisc45", "Retinopathy", "SUN397",
                  "StanfordCars", "StanfordDogs")
#: The other names in :mod:`tllib.vision.datasets` that tllib's adaptation scripts list, and why ``-d``
#: does not build them.
NOT_FOR_ADAPTATION: Dict[str, str] = {
    **{name: "{0} is one of tllib's digit domains: use -d Digits -s {0} -t <another digit domain> (tllib's "
             "scripts build it that way too)".format(name) for name in DIGIT_DOMAINS},
    **{name: "tllib's {} is a single-domain dataset (for fine-tuning), not a domain-adaptation task; tllib's "
             "adaptation scripts list it but cannot build it. For two domains of your own images use -d ImageList "
             "or -d ImageFolder".format(name) for name in _SINGLE_DOMAIN},
}


def get_dataset_names() -> List[str]:
    """The ``-d`` names that build a task, in table order."""
    return list(DATASETS)


def _match(name: str, valid: Sequence[str]) -> Optional[str]:
    """``name`` itself when valid, else its unique case-insensitive match
    (so ``-s a`` finds Office-31's ``A``), else None."""
    if name in valid:
        return name
    folded = [v for v in valid if v.lower() == str(name).lower()]
    return folded[0] if len(folded) == 1 else None


def dataset_name(data_name: str) -> str:
    """The ``-d`` name as the table spells it (``office31`` finds ``Office31``); raises a
    :class:`DatasetError` naming the fix for a name that builds no task."""
    found = _match(data_name, list(DATASETS))
    if found is not None:
        return found
    other = _match(data_name, list(NOT_FOR_ADAPTATION))
    if other is not None:
        raise DatasetError("-d {}: {}".format(data_name, NOT_FOR_ADAPTATION[other]))
    raise UnknownDatasetError(data_name, DATASETS)


def list_domains(data_name: str, root: Optional[str] = None) -> List[str]:
    """The domains of a dataset.  ``ImageList`` / ``ImageFolder`` find theirs
    under ``root`` (and raise DatasetNotFoundError when there are none)."""
    return DATASETS[dataset_name(data_name)].domains(root)


def val_is_test(data_name: str) -> bool:
    """Whether the scripts validate and test on the same target set (all but DomainNet, which tllib
    validates on the target's training split and tests on its test split)."""
    return DATASETS[dataset_name(data_name)].val_is_test()


def build_domain(data_name: str, root: str, domain: str, split: str = "train",
                 transform: Optional[Callable] = None, download: bool = True, mode: Optional[str] = None,
                 **kwargs) -> Dataset:
    """Build one domain of a dataset, as tllib's scripts build it.

    Args:
        data_name (str): a key of :data:`DATASETS` (``-d``).
        root (str): the dataset root.
        domain (str): the task key (``-s`` / ``-t``), e.g. ``'A'`` for
            Office31, ``'MNIST'`` for Digits, a list stem for ImageList.
        split (str): the role: ``'train'`` (training set), ``'val'`` or ``'test'`` (the target's
            validation and test sets; they differ for DomainNet and the digits, whose target is
            evaluated on its test split).
        transform (callable, optional): image transform.
        download (bool): allow downloading (OfflineDigits: exporting) missing data.
        mode (str, optional): ``'L'`` / ``'RGB'`` for this package's own datasets; tllib's decide
            for themselves, as in tllib (the digits by their name, e.g. ``MNISTRGB``).
        **kwargs: passed on, e.g. ``target_transform``.

    Returns:
        the dataset; its class names are ``dataset.classes``
        (see :func:`class_names`, :func:`num_classes`).

    Raises:
        UnknownDatasetError: ``data_name`` is not known (lists the valid ones).
        UnknownDomainError: ``domain`` is not a domain of it (lists the valid ones).
        DatasetNotFoundError, DatasetFormatError, DatasetError: from the dataset itself.
    """
    if split not in SPLITS:
        raise ValueError("build_domain: split must be one of {}, got {!r}".format(", ".join(SPLITS), split))
    spec = DATASETS[dataset_name(data_name)]
    if spec.takes_mode:
        kwargs["mode"] = mode
    return spec.build(root, find_domain(data_name, root, domain), split, download=download, transform=transform,
                      **kwargs)


def find_domain(data_name: str, root: Optional[str], domain: str) -> str:
    """The domain ``-s`` / ``-t`` ``domain`` names, as the dataset spells it (``a`` finds Office-31's ``A``);
    raises :class:`UnknownDomainError` listing the valid ones, or the dataset's reason why a folder of that
    name holds no domain."""
    name = dataset_name(data_name)
    spec = DATASETS[name]
    valid = spec.domains(root)
    found = _match(domain, valid)
    if found is None:
        # a folder of that name that holds no domain: say why, not "unknown domain" (asked only on this path)
        explain = getattr(getattr(spec, "cls", None), "why_not_a_domain", None)
        problem = explain(root, domain) if explain is not None and root is not None else None
        raise problem or UnknownDomainError(name, domain, valid)
    return found


def read_labels(dataset: Dataset) -> List[int]:
    """The integer label of every sample, in order, as a batch carries it (after the dataset's
    ``target_transform``, e.g. tllib's PACS shifting 1..7 to 0..6), without decoding any image.

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
        labels = [sample[1] for sample in samples]
    else:
        for attribute in ("targets", "labels"):
            labels = getattr(dataset, attribute, None)
            if labels is not None:
                labels = labels.tolist() if hasattr(labels, "tolist") else list(labels)   # tensor / ndarray
                break
        else:
            raise TypeError("read_labels: cannot read labels of {} without decoding images (it has no "
                            "samples, targets or labels)".format(type(dataset).__name__))
    shift = getattr(dataset, "target_transform", None)
    return [int(shift(label)) if shift is not None else int(label) for label in labels]


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
