"""PACS (Li et al., 'Deeper, Broader and Artier Domain Generalization', ICCV 2017) in tllib's
layout, with tllib's lists and download source."""
from typing import Optional

from .benchmark import TSINGHUA, BenchmarkImageList

__all__ = ["PACS"]


class PACS(BenchmarkImageList):
    """PACS: 7 classes in four domains -- Art painting, Cartoon, Photo, Sketch.

    Args:
        root (str): ROOT below.
        task (str): ``'A'``, ``'C'``, ``'P'`` or ``'S'``.
        split (str): ``'all'`` (default, what tllib's adaptation scripts use), ``'train'``,
            ``'val'``; ``'test'`` means ``'all'``, as in tllib.
        download, transform, target_transform, mode, check_files: as in
            :class:`~ila_tllib.datasets.office.Office31`.

    The lists number the classes from 1 (tllib shifts them with a target transform); here the
    labels are shifted when the list is read, so ``samples`` and batches both carry 0..6.

    Layout on disk::

        ROOT/
            image_list/art_painting_{all,train,val}.txt  cartoon_*.txt  photo_*.txt  sketch_*.txt
            art_painting/<class>/*.jpg   cartoon/...   photo/...   sketch/...
    """

    title = "PACS"
    source = "PACS (Li et al., 'Deeper, Broader and Artier Domain Generalization', ICCV 2017)"
    _folders = {"A": "art_painting", "C": "cartoon", "P": "photo", "S": "sketch"}
    image_list = {task: "image_list/" + folder + "_{split}.txt" for task, folder in _folders.items()}
    image_dirs = dict(_folders)
    image_pattern = {task: folder + "/<class>/<image>.jpg" for task, folder in _folders.items()}
    download_list = [("image_list", "image_list.zip", TSINGHUA.format("603a1fea81f2415ab7e0")),
                     ("art_painting", "art_painting.tgz", TSINGHUA.format("46684292e979402b8d87")),
                     ("cartoon", "cartoon.tgz", TSINGHUA.format("7bfa413b34ec4f4fa384")),
                     ("photo", "photo.tgz", TSINGHUA.format("45f71386a668475d8b42")),
                     ("sketch", "sketch.tgz", TSINGHUA.format("4ba559535e4b4b6981e5"))]
    CLASSES = ["dog", "elephant", "giraffe", "guitar", "horse", "house", "person"]
    NUM_CLASSES = 7
    first_label = 1
    derive_class_names = False
    splits = ("all", "train", "val")

    def __init__(self, root: str, task: str, split: str = "all", download: bool = True, transform=None,
                 target_transform=None, mode: Optional[str] = None, check_files: bool = True):
        super().__init__(root, task, "all" if split == "test" else split, download, transform, target_transform,
                         mode, check_files)
