"""tllib's digit datasets -- MNIST, USPS, SVHN and their RGB variants -- as tllib stores them: PNG
images plus image lists, fetched from the archives tllib's classes download.

``-d Digits -s MNIST -t USPS`` builds ``MNIST(ROOT/MNIST)`` and ``USPS(ROOT/USPS)``, as tllib's
scripts do (one folder per domain name, so ``MNISTRGB`` has a folder of its own). Layout of one
domain folder (MNIST shown; USPS alike; SVHN has one list, ``svhn_balanced.txt``, and no test split)::

    ROOT/MNIST/
        image_list/mnist_train.txt   mnist_test.txt   # '<image path> <label>' lines
        mnist_train_image/...                          # unpacked from mnist_image.tar.gz
"""
from typing import Optional

from .benchmark import TSINGHUA, BenchmarkImageList

__all__ = ["DIGIT_CLASSES", "MNIST", "USPS", "SVHN", "MNISTRGB", "USPSRGB", "SVHNRGB", "DIGIT_DOMAINS"]

#: The ten class names, label i first (tllib's spelling).
DIGIT_CLASSES = ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four",
                 "5 - five", "6 - six", "7 - seven", "8 - eight", "9 - nine"]


class _DigitList(BenchmarkImageList):
    """One digit domain; ``split`` selects the list (tllib's signature: ``root, mode, split, download``)."""

    CLASSES = DIGIT_CLASSES
    NUM_CLASSES = 10
    derive_class_names = False
    image_mode = "L"

    def __init__(self, root: str, mode: Optional[str] = None, split: str = "train", download: bool = True,
                 transform=None, target_transform=None, check_files: bool = True):
        if split not in self.image_list:
            raise ValueError("{}: unknown split {!r}; valid splits are: {}".format(
                type(self).__name__, split, ", ".join(self.image_list)))
        super().__init__(root, split, split, download, transform, target_transform, mode, check_files)


class MNIST(_DigitList):
    """MNIST (LeCun et al. 1998): grey 28x28 handwritten digits, tllib's PNG export and lists."""
    title = "MNIST"
    source = "MNIST (LeCun et al. 1998), as tllib exports it to PNG files"
    image_list = {"train": "image_list/mnist_train.txt", "test": "image_list/mnist_test.txt"}
    image_dirs = {"train": "mnist_train_image", "test": "mnist_train_image"}
    image_pattern = {"train": "mnist_train_image/<image>.png", "test": "<path as listed>.png"}
    download_list = [("image_list", "image_list.zip", TSINGHUA.format("16feadf7fb3641c2be9a")),
                     ("mnist_train_image", "mnist_image.tar.gz", TSINGHUA.format("c93080af28e54559aeeb"))]


class USPS(_DigitList):
    """USPS (Hull 1994): grey 16x16 handwritten digits, tllib's PNG export and lists."""
    title = "USPS"
    source = "USPS (Hull 1994), as tllib exports it to PNG files"
    image_list = {"train": "image_list/usps_train.txt", "test": "image_list/usps_test.txt"}
    image_dirs = {"train": "usps_train_image", "test": "usps_train_image"}
    image_pattern = {"train": "usps_train_image/<image>.png", "test": "<path as listed>.png"}
    download_list = [("image_list", "image_list.zip", TSINGHUA.format("721ceaf3c031413cb62f")),
                     ("usps_train_image", "usps_image.tar.gz", TSINGHUA.format("c5bd329a00fb4dc79608"))]


class SVHN(_DigitList):
    """SVHN (Netzer et al. 2011): house-number crops, tllib's class-balanced list; no test split
    (tllib's scripts use it as a source only)."""
    title = "SVHN"
    source = "SVHN (Netzer et al. 2011), tllib's class-balanced selection exported to PNG files"
    image_list = {"train": "image_list/svhn_balanced.txt"}
    image_dirs = {"train": "svhn_image"}
    image_pattern = {"train": "svhn_image/<image>.png"}
    download_list = [("image_list", "image_list.zip", TSINGHUA.format("12b35fb08f8049f98362")),
                     ("svhn_image", "svhn_image.tar.gz", TSINGHUA.format("cc02de6cf81543378cce"))]


class MNISTRGB(MNIST):
    """:class:`MNIST` with RGB images."""
    image_mode = "RGB"


class USPSRGB(USPS):
    """:class:`USPS` with RGB images."""
    image_mode = "RGB"


class SVHNRGB(SVHN):
    """:class:`SVHN` with RGB images."""
    image_mode = "RGB"


#: ``-d Digits`` domains by name.
DIGIT_DOMAINS = {cls.__name__: cls for cls in (MNIST, USPS, SVHN, MNISTRGB, USPSRGB, SVHNRGB)}
