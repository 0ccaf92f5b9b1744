"""The image-list benchmarks of tllib, with the same names, task keys, on-disk
layouts and download sources: Office-31, Office-Home, VisDA-2017, DomainNet;
plus Birds-31 (no tllib class, no public archive).

A missing domain is downloaded by default (``download=True``, as in tllib) from
the archives tllib's classes fetch, or from
:data:`~ila_tllib.datasets.benchmark.MIRROR_ENV` when it is set.  When that
fails, :class:`~ila_tllib.datasets.errors.DatasetNotFoundError` names the URL
tried and says what to put where.
"""
import os
from typing import List

from .benchmark import TSINGHUA as _TSINGHUA
from .benchmark import BenchmarkImageList
from .errors import DatasetFormatError
from .imagelist import read_class_names

__all__ = ["Office31", "OfficeHome", "VisDA2017", "DomainNet", "Birds31"]


class Office31(BenchmarkImageList):
    """Office-31 (Saenko et al., ECCV 2010): 31 office-object classes in three
    domains -- Amazon (2,817 images), DSLR (498) and Webcam (795).

    Args:
        root (str): ROOT below.
        task (str): ``'A'`` (amazon), ``'D'`` (dslr) or ``'W'`` (webcam).
        split (str): ignored; each domain is used whole, as in tllib.
        download (bool): fetch the missing archives (tllib's public ones, or
            :data:`~ila_tllib.datasets.benchmark.MIRROR_ENV`'s copies).
        transform, target_transform, mode, check_files: see
            :class:`~ila_tllib.datasets.imagelist.ImageList`.

    Layout on disk::

        ROOT/
            image_list/
                amazon.txt      # 'amazon/images/back_pack/frame_0001.jpg 0' lines
                dslr.txt
                webcam.txt
            amazon/images/<class>/*.jpg
            dslr/images/<class>/*.jpg
            webcam/images/<class>/*.jpg
    """

    title = "Office-31"
    source = ("Office-31 (Saenko et al., 'Adapting Visual Category Models to New Domains', "
              "ECCV 2010); tllib's image lists go in ROOT/image_list")
    image_list = {"A": "image_list/amazon.txt", "D": "image_list/dslr.txt", "W": "image_list/webcam.txt"}
    image_dirs = {"A": "amazon/images", "D": "dslr/images", "W": "webcam/images"}
    image_pattern = {"A": "amazon/images/<class>/<image>.jpg", "D": "dslr/images/<class>/<image>.jpg",
                     "W": "webcam/images/<class>/<image>.jpg"}
    download_list = [("image_list", "image_list.zip", _TSINGHUA.format("2c1dd9fbcaa9455aa4ad")),
                     ("amazon", "amazon.tgz", _TSINGHUA.format("ec12dfcddade43ab8101")),
                     ("dslr", "dslr.tgz", _TSINGHUA.format("a41d818ae2f34da7bb32")),
                     ("webcam", "webcam.tgz", _TSINGHUA.format("8a41009a166e4131adcd"))]
    CLASSES = ["back_pack", "bike", "bike_helmet", "bookcase", "bottle", "calculator", "desk_chair",
               "desk_lamp", "desktop_computer", "file_cabinet", "headphones", "keyboard",
               "laptop_computer", "letter_tray", "mobile_phone", "monitor", "mouse", "mug",
               "paper_notebook", "pen", "phone", "printer", "projector", "punchers", "ring_binder",
               "ruler", "scissors", "speaker", "stapler", "tape_dispenser", "trash_can"]
    NUM_CLASSES = 31


