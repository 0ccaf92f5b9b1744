"""Office-Caltech (Gong et al., 'Geodesic Flow Kernel for Unsupervised Domain Adaptation', CVPR 2012)
in tllib's layout and from tllib's download source: one folder per domain, one sub-folder per class."""
import os
from typing import List, Optional

from torchvision.datasets import VisionDataset

from .benchmark import TSINGHUA, fetch_missing
from .errors import DatasetFormatError, DatasetNotFoundError, UnknownDomainError, not_found_message
from .imagelist import ImageFolderDomains

__all__ = ["OfficeCaltech"]


class OfficeCaltech(ImageFolderDomains):
    """The 10 classes Office-31 shares with Caltech-256, in four domains.

    Args:
        root (str): ROOT below.
        task (str): ``'A'`` (amazon), ``'D'`` (dslr), ``'W'`` (webcam) or ``'C'`` (caltech).
        split (str): ignored; each domain is used whole.
        download (bool): fetch tllib's archive (all four domains) when a domain folder is missing.
        transform, target_transform, mode: see :class:`~ila_tllib.datasets.imagelist.ImageList`.

    Layout on disk::

        ROOT/amazon/<class>/*.jpg   ROOT/dslr/...   ROOT/webcam/...   ROOT/caltech/...
    """

    directories = {"A": "amazon", "D": "dslr", "W": "webcam", "C": "caltech"}
    CLASSES = ["back_pack", "bike", "calculator", "headphones", "keyboard", "laptop_computer", "monitor", "mouse",
               "mug", "projector"]
    # one archive holds the four domain folders
    download_list = [(folder, "office-caltech.tgz", TSINGHUA.format("eea518fa781a41d1b20e"))
                     for folder in directories.values()]
    source = "Office-Caltech (Gong et al., 'Geodesic Flow Kernel for Unsupervised Domain Adaptation', CVPR 2012)"

    def __init__(self, root: str, task: str, split: str = "train", download: bool = True, transform=None,
                 target_transform=None, mode: Optional[str] = None, check_files: bool = True):
        root = os.path.expanduser(root)
        if task not in self.directories:
            raise UnknownDomainError("OfficeCaltech", task, self.domains())
        domain_dir = os.path.join(root, self.directories[task])
        if not os.path.isdir(domain_dir):
            note = fetch_missing(root, self.download_list, "OfficeCaltech") if download else \
                "Automatic download is disabled (download=False)."
            if not os.path.isdir(domain_dir):
                raise DatasetNotFoundError(not_found_message(
                    "OfficeCaltech", domain_dir, root, self.layout(), self.source, note), path=domain_dir)
        VisionDataset.__init__(self, root, transform=transform, target_transform=target_transform)
        self.task, self.split = task, split
        self.mode = mode or self.image_mode
        self.classes = list(self.CLASSES)
        self.class_to_idx = {name: i for i, name in enumerate(self.classes)}
        self.data_list_file = domain_dir
        self.samples = self._scan(domain_dir)
        self.files_checked = True
        if not self.samples:
            raise DatasetFormatError("{}: no image under {}/<class>/ for the classes {}".format(
                domain_dir, domain_dir, ", ".join(self.classes)))

    @classmethod
    def domains(cls) -> List[str]:
        return list(cls.directories)

    @classmethod
    def layout(cls) -> List[str]:
        return ["ROOT/{}/<class>/<image>.jpg".format(folder) for folder in cls.directories.values()]
