"""ImageNet-R and ImageNet-Sketch as tllib's adaptation tasks from ImageNet: tllib's lists (downloaded
as tllib does) over images you put in place yourself (ImageNet's licence forbids redistribution)."""
import os

from .benchmark import TSINGHUA, BenchmarkImageList
from .errors import DatasetFormatError

__all__ = ["ImageNetR", "ImageNetSketch"]

# ImageNet-R and ImageNet-Sketch share one archive of lists
_LISTS = [("image_list", "image_list.zip", TSINGHUA.format("7786eabd3565409c8c33"))]
_BY_HAND = ("; only the image lists are downloaded: put ImageNet-1K's train/ and val/ folders (and {}) "
            "into ROOT yourself")


class ImageNetR(BenchmarkImageList):
    """ImageNet-R (Hendrycks et al., 'The Many Faces of Robustness', ICCV 2021): 200 ImageNet
    classes as renditions (art, cartoons, sketches, ...).

    Tasks: ``IN`` (ImageNet train), ``IN-val``, ``INR`` (all of ImageNet-R) and one task per
    rendition (``art``, ``cartoon``, ...). ``split`` is ignored (tllib's scripts use each task
    whole). Class names are the WordNet ids, read from the listed paths.
    """

    title = "ImageNet-R"
    source = "ImageNet-R (Hendrycks et al., ICCV 2021) and ImageNet-1K" + _BY_HAND.format("imagenet-r/")
    _styles = ["art", "embroidery", "misc", "sculpture", "tattoo", "cartoon", "graffiti", "origami", "sketch",
               "toy", "deviantart", "graphic", "painting", "sticker", "videogame"]
    # tllib's paths: the rendition lists sit in ROOT itself, not in image_list/
    image_list = {"IN": "image_list/imagenet-train.txt", "IN-val": "image_list/imagenet-val.txt",
                  "INR": "image_list/imagenet-r.txt", **{style: style + ".txt" for style in _styles}}
    image_dirs = {"IN": "train", "IN-val": "val", **{task: "imagenet-r" for task in ["INR"] + _styles}}
    image_pattern = {task: folder + "/<wnid>/<image>" for task, folder in image_dirs.items()}
    download_list = _LISTS
    NUM_CLASSES = 200


class ImageNetSketch(BenchmarkImageList):
    """ImageNet-Sketch (Wang et al., 'Learning Robust Global Representations by Penalizing Local
    Predictive Power', NeurIPS 2019): sketches of the 1,000 ImageNet classes.

    Tasks: ``IN`` (ImageNet train), ``IN-val``, ``sketch``. ``split`` is ignored. Class names are
    ImageNet's readable names when ``ROOT/meta.bin`` (torchvision's ImageNet meta file, which tllib
    reads) is there, as tllib names them (a tuple per class, e.g. ``('tench', 'Tinca tinca')``); the
    WordNet ids read from the listed paths otherwise.
    """

    title = "ImageNet-Sketch"
    source = "ImageNet-Sketch (Wang et al., NeurIPS 2019) and ImageNet-1K" + _BY_HAND.format("sketch/")
    image_list = {"IN": "image_list/imagenet-train.txt", "IN-val": "image_list/imagenet-val.txt",
                  "sketch": "image_list/sketch.txt"}
    image_dirs = {"IN": "train", "IN-val": "val", "sketch": "sketch"}
    image_pattern = {task: folder + "/<wnid>/<image>" for task, folder in image_dirs.items()}
    download_list = _LISTS
    NUM_CLASSES = 1000

    def __init__(self, root: str, task: str, *args, **kwargs):
        super().__init__(root, task, *args, **kwargs)
        readable = readable_imagenet_names(os.path.join(os.path.expanduser(root), "meta.bin"))
        if readable:
            self.classes = [readable.get(name, name) for name in self.classes]
            self.class_to_idx = {name: i for i, name in enumerate(self.classes)}


def readable_imagenet_names(path: str) -> dict:
    """WordNet id -> ImageNet's names for it, from torchvision's ImageNet ``meta.bin`` at ``path``; {} when
    there is none."""
    if not os.path.isfile(path):
        return {}
    import torch   # the datasets need torch only for this file
    try:
        wnid_to_names = torch.load(path, weights_only=True)[0]
        return {wnid: tuple(names) for wnid, names in wnid_to_names.items()}
    except Exception as err:
        raise DatasetFormatError(f"{path} is not torchvision's ImageNet meta file (reading it: {type(err).__name__}); "
                                 "remove it to name the classes by their WordNet ids, or write it again with "
                                 "torchvision.datasets.ImageNet") from err