class OfficeHome(BenchmarkImageList):
    """Office-Home (Venkateswara et al., CVPR 2017): 65 classes of everyday
    objects in four domains -- Art, Clipart, Product and Real-World.

    The class names are read from the image lists (the folder holding each
    image), so they follow the label order of whichever lists you use;
    :attr:`CLASSES`, in the label order of tllib's lists (``Drill`` is 0), are
    the fall-back when the paths do not reveal the names.

    Args:
        root (str): ROOT below.
        task (str): ``'Ar'``, ``'Cl'``, ``'Pr'`` or ``'Rw'``.
        split, download, transform, target_transform, mode, check_files: as in
            :class:`Office31`.

    Layout on disk::

        ROOT/
            image_list/
                Art.txt  Clipart.txt  Product.txt  Real_World.txt
                         # 'Art/Alarm_Clock/00001.jpg <label>' lines
            Art/<class>/*.jpg
            Clipart/<class>/*.jpg
            Product/<class>/*.jpg
            Real_World/<class>/*.jpg
    """

    title = "Office-Home"
    source = ("Office-Home (Venkateswara et al., 'Deep Hashing Network for Unsupervised Domain "
              "Adaptation', CVPR 2017); tllib's image lists go in ROOT/image_list")
    image_list = {"Ar": "image_list/Art.txt", "Cl": "image_list/Clipart.txt",
                  "Pr": "image_list/Product.txt", "Rw": "image_list/Real_World.txt"}
    image_dirs = {"Ar": "Art", "Cl": "Clipart", "Pr": "Product", "Rw": "Real_World"}
    image_pattern = {task: folder + "/<class>/<image>.jpg" for task, folder in image_dirs.items()}
    download_list = [("image_list", "image_list.zip", _TSINGHUA.format("1b0171a188944313b1f5")),
                     ("Art", "Art.tgz", _TSINGHUA.format("6a006656b9a14567ade2")),
                     ("Clipart", "Clipart.tgz", _TSINGHUA.format("ae88aa31d2d7411dad79")),
                     ("Product", "Product.tgz", _TSINGHUA.format("f219b0ff35e142b3ab48")),
                     ("Real_World", "Real_World.tgz", _TSINGHUA.format("6c19f3f15bb24ed3951a"))]
    CLASSES = ["Drill", "Exit_Sign", "Bottle", "Glasses", "Computer", "File_Cabinet", "Shelf", "Toys",
               "Sink", "Laptop", "Kettle", "Folder", "Keyboard", "Flipflops", "Pencil", "Bed", "Hammer",
               "ToothBrush", "Couch", "Bike", "Postit_Notes", "Mug", "Webcam", "Desk_Lamp", "Telephone",
               "Helmet", "Mouse", "Pen", "Monitor", "Mop", "Sneakers", "Notebook", "Backpack",
               "Alarm_Clock", "Push_Pin", "Paper_Clip", "Batteries", "Radio", "Fan", "Ruler", "Pan",
               "Screwdriver", "Trash_Can", "Printer", "Speaker", "Eraser", "Bucket", "Chair",
               "Calendar", "Calculator", "Flowers", "Lamp_Shade", "Spoon", "Candles", "Clipboards",
               "Scissors", "TV", "Curtains", "Fork", "Soda", "Table", "Knives", "Oven", "Refrigerator",
               "Marker"]
    NUM_CLASSES = 65


class VisDA2017(BenchmarkImageList):
    """VisDA-2017 classification (Peng et al., 2017): 12 classes, synthetic
    renderings (``Synthetic``, the training split, ~152k images) to real photos
    (``Real``, the validation split, ~55k images).

    Args:
        root (str): ROOT below.
        task (str): ``'Synthetic'`` or ``'Real'``.
        split, download, transform, target_transform, mode, check_files: as in
            :class:`Office31`.

    Layout on disk::

        ROOT/
            image_list/
                train.txt          # 'train/aeroplane/<image>.png <label>' lines
                validation.txt     # 'validation/aeroplane/<image>.jpg <label>' lines
            train/<class>/*.png
            validation/<class>/*.jpg
    """

    title = "VisDA-2017"
    source = ("the VisDA-2017 classification challenge (Peng et al., 'VisDA: The Visual Domain "
              "Adaptation Challenge', 2017); tllib's image lists go in ROOT/image_list")
    image_list = {"Synthetic": "image_list/train.txt", "Real": "image_list/validation.txt"}
    image_dirs = {"Synthetic": "train", "Real": "validation"}
    image_pattern = {"Synthetic": "train/<class>/<image>.png", "Real": "validation/<class>/<image>.jpg"}
    download_list = [("image_list", "image_list.zip", _TSINGHUA.format("c107de37b8094c5398dc")),
                     ("train", "train.tgz", _TSINGHUA.format("c5f3ce59139144ec8221")),
                     ("validation", "validation.tgz", _TSINGHUA.format("da70e4b1cf514ecea562"))]
    CLASSES = ["aeroplane", "bicycle", "bus", "car", "horse", "knife", "motorcycle", "person",
               "plant", "skateboard", "train", "truck"]
    NUM_CLASSES = 12


