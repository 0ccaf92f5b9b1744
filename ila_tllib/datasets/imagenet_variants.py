"""ImageNet-R and ImageNet-Sketch as tllib's adaptation tasks from ImageNet: tllib's lists (downloaded
as tllib does) over images you put in place yourself (ImageNet's licence forbids redistribution)."""
from .benchmark import TSINGHUA, BenchmarkImageList

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
    the WordNet ids, read from the listed paths (tllib reads ImageNet's readable names from its
    ``meta.bin``).
    """

    title = "ImageNet-Sketch"
    source = "ImageNet-Sketch (Wang et al., NeurIPS 2019) and ImageNet-1K" + _BY_HAND.format("sketch/")
    image_list = {"IN": "image_list/imagenet-train.txt", "IN-val": "image_list/imagenet-val.txt",
                  "sketch": "image_list/sketch.txt"}
    image_dirs = {"IN": "train", "IN-val": "val", "sketch": "sketch"}
    image_pattern = {task: folder + "/<wnid>/<image>" for task, folder in image_dirs.items()}
    download_list = _LISTS
    NUM_CLASSES = 1000
