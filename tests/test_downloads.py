"""Downloads as users meet them: tllib's archives (zip and tar, tllib's names) served from a local HTTP
server on 127.0.0.1 through the real download path, into tllib's layout; and the one message a failed
download ends with. Nothing here leaves the machine."""
import os
import re

import pytest
import torch
import torchvision

from ila_tllib import datasets as D

from helpers import make_office31_archives, only_log, refused_url, run_script, serve_directory


def _labels(lines):
    return [int(line.split()[-1]) for line in lines]


def _local_urls(cls, base):
    """The class's download_list with each URL moved to ``base`` (kept in tllib's '?dl=1' form)."""
    return [(folder, archive, "{}/{}?dl=1".format(base, archive)) for folder, archive, _ in cls.download_list]


def test_office31_downloads_what_the_task_needs_into_tllibs_layout(tmp_path, monkeypatch, standalone_pieces):
    lists = make_office31_archives(tmp_path / "share")
    root = tmp_path / "office31"
    with serve_directory(tmp_path / "share") as base:
        monkeypatch.setattr(D.Office31, "download_list", _local_urls(D.Office31, base))
        webcam = D.build_domain("Office31", str(root), "W")
        assert sorted(os.listdir(root)) == ["image_list", "webcam"]     # only W's archives, unpacked, removed
        amazon = D.build_domain("Office31", str(root), "A")              # image_list is there: only amazon.tgz
    assert sorted(os.listdir(root)) == ["amazon", "image_list", "webcam"]
    assert D.read_labels(webcam) == _labels(lists["webcam"]) and D.read_labels(amazon) == _labels(lists["amazon"])
    image, label = webcam[1]
    assert image.size == (10, 12) and label == _labels(lists["webcam"])[1] and webcam.classes[30] == "trash_can"