class DomainNet(BenchmarkImageList):
    """DomainNet (Peng et al., 'Moment Matching for Multi-Source Domain
    Adaptation', ICCV 2019): 345 classes in six domains, each with a train and
    a test split.

    The 345 class names are not spelled out here: they are read from the
    image lists (the folder holding each image, e.g. ``clipart/aircraft_carrier/``);
    a label that a list never uses is named by its number.

    Args:
        root (str): ROOT below.
        task (str): ``'c'`` (clipart), ``'i'`` (infograph), ``'p'`` (painting),
            ``'q'`` (quickdraw), ``'r'`` (real) or ``'s'`` (sketch).
        split (str): ``'train'`` or ``'test'``.
        download, transform, target_transform, mode, check_files: as in
            :class:`Office31`.

    Layout on disk::

        ROOT/
            image_list/
                clipart_train.txt  clipart_test.txt  ...  sketch_test.txt
                         # 'clipart/aircraft_carrier/clipart_001_000001.jpg 0' lines
            clipart/<class>/*.jpg
            infograph/<class>/*.jpg
            painting/<class>/*.jpg
            quickdraw/<class>/*.png
            real/<class>/*.jpg
            sketch/<class>/*.jpg
    """

    title = "DomainNet"
    source = ("DomainNet (Peng et al., 'Moment Matching for Multi-Source Domain Adaptation', "
              "ICCV 2019); tllib's image lists go in ROOT/image_list")
    _names = {"c": "clipart", "i": "infograph", "p": "painting", "q": "quickdraw", "r": "real",
              "s": "sketch"}
    image_list = {task: "image_list/" + name + "_{split}.txt" for task, name in _names.items()}
    image_dirs = dict(_names)
    image_pattern = {task: name + "/<class>/<image>" + (".png" if task == "q" else ".jpg")
                     for task, name in _names.items()}
    download_list = [("image_list", "image_list.zip", _TSINGHUA.format("bf0fe327e4b046eb89ba")),
                     ("clipart", "clipart.tgz", _TSINGHUA.format("f0515164a4864220b98b")),
                     ("infograph", "infograph.tgz", _TSINGHUA.format("98b19d5fc9884109a9cb")),
                     ("painting", "painting.tgz", _TSINGHUA.format("11285ce9fbd34bb7b28c")),
                     ("quickdraw", "quickdraw.tgz", _TSINGHUA.format("6faa9efb498b494abf66")),
                     ("real", "real.tgz", _TSINGHUA.format("17a101842c564959b525")),
                     ("sketch", "sketch.tgz", _TSINGHUA.format("b305add26e9d47349495"))]
    NUM_CLASSES = 345
    splits = ("train", "test")


class Birds31(BenchmarkImageList):
    """Birds-31 (Wang et al., 'Progressive Adversarial Networks for
    Fine-Grained Domain Adaptation', CVPR 2020): 31 bird species shared by three
    sources -- ``C`` (a CUB-200-2011 subset), ``I`` (an iNaturalist 2017 subset)
    and ``N`` (a NABirds subset).

    Layout chosen here (there is no tllib version to match)::

        ROOT/
            classes.txt          # optional: 31 lines, line i = name of label i
            image_list/
                C.txt            # 'relative/path label' lines, label in 0..30
                I.txt
                N.txt
            ...images anywhere under ROOT, as the lists say...

    Without ``classes.txt`` the classes are named ``'0'``..``'30'``.

    Args:
        root (str): ROOT above.
        task (str): ``'C'``, ``'I'`` or ``'N'``.
        split, download, transform, target_transform, mode, check_files: as in
            :class:`Office31`.
    """

    title = "Birds-31"
    source = ("Birds-31 (Wang et al., 'Progressive Adversarial Networks for Fine-Grained Domain "
              "Adaptation', CVPR 2020), built from CUB-200-2011, iNaturalist 2017 and NABirds")
    image_list = {"C": "image_list/C.txt", "I": "image_list/I.txt", "N": "image_list/N.txt"}
    image_dirs = {"C": None, "I": None, "N": None}
    image_pattern = {task: "<any/relative/path>.jpg" for task in image_list}
    download_list = [("image_list", "image_list.zip", None)]
    NUM_CLASSES = 31
    derive_class_names = False

    @classmethod
    def layout(cls, task: str, split: str = "train") -> List[str]:
        return super().layout(task, split) + [
            "ROOT/classes.txt             optional, 31 class names, one per line"]

    def _initial_classes(self, root: str) -> List[str]:
        classes_file = os.path.join(root, "classes.txt")
        if not os.path.isfile(classes_file):
            return [str(i) for i in range(self.NUM_CLASSES)]
        names = read_class_names(classes_file)
        if len(names) != self.NUM_CLASSES:
            raise DatasetFormatError("{}: Birds31 needs {} class names, one per line; found {}".format(
                classes_file, self.NUM_CLASSES, len(names)))
        return names
