"""What feeds the model, against an installed tllib: the datasets (the same facts, the same samples),
the transforms (pixel-equal) and the ResNet backbones (same outputs, the same V1 weights file).
Skipped where tllib is not importable."""
import inspect
import os

import numpy as np
import pytest
import torch
from PIL import Image

from ila_tllib import backend
from ila_tllib import datasets as D
from ila_tllib import standalone as sa
from ila_tllib.models import TLLIB_RESNETS, get_model, resnet_weights
from ila_tllib.transforms import get_train_transform, get_val_transform

from test_datasets import TLLIB_DATASET_NAMES

DATASET_PIECES = ["Office31", "OfficeHome", "VisDA2017", "DomainNet", "OfficeCaltech", "PACS", "ImageNetR",
                  "ImageNetSketch", "MNIST", "USPS", "SVHN", "MNISTRGB", "USPSRGB", "SVHNRGB"]


# ------------------------------------------------------------------ datasets

def test_dataset_names_are_tllibs(tl):
    import tllib.vision.datasets as tllib_datasets
    import typing
    offered = sorted(name for name, value in vars(tllib_datasets).items()   # as its scripts' get_dataset_names
                     if not name.startswith("__") and callable(value)
                     and not getattr(typing, name, None) is value and inspect.isclass(value)) + ["Digits"]
    assert sorted(offered) == sorted(TLLIB_DATASET_NAMES)


@pytest.mark.parametrize("name", DATASET_PIECES)
def test_dataset_facts_match(tl, name):
    ours, theirs = getattr(sa, name), tl[name]
    if name == "OfficeCaltech":       # its one archive is named in its code, not in a table
        source = inspect.getsource(theirs)
        assert all(archive in source and url in source for _, archive, url in ours.download_list)
        assert ours.directories == theirs.directories and ours.CLASSES == theirs.CLASSES
        return
    assert [tuple(entry) for entry in ours.download_list] == [tuple(entry) for entry in theirs.download_list]
    lists = theirs.image_list
    if name in ("DomainNet",):
        lists = {task: "image_list/{}_{{split}}.txt".format(stem) for task, stem in lists.items()}
    elif name == "PACS":
        lists = {task: path.replace("{}", "{split}") for task, path in lists.items()}
    elif name.startswith("SVHN"):
        lists = {"train": lists}
    assert ours.image_list == lists
    if ours.CLASSES:   # the fall-back names, in the label order of tllib's lists
        assert list(ours.CLASSES) == list(theirs.CLASSES)
    if name not in ("MNIST", "USPS", "SVHN", "MNISTRGB", "USPSRGB", "SVHNRGB"):
        assert ours.domains() == theirs.domains()


def _office31(root):
    for i, (cls, label) in enumerate([("back_pack", 0), ("mug", 17), ("trash_can", 30)]):
        rel = "webcam/images/{}/frame_{:04d}.jpg".format(cls, i)
        os.makedirs(os.path.dirname(os.path.join(root, rel)), exist_ok=True)
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (9, 7, 3), dtype=np.uint8)).save(
            os.path.join(root, rel))
        with open(os.path.join(root, "image_list", "webcam.txt"), "a") as f:
            f.write("{} {}\n".format(rel, label))
    for folder in ("amazon", "dslr"):     # tllib checks every domain's folder
        os.makedirs(os.path.join(root, folder))


def _pacs(root):
    for folder in ("art_painting", "cartoon", "photo", "sketch"):
        os.makedirs(os.path.join(root, folder))
    for i, (cls, label) in enumerate([("dog", 1), ("house", 6), ("person", 7)]):
        rel = "photo/{}/{}.jpg".format(cls, i)
        os.makedirs(os.path.dirname(os.path.join(root, rel)), exist_ok=True)
        Image.new("RGB", (6, 5), (30 * i, 10, 200)).save(os.path.join(root, rel))
        with open(os.path.join(root, "image_list", "photo_all.txt"), "a") as f:
            f.write("{} {}\n".format(rel, label))


@pytest.mark.parametrize("name, domain, make", [("Office31", "W", _office31), ("PACS", "P", _pacs)])
def test_built_datasets_give_the_same_samples(tl, tmp_path, monkeypatch, name, domain, make):
    root = str(tmp_path / name)
    os.makedirs(os.path.join(root, "image_list"))
    make(root)
    built = {}
    for pieces in ("standalone", "tllib"):
        monkeypatch.setenv(backend.ENV_VAR, pieces)
        monkeypatch.setattr(backend, "_chosen", None)
        built[pieces] = D.build_domain(name, root, domain, split="val")
    ours, theirs = built["standalone"], built["tllib"]
    assert type(theirs).__module__.startswith("tllib.") and not type(ours).__module__.startswith("tllib.")
    assert [path for path, _ in ours.samples] == [path for path, _ in theirs.samples]
    assert D.read_labels(ours) == D.read_labels(theirs)
    assert D.class_names(ours) == D.class_names(theirs)
    for i in range(len(ours)):
        (a, label_a), (b, label_b) = ours[i], theirs[i]
        assert label_a == label_b and np.array_equal(np.asarray(a), np.asarray(b))


def test_parse_data_file_gives_tllibs_pairs(tl, tmp_path):
    # tllib's ImageList.parse_data_file (public: code written against tllib calls it) on the same list
    import tllib.vision.datasets.imagelist as tllib_imagelist
    os.makedirs(tmp_path / "a")
    for name in ("x.png", "y.png"):
        Image.new("L", (4, 4)).save(tmp_path / "a" / name)
    listed = tmp_path / "list.txt"
    listed.write_text(f"a/x.png 1\n{tmp_path / 'a' / 'y.png'} 0\n")
    ours = D.ImageList(str(tmp_path), ["zero", "one"], str(listed))
    theirs = tllib_imagelist.ImageList(str(tmp_path), ["zero", "one"], str(listed))
    assert ours.parse_data_file(str(listed)) == theirs.parse_data_file(str(listed)) == theirs.samples