def test_a_cut_off_archive_leaves_nothing_that_looks_finished(tmp_path, monkeypatch, standalone_pieces):
    lists = make_office31_archives(tmp_path / "share")
    archive = tmp_path / "share" / "amazon.tgz"
    whole = archive.read_bytes()
    archive.write_bytes(whole[:len(whole) // 2])                   # a download cut off half-way
    root = tmp_path / "office31"
    with serve_directory(tmp_path / "share") as base:
        monkeypatch.setattr(D.Office31, "download_list", _local_urls(D.Office31, base))
        with pytest.raises(D.DatasetNotFoundError, match="Automatic download of amazon.tgz from .* failed"):
            D.build_domain("Office31", str(root), "A")
        assert sorted(os.listdir(root)) == ["image_list"]         # no half-unpacked amazon/, no partial archive
        archive.write_bytes(whole)                                # the next try fetches it again, whole
        assert D.read_labels(D.build_domain("Office31", str(root), "A")) == _labels(lists["amazon"])


def test_mirror_variable_replaces_the_public_urls(tmp_path, monkeypatch, standalone_pieces):
    make_office31_archives(tmp_path / "mirror" / "Office31")
    with serve_directory(tmp_path / "mirror") as base:
        monkeypatch.setenv(D.MIRROR_ENV, base + "/")
        assert len(D.build_domain("Office31", str(tmp_path / "office31"), "D")) == 6


def test_offline_message_names_the_url_the_layout_and_the_ways_out(tmp_path, monkeypatch, standalone_pieces):
    url = refused_url("image_list.zip?dl=1")
    monkeypatch.setattr(D.Office31, "download_list", [("image_list", "image_list.zip", url)] +
                        list(D.Office31.download_list[1:]))
    root = tmp_path / "office31"
    with pytest.raises(D.DatasetNotFoundError) as err:
        D.build_domain("Office31", str(root), "A")
    message = str(err.value)
    assert "Automatic download of image_list.zip from {} failed".format(url) in message
    assert "ROOT = {}".format(root) in message and "image_list/amazon.txt" in message
    # one failed run names every archive to fetch, with its address: A's first, then the other domains'
    needed, others = message.split("by hand")[1].split("The other domains' archives")
    assert "image_list.zip ({}) for ROOT/image_list/".format(url) in needed
    amazon, dslr, webcam = (dict((a, u) for _, a, u in D.Office31.download_list)[name]
                            for name in ("amazon.tgz", "dslr.tgz", "webcam.tgz"))
    assert "amazon.tgz ({}) for ROOT/amazon/".format(amazon) in needed and "dslr.tgz" not in needed
    assert "dslr.tgz ({}) for ROOT/dslr/".format(dslr) in others and "webcam.tgz ({})".format(webcam) in others
    assert "{}=<base url or folder> holding <base>/Office31/<archive>".format(D.MIRROR_ENV) in message
    assert "-d ImageList" in message and "-d OfflineDigits" in message
    assert not os.path.exists(root / "image_list.zip")          # no partial archive left to be taken for whole
    assert not os.path.exists(root)                              # nor the empty ROOT the download made


def test_a_mirror_without_the_archive_points_at_the_public_addresses(tmp_path, monkeypatch, standalone_pieces):
    (tmp_path / "mirror").mkdir()
    monkeypatch.setenv(D.MIRROR_ENV, str(tmp_path / "mirror"))
    with pytest.raises(D.DatasetNotFoundError) as err:
        D.build_domain("Office31", str(tmp_path / "office31"), "W")
    message = str(err.value)
    mirrored = str(tmp_path / "mirror" / "Office31" / "image_list.zip")
    assert "Automatic download of image_list.zip from {} failed".format(mirrored) in message
    # the address to fetch by hand is the public one, not the mirror's that just failed
    public = dict((a, u) for _, a, u in D.Office31.download_list)["image_list.zip"]
    assert "image_list.zip ({}) for ROOT/image_list/".format(public) in message
    assert "Or put them in {}/Office31/ (set by {}), or unset {}".format(
        tmp_path / "mirror", D.MIRROR_ENV, D.MIRROR_ENV) in message
    assert "Or set {}".format(D.MIRROR_ENV) not in message


@pytest.mark.parametrize("mirror", [False, True])
def test_an_archive_without_a_public_address_is_put_in_place_by_hand(tmp_path, monkeypatch, standalone_pieces, mirror):
    # Birds-31's image lists have no public address: nothing to fetch by hand from, nothing to fall back on
    if mirror:
        (tmp_path / "mirror").mkdir()
        monkeypatch.setenv(D.MIRROR_ENV, str(tmp_path / "mirror"))
    with pytest.raises(D.DatasetNotFoundError) as err:
        D.build_domain("Birds31", str(tmp_path / "birds31"), "C")
    message = str(err.value)
    assert "Put ROOT/image_list/ in place by hand (no public address is known)." in message
    assert "Fetch by hand" not in message and "unset" not in message
    assert ("Or put them in {}/Birds31/".format(tmp_path / "mirror") in message) == mirror


def test_one_archive_of_several_domains_is_named_once(tmp_path, monkeypatch, standalone_pieces):
    url = refused_url("office-caltech.tgz")
    monkeypatch.setattr(D.OfficeCaltech, "download_list", [(f, a, url) for f, a, _ in D.OfficeCaltech.download_list])
    with pytest.raises(D.DatasetNotFoundError) as err:
        D.build_domain("OfficeCaltech", str(tmp_path / "oc"), "A")
    message = str(err.value)
    assert message.count("office-caltech.tgz ({})".format(url)) == 1
    assert "for ROOT/amazon/, ROOT/dslr/, ROOT/webcam/, ROOT/caltech/" in message


def test_archives_put_in_root_by_hand_are_unpacked_offline(tmp_path, monkeypatch, standalone_pieces):
    lists = make_office31_archives(tmp_path / "office31")        # image_list.zip, webcam.tgz, ... in ROOT itself
    monkeypatch.setattr(D.Office31, "download_list", [(folder, archive, refused_url(archive))
                                                      for folder, archive, _ in D.Office31.download_list])
    webcam = D.build_domain("Office31", str(tmp_path / "office31"), "W")
    assert D.read_labels(webcam) == _labels(lists["webcam"])
    # with a local mirror set as well, the archive put in ROOT wins (it was refused: the mirror's was missing)
    lists = make_office31_archives(tmp_path / "again")
    monkeypatch.setenv(D.MIRROR_ENV, str(tmp_path / "no_mirror"))
    dslr = D.build_domain("Office31", str(tmp_path / "again"), "D")
    assert D.read_labels(dslr) == _labels(lists["dslr"])


def test_a_damaged_archive_put_in_root_by_hand_is_named_and_left_unpacked(tmp_path, monkeypatch, backend):
    # with tllib's class too: tllib would unpack it straight into ROOT, leave a half-filled webcam/ that
    # looks finished, and name another archive
    from ila_tllib import backend as pieces, standalone
    monkeypatch.setenv(pieces.ENV_VAR, backend)
    monkeypatch.setattr(pieces, "_chosen", None)
    root = tmp_path / "office31"
    lists = make_office31_archives(root)
    whole = (root / "webcam.tgz").read_bytes()
    (root / "webcam.tgz").write_bytes(whole[:len(whole) // 2])
    entries = [(folder, archive, refused_url(archive)) for folder, archive, _ in standalone.Office31.download_list]
    for cls in {pieces.Office31, standalone.Office31}:
        monkeypatch.setattr(cls, "download_list", entries)
    with pytest.raises(D.DatasetNotFoundError) as err:
        D.build_domain("Office31", str(root), "W")
    assert "ROOT/webcam.tgz, put there by hand, cannot be unpacked (EOFError" in str(err.value)
    assert "Automatic download" not in str(err.value)     # nothing was downloaded
    assert not (root / "webcam").exists() and not any(name.startswith(".webcam") for name in os.listdir(root))
    (root / "webcam.tgz").write_bytes(whole)              # replaced: the next run unpacks it
    assert D.read_labels(D.build_domain("Office31", str(root), "W")) == _labels(lists["webcam"])


def test_every_dataset_carries_a_public_source(standalone_pieces):
    for name in ("Office31", "OfficeHome", "VisDA2017", "DomainNet", "OfficeCaltech", "PACS", "ImageNetR",
                 "ImageNetSketch", "MNIST", "USPS", "SVHN", "MNISTRGB", "USPSRGB", "SVHNRGB"):
        cls = getattr(D, name)
        assert cls.download_list and all(url.startswith("https://") for _, _, url in cls.download_list), name


# ------------------------------------------------------------------ tllib's own classes

def test_tllib_office31_downloads_from_tllibs_addresses_staged(tmp_path, monkeypatch, tllib_pieces):
    # tllib's class reads the data; its archives come from the addresses in its own download_list, each
    # unpacked in a staging folder before tllib looks (tllib unpacks straight into ROOT)
    from ila_tllib import backend
    lists = make_office31_archives(tmp_path / "share")
    root = tmp_path / "office31"
    with serve_directory(tmp_path / "share") as base:
        monkeypatch.setattr(backend.Office31, "download_list", _local_urls(backend.Office31, base))
        dataset = D.build_domain("Office31", str(root), "W")
    assert type(dataset) is backend.Office31 and type(dataset).__module__.startswith("tllib.")
    # every domain, as tllib fetches them; the archives unpacked and removed
    assert sorted(os.listdir(root)) == ["amazon", "dslr", "image_list", "webcam"]
    assert D.read_labels(dataset) == _labels(lists["webcam"])


def test_tllib_office31_cut_off_download_leaves_no_half_folder(tmp_path, monkeypatch, tllib_pieces):
    # tllib's own download unpacked what arrived of amazon.tgz into ROOT/amazon: a later run found a folder
    # that looked finished and said images were missing
    from ila_tllib import backend
    make_office31_archives(tmp_path / "share")
    archive = tmp_path / "share" / "amazon.tgz"
    whole = archive.read_bytes()
    archive.write_bytes(whole[:len(whole) // 2])
    root = tmp_path / "office31"
    with serve_directory(tmp_path / "share") as base:
        monkeypatch.setattr(backend.Office31, "download_list", _local_urls(backend.Office31, base))
        with pytest.raises(D.DatasetNotFoundError) as err:
            D.build_domain("Office31", str(root), "A")
    assert "Automatic download of amazon.tgz from" in str(err.value)
    assert "amazon" not in os.listdir(root) and not [n for n in os.listdir(root) if n.startswith(".")]


def test_tllib_office31_offline_becomes_one_message(tmp_path, monkeypatch, tllib_pieces):
    from ila_tllib import backend
    url = refused_url("image_list.zip?dl=1")
    monkeypatch.setattr(backend.Office31, "download_list", [("image_list", "image_list.zip", url)] +
                        list(backend.Office31.download_list[1:]))
    with pytest.raises(D.DatasetNotFoundError) as err:
        D.build_domain("Office31", str(tmp_path / "office31"), "A")
    message = str(err.value)
    assert "Automatic download of image_list.zip from {} failed".format(url) in message
    assert "ROOT/amazon/" in message and D.MIRROR_ENV in message and "-d OfflineDigits" in message
    # tllib fetches every domain's archive, so the message names them all, each with its address
    for folder, archive, address in backend.Office31.download_list:
        assert "{} ({}) for ROOT/{}/".format(archive, address, folder) in message


def test_tllib_office_caltech_offline_becomes_one_message(tmp_path, monkeypatch, tllib_pieces):
    # tllib's OfficeCaltech has no download_list: its one archive comes from our class's entries (its address)
    from ila_tllib import standalone
    url = refused_url("office-caltech.tgz?dl=1")
    monkeypatch.setattr(standalone.OfficeCaltech, "download_list",
                        [(folder, archive, url) for folder, archive, _ in standalone.OfficeCaltech.download_list])
    with pytest.raises(D.DatasetNotFoundError) as err:
        D.build_domain("OfficeCaltech", str(tmp_path / "office_caltech"), "A")
    message = str(err.value)
    assert "Automatic download of office-caltech.tgz from {} failed".format(url) in message
    assert "ConnectionRefusedError" in message or "URLError" in message, message
    assert D.MIRROR_ENV in message


@pytest.mark.parametrize("pieces", ["standalone_pieces", "tllib_pieces"])
@pytest.mark.parametrize("member", ["../escaped.txt", "amazon/../../escaped.txt"])
def test_an_archive_member_outside_root_is_refused(tmp_path, monkeypatch, request, pieces, member):
    # torchvision's extract_archive unpacks a tar unchecked: a member "../x" landed beside ROOT
    import io
    import tarfile
    request.getfixturevalue(pieces)
    make_office31_archives(tmp_path / "mirror" / "Office31")
    with tarfile.open(tmp_path / "mirror" / "Office31" / "amazon.tgz", "r:gz") as tar:
        members = [(info, tar.extractfile(info).read() if info.isfile() else None) for info in tar.getmembers()]
    with tarfile.open(tmp_path / "mirror" / "Office31" / "amazon.tgz", "w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
        bad = tarfile.TarInfo(member)
        bad.size = 4
        tar.addfile(bad, io.BytesIO(b"evil"))
    root = tmp_path / "data" / "office31"
    with serve_directory(tmp_path / "mirror") as base:
        monkeypatch.setenv(D.MIRROR_ENV, base)
        with pytest.raises(D.DatasetNotFoundError) as err:
            D.build_domain("Office31", str(root), "A")
    assert "outside" in str(err.value) and "amazon.tgz" in str(err.value), str(err.value)
    found = [os.path.join(d, f) for d, _, files in os.walk(tmp_path) for f in files if f == "escaped.txt"]
    assert found == [] and "amazon" not in os.listdir(root)


def test_tllib_class_reads_a_mirror_fetched_first(tmp_path, monkeypatch, tllib_pieces):
    from ila_tllib import backend
    make_office31_archives(tmp_path / "mirror" / "Office31")
    with serve_directory(tmp_path / "mirror") as base:
        monkeypatch.setenv(D.MIRROR_ENV, base)
        dataset = D.build_domain("Office31", str(tmp_path / "office31"), "A")
    assert type(dataset) is backend.Office31 and len(dataset) == 6


# ------------------------------------------------------------------ a script, end to end

def test_script_downloads_office31_and_names_the_v1_weights(tmp_path, backend):
    """ila_cdan.py -d Office31 on an empty ROOT: the archives come over HTTP (the mirror variable),
    the ResNet starts from the V1 file (a stand-in in torch's cache: nothing is downloaded)."""
    make_office31_archives(tmp_path / "mirror" / "Office31")
    cache = tmp_path / "torch" / "hub" / "checkpoints"
    os.makedirs(cache)
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18().state_dict(), cache / "resnet18-f37072fd.pth")
    root, log = tmp_path / "office31", tmp_path / "log"
    with serve_directory(tmp_path / "mirror") as base:
        done = run_script("ila_cdan.py", [root, "-d", "Office31", "-s", "A", "-t", "W", "-a", "resnet18",
                                          "--train-resizing", "res.", "--val-resizing", "res.", "--resize-size", "32",
                                          "--no-hflip", "-b", "4", "--epochs", "1", "-i", "2", "-p", "1", "-j", "0",
                                          "--ila-trade-off", "0", "--seed", "0", "--log", log],
                          backend=backend, ILA_TLLIB_DATA_MIRROR=base, TORCH_HOME=str(tmp_path / "torch"))
    assert done.returncode == 0, done.stderr
    text = only_log(log, "train")
    assert "=> backbone weights: torchvision IMAGENET1K_V1, resnet18-f37072fd.pth" in text
    assert re.search(r"^test_acc1 = \d+\.\d$", text, re.M)
    assert {"image_list", "amazon", "webcam"} <= set(os.listdir(root))


def test_headline_command_offline_names_tllibs_source(tmp_path, backend):
    """The README's Office-31 command on a machine that cannot reach the data: exit 2, one message with
    the URL tllib's Office31 downloads from (a proxy on a closed port stands in for the network)."""
    proxy = refused_url("")
    done = run_script("ila_cdan.py", ["data/office31", "-s", "A", "-t", "W"], cwd=str(tmp_path), timeout=120,
                      backend=backend, https_proxy=proxy, HTTPS_PROXY=proxy, no_proxy="", NO_PROXY="")
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "image_list.zip from {}".format(D.Office31.download_list[0][2]) in done.stderr
    assert "data/office31" in done.stderr and "amazon" in done.stderr
    assert D.MIRROR_ENV in done.stderr and "-d OfflineDigits" in done.stderr
    assert done.stderr.count("error: ") == 1
    # tllib's default --log (the method's name), made for the refused run, is gone, as is data/office31
    assert sorted(os.listdir(tmp_path)) == []