def test_imagenet_sketch_names_its_classes_as_tllib_does(tl, tmp_path):
    # tllib names the classes through torchvision's ImageNet(root): ROOT/meta.bin and the train/ folder
    root = tmp_path / "sketch"
    names = {"n01440764": ("tench", "Tinca tinca"), "n01443537": ("goldfish", "Carassius auratus")}
    os.makedirs(root / "image_list")
    torch.save((names, []), str(root / "meta.bin"))
    with open(root / "image_list" / "sketch.txt", "w") as f:
        for label, wnid in enumerate(sorted(names)):
            for folder in ("train", "sketch"):
                os.makedirs(root / folder / wnid)
                Image.new("RGB", (6, 5), (40 * label, 10, 200)).save(str(root / folder / wnid / "0.JPEG"))
            f.write(f"sketch/{wnid}/0.JPEG {label}\n")
    theirs = tl["ImageNetSketch"](str(root), "sketch")
    ours = sa.ImageNetSketch(str(root), "sketch", download=False)
    assert len(theirs.classes) == len(names) and ours.classes[:len(names)] == theirs.classes
    assert D.read_labels(ours) == [label for _, label in theirs.samples]


# ------------------------------------------------------------------ transforms

def _tllib_transform(resizing, train, resize_size, hflip, mean, std):
    """tllib's scripts' composition, from tllib's ResizeImage and torchvision's crops."""
    import torchvision.transforms as T
    from tllib.vision.transforms import ResizeImage
    resize = {"default": T.Compose([ResizeImage(256), T.RandomResizedCrop(224) if train else T.CenterCrop(224)]),
              "cen.crop": T.Compose([ResizeImage(256), T.CenterCrop(224)]),
              "ran.crop": T.Compose([ResizeImage(256), T.RandomCrop(224)]),
              "res.": ResizeImage(resize_size)}[resizing]        # one step alone, not composed
    flip = [T.RandomHorizontalFlip()] if hflip else []
    return T.Compose([resize] + flip + [T.ToTensor(), T.Normalize(mean, std)])


@pytest.mark.parametrize("mode, size", [("RGB", (300, 241)), ("L", (17, 40))])
@pytest.mark.parametrize("resizing, train, resize_size, hflip", [
    ("default", True, 224, True), ("default", False, 224, False), ("cen.crop", True, 224, False),
    ("ran.crop", True, 224, True), ("res.", True, 32, False), ("res.", False, 28, False)])
def test_transforms_are_pixel_equal(tl, mode, size, resizing, train, resize_size, hflip):
    rng = np.random.default_rng(1)
    image = Image.fromarray(rng.integers(0, 255, size[::-1] + ((3,) if mode == "RGB" else ()), dtype=np.uint8), mode)
    mean, std = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)) if mode == "RGB" else ((0.5,), (0.5,))
    ours = get_train_transform(resizing, hflip=hflip, resize_size=resize_size, norm_mean=mean, norm_std=std) \
        if train else get_val_transform(resizing, resize_size=resize_size, norm_mean=mean, norm_std=std)
    theirs = _tllib_transform(resizing, train, resize_size, hflip, mean, std)
    assert repr(ours) == repr(theirs)          # the log's train_transform: and val_transform: lines
    for seed in range(3):           # the random crops and flips draw the same numbers
        torch.manual_seed(seed)
        a = ours(image)
        torch.manual_seed(seed)
        b = theirs(image)
        assert a.shape[0] == len(mean) and torch.equal(a, b)


# ------------------------------------------------------------------ backbones

#: torchvision's ``model_urls`` of tllib's time (0.10), which tllib 0.4's ResNets download from
TLLIB_ERA_FILES = {"resnet18": "resnet18-f37072fd.pth", "resnet34": "resnet34-b627a593.pth",
                   "resnet50": "resnet50-0676ba61.pth", "resnet101": "resnet101-63fe2227.pth",
                   "resnet152": "resnet152-394f9c45.pth", "resnext50_32x4d": "resnext50_32x4d-7cdf4587.pth",
                   "resnext101_32x8d": "resnext101_32x8d-8ba56ff5.pth",
                   "wide_resnet50_2": "wide_resnet50_2-95faca4d.pth",
                   "wide_resnet101_2": "wide_resnet101_2-32ee1156.pth"}


def test_resnet_matches_tllibs_and_loads_the_file_tllib_loads(tl):
    import torchvision.models.resnet as resnet_module
    from tllib.vision.models import resnet18
    assert set(TLLIB_RESNETS) == set(TLLIB_ERA_FILES)
    for arch, file in TLLIB_ERA_FILES.items():   # tllib's model_urls (put back by the backend), and our v1
        assert resnet_module.model_urls[arch] == resnet_weights(arch, "v1").url == \
            "https://download.pytorch.org/models/" + file
    theirs = resnet18(pretrained=False).eval()
    ours = get_model("resnet18", scratch=True).eval()
    missing, unexpected = ours.load_state_dict(theirs.state_dict(), strict=False)
    assert not missing and unexpected == ["fc.weight", "fc.bias"]     # tllib keeps the unused fc layer
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(ours(x), theirs(x)) and ours.out_features == theirs.out_features
