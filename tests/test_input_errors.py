"""Bad input ends with exit code 2 and one message naming the problem and the fix (scripts run as a
user runs them: a subprocess, output through pipes)."""
import os
import re

import pytest

from helpers import as_torchrun, flag_error, make_image_list, run_script, tiny_args


@pytest.fixture()
def root(tmp_path):
    return make_image_list(tmp_path / "data", per_class=4)


def run_dann(argv, capsys=None, backend="standalone"):
    done = run_script("ila_dann.py", argv, backend=backend)
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, done.stderr


def edit_list(root, domain, transform):
    path = os.path.join(root, "image_list", f"{domain}.txt")
    lines = open(path).read().splitlines()
    with open(path, "w") as f:
        f.write("\n".join(transform(lines)) + "\n")


def test_malformed_line(root, tmp_path, capsys):
    edit_list(root, "src", lambda lines: lines[:3] + ["just-a-path-without-label"] + lines[3:])
    code, err = run_dann(tiny_args(root, tmp_path / "log"), capsys)
    assert code == 2 and "src.txt" in err and "line 4" in err


def test_missing_image_file(root, tmp_path, capsys):
    os.remove(os.path.join(root, "src", "1", "2.png"))
    code, err = run_dann(tiny_args(root, tmp_path / "log"), capsys)
    assert code == 2 and "src/1/2.png" in err


def test_label_outside_the_class_list(root, tmp_path, capsys):
    with open(os.path.join(root, "classes.txt"), "w") as f:
        f.write("a\nb\n")                      # 2 classes, but the lists use labels 0..2
    code, err = run_dann(tiny_args(root, tmp_path / "log"), capsys)
    assert code == 2 and re.search(r"src\.txt, line \d+: label 2 is outside the class list \(valid labels: 0\.\.1\)",
                                   err), err


def test_unreadable_image(root, tmp_path, capsys):
    with open(os.path.join(root, "tgt", "0", "1.png"), "wb") as f:
        f.write(b"this is not a png")
    code, err = run_dann(tiny_args(root, tmp_path / "log", "--epochs", "1", "-i", "6"), capsys)
    assert code == 2 and "cannot read image" in err and "tgt/0/1.png" in err


def test_source_cannot_be_class_balanced(root, tmp_path, capsys):
    with open(os.path.join(root, "classes.txt"), "w") as f:
        f.write("a\nb\nc\nd\n")                # class d has no source sample
    code, err = run_dann(tiny_args(root, tmp_path / "log"), capsys)
    assert code == 2 and "cannot be class-balanced" in err and "[3]" in err


def test_incomplete_benchmark_dataset(tmp_path, capsys):
    root = tmp_path / "office31"
    (root / "image_list").mkdir(parents=True)
    (root / "image_list" / "amazon.txt").write_text("amazon/images/bike/frame_0001.jpg 1\n")
    code, err = run_dann([root, "-s", "A", "-t", "W", "--log", tmp_path / "log"], capsys)
    # the source list exists but its images do not: the message names what is missing and the layout
    assert code == 2 and "dataset files not found" in err and str(root / "amazon") in err and "OfflineDigits" in err


def test_missing_own_images_offer_no_own_images(tmp_path, capsys):
    # -d ImageList on a root without lists: the message shows the layout and offers the other ways, not
    # -d ImageList again
    root = tmp_path / "mine"
    root.mkdir()
    code, err = run_dann([root, "-d", "ImageList", "-s", "a", "-t", "b", "--log", tmp_path / "log"], capsys)
    assert code == 2 and "ImageList: dataset files not found" in err and "image_list" in err
    assert "-d ImageList` (ROOT" not in err and "`-d ImageFolder` (ROOT" in err and "-d OfflineDigits" in err


def test_log_that_is_a_file(root, tmp_path, capsys):
    log = tmp_path / "run.out"
    log.write_text("an earlier run's output")
    code, err = run_dann(tiny_args(root, log), capsys)
    assert code == 2
    assert err.strip().splitlines()[-1] == f"error: --log {log} is a file, not a folder; choose another --log"
    assert log.read_text() == "an earlier run's output"


@pytest.mark.parametrize("phase", ["train", "test"])
def test_a_file_where_the_log_keeps_a_folder_is_named_and_nothing_is_left(root, tmp_path, capsys, phase):
    # a file named visualize in --log: the message said "make it writable" and the run left an empty
    # checkpoints/ it had made
    log = tmp_path / "log"
    log.mkdir()
    (log / "visualize").write_text("notes")
    code, err = run_dann(tiny_args(root, log, "--phase", phase), capsys)
    assert code == 2
    assert err.strip().splitlines()[-1] == (f"error: --log {log}: {log / 'visualize'} is a file where the run keeps "
                                            f"a folder; move it away or choose another --log")
    assert os.listdir(log) == ["visualize"] and (log / "visualize").read_text() == "notes"


def test_test_and_analysis_need_no_writable_checkpoints(tmp_path):
    # they only read best.pth: a checkpoints/ folder that cannot be written (simulated: the probe's name is
    # taken by a folder, which no one can open for writing) stops training, not a test
    from ila_tllib.engine.checkpoint import RunDirectory
    from ila_tllib.engine.errors import UsageError
    log = tmp_path / "log"
    (log / "checkpoints" / f".tmp-probe-{os.getpid()}").mkdir(parents=True)
    for phase in ("test", "analysis"):
        RunDirectory(str(log), phase, resume=False).open().close()
    with pytest.raises(UsageError, match="cannot write to --log"):
        RunDirectory(str(log), "train", resume=False).open()


@pytest.mark.parametrize("extra, message", [
    (["--log", ""], "--log '' names no folder; give one (the script's default: dann)"),   # was "cannot write to --log : "
    (["--temperature", "0"], "--ila-temperature 0.0 must be positive"),
    (["--momentum", "1"], "--momentum 1.0 must be below 1 (tllib's default: 0.9)"),
    (["--mu", "0.01"], "keeps no target of a batch of 8 (it keeps round(mu x -b)): the ILA term would be 0; "
                       "raise --mu to at least 0.0625, or -b"),
    (["-j", "-1"], "--workers cannot be negative"),
    (["--ila-spectral-penalty", "-0.0001"], "--ila-spectral-penalty cannot be negative"),
    (["--ila-mining-ema", "1"], "--ila-mining-ema 1.0 must lie in [0, 1)"),
    (["--ila-source-bank", "-1"], "--ila-source-bank -1: give the features kept per class, 0 or more"),
    (["--ila-source-bank", "8", "--pseudo-label", "classifier"],
     "--ila-source-bank acts on the kNN vote, which --pseudo-label classifier does not use"),
    (["--ila-mining-ema", "0.99", "--pseudo-label", "classifier"], "--ila-mining-ema acts on the kNN vote"),
    (["--ila-ratio-terms", "matched", "--pseudo-label", "classifier"], "--ila-ratio-terms acts on the kNN vote"),
    (["--metric-loss", "triplet", "--ila-temperature", "0.05"],
     "--ila-temperature 0.05 divides MSC's similarities, and --metric-loss triplet has no temperature"),
    # a consensus label is a kNN vote as well: the same check as knn's, before any folder exists
    (["--pseudo-label", "consensus", "--samples-per-class", "0", "-b", "4", "--k", "5"],
     "--k 5 is larger than the source batch (-b 4); lower --k"),
    # the balanced batch missing is the problem, not --k against a batch of none
    (["--balanced-source", "--samples-per-class", "0", "--k", "5"], "--balanced-source needs a class-balanced batch"),
    (["--ila-start-iter", "8"], "--ila-start-iter 8 is past the run's last iteration (--epochs 2 x -i 4 = 8)"),
    (["--ila-mining-ema", "0", "--ila-mining-average", "bottleneck"],
     "--ila-mining-average bottleneck chooses what the moving average copies, but ILA mines on no average"),
    (["--pseudo-label", "classifier", "--ila-mining-average", "network-eval"], "ILA mines on no average here"),
    (["--norm-mean", "0.5", "0.5", "0.5"], "--norm-mean needs 1 value for -a lenet (grey images), got 3"),
    (["--norm-std", "0.5", "0.5"], "--norm-std needs 1 value"),
    (["--scale", "0.5"], "--scale takes two positive values"),
    (["--ratio", "2", "1"], "--ratio takes two positive values, the lower first"),
    (["--resize-size", "0"], "--resize-size must be at least 1"),
    (["--pretrained", "lenet.pth"], "--scratch starts the backbone from random weights, and --pretrained lenet.pth "
                                    "loads weights into it; drop one of them"),
    (["--sync-bn"], "--sync-bn pools BatchNorm statistics over the processes of a torchrun run, and this run "
                    "has one process; leave it out, or start the run with torchrun --nproc_per_node=N"),
    (["-a", "resnet18", "--norm-mean", "0.5", "--norm-std", "0.5"],
     "--no-pool is only for backbones whose output is already one vector per image (lenet, dtn, timm's models); "
     "-a resnet18 gives feature maps"),
])
def test_flag_values(root, tmp_path, extra, message):
    # in process; that these errors exit 2 through a pipe is tested below and in tests/test_exit_codes.py
    assert message in flag_error(tiny_args(root, tmp_path / "log") + extra)


def test_sync_bn_under_torchrun_without_gpus_is_refused(root, tmp_path, monkeypatch):
    # torch's SyncBatchNorm refuses CPU modules in DistributedDataParallel's constructor: a traceback, exit 1
    as_torchrun(monkeypatch)
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    assert flag_error(tiny_args(root, tmp_path / "log", "--sync-bn", "--ila-bn-statistics", "all")) == (
        "--sync-bn needs GPUs: torch's SyncBatchNorm runs on CUDA devices only, and this machine has none; leave it "
        "out")


def test_sync_bn_with_a_world_size_left_in_the_shell_is_named(root, tmp_path, monkeypatch):
    # --sync-bn read WORLD_SIZE on its own: "abc" was a ValueError traceback
    monkeypatch.setenv("WORLD_SIZE", "abc")
    assert flag_error(tiny_args(root, tmp_path / "log", "--sync-bn", "--ila-bn-statistics", "all")) == (
        "WORLD_SIZE='abc' is not a number of processes; unset it, or start the script with torchrun, which sets it")


def test_sync_bn_under_torchrun_still_cannot_keep_tllibs_statistics_rule(root, tmp_path, monkeypatch):
    as_torchrun(monkeypatch)
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    assert flag_error(tiny_args(root, tmp_path / "log", "--sync-bn")).startswith(
        "--sync-bn takes BatchNorm statistics from every row, ILA's own batch included, so it cannot keep "
        "--ila-bn-statistics tllib")


@pytest.mark.parametrize("extra", [["--metric-loss", "triplet"], ["--pseudo-label", "classifier", "--k", "3"],
                                   ["--ila-start-iter", "7"], ["--ila-start-iter", "8", "--ila-trade-off", "0"]])
def test_flags_the_chosen_part_does_not_read_pass_at_their_defaults(root, tmp_path, extra):
    # the task lists give the dataset's --k to every run, whichever pseudo-labeller it tries; a start at
    # the run's last iteration still runs ILA once; with ILA off its start is never read
    import ila_dann
    from ila_tllib.engine import check_args, get_parser
    method = ila_dann.DANN()
    check_args(get_parser(method).parse_args([str(a) for a in tiny_args(root, tmp_path / "log") + extra]), method)


def test_failed_weight_download_names_the_fix(monkeypatch):
    import urllib.error

    import torchvision.models._api as weights_api

    from ila_tllib.models import BackboneError, get_model
    asked = []

    def offline(url, *args, **kwargs):    # where torchvision's weights enum downloads from
        asked.append(url)
        raise urllib.error.URLError("Name or service not known")
    monkeypatch.setattr(weights_api, "load_state_dict_from_url", offline)
    with pytest.raises(BackboneError, match=r"could not build 'resnet18' with ImageNet weights.*--pretrained PATH"):
        get_model("resnet18")
    assert asked and asked[0].endswith(".pth")


def test_local_pretrained_weights(tmp_path):
    import torch
    import torchvision

    from ila_tllib.models import BackboneError, get_model
    weights = tmp_path / "resnet18.pth"
    reference = torchvision.models.resnet18()
    torch.save(reference.state_dict(), weights)
    backbone = get_model("resnet18", pretrained=str(weights))
    assert torch.equal(backbone.conv1.weight, reference.conv1.weight)
    assert backbone.out_features == 512
    bad = tmp_path / "bad.pth"
    torch.save({"backbone." + k: v for k, v in reference.state_dict().items()}, bad)
    with pytest.raises(BackboneError, match="none of its keys fit"):
        get_model("resnet18", pretrained=str(bad))
    not_torch = tmp_path / "notes.pth"
    not_torch.write_text("these are not weights")
    with pytest.raises(BackboneError, match=r"cannot be read \(.*\); it is damaged or not a checkpoint: give a file "
                                            r"written by torch.save\(backbone.state_dict\(\), PATH\)$"):
        get_model("resnet18", pretrained=str(not_torch))
    with pytest.raises(BackboneError, match=r"is a folder: give the file of the backbone's weights in it"):
        get_model("resnet18", pretrained=str(tmp_path))       # "no such file" said the folder was missing
    resnet50 = tmp_path / "resnet50.pth"      # the names of resnet18's weights, most of them of other shapes
    torch.save(torchvision.models.resnet50().state_dict(), resnet50)
    with pytest.raises(BackboneError, match=r"have another shape than the 'resnet18' backbone's .*-a they fit"):
        get_model("resnet18", pretrained=str(resnet50))
    a_tensor = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), a_tensor)
    with pytest.raises(BackboneError, match="holds a Tensor, not a state_dict"):
        get_model("resnet18", pretrained=str(a_tensor))
    empty = tmp_path / "empty.pth"       # torch's error for it has no message at all
    empty.write_bytes(b"")
    with pytest.raises(BackboneError, match=r"cannot be read \(EOFError: the file is empty\)"):
        get_model("resnet18", pretrained=str(empty))
    # a run's own resume file: torch's reason came with terminal colour codes and advice to load it unsafely
    resume = tmp_path / "resume.pth"
    torch.save({"classifier": reference.state_dict(), "epoch": 3, "optimizer": {"param_groups": [object()]}},
               resume)
    with pytest.raises(BackboneError) as error:
        get_model("resnet18", pretrained=str(resume))
    assert str(error.value) == (f"--pretrained {resume} holds more than a network's weights (a --resume state): give "
                                f"a file written by torch.save(backbone.state_dict(), PATH)")


def test_image_list_that_is_not_utf8(root, tmp_path, capsys):
    with open(os.path.join(root, "image_list", "tgt.txt"), "ab") as f:
        f.write(b"tgt/0/\xff\xfe.png 0\n")
    code, err = run_dann(tiny_args(root, tmp_path / "log"), capsys)
    lines = len(open(os.path.join(root, "image_list", "tgt.txt"), "rb").read().splitlines())
    assert code == 2 and f"tgt.txt, line {lines}: not UTF-8 text" in err


def test_an_image_list_that_is_a_folder(root, tmp_path):
    lists = os.path.join(root, "image_list")
    os.rename(os.path.join(lists, "tgt.txt"), os.path.join(lists, "kept.txt"))
    os.makedirs(os.path.join(lists, "tgt.txt"))
    code, err = run_dann(tiny_args(root, tmp_path / "log"))
    assert code == 2 and f"{os.path.join(lists, 'tgt.txt')} is a folder, not an image list" in err


def test_an_image_list_that_links_to_nowhere(root, tmp_path):
    # without classes.txt every list is read for its labels, this one too
    link = os.path.join(root, "image_list", "extra.txt")
    os.symlink(str(tmp_path / "gone.txt"), link)
    code, err = run_dann(tiny_args(root, tmp_path / "log"))
    assert code == 2 and f"{link} cannot be read (a link to {tmp_path / 'gone.txt'}, which is missing)" in err


def test_a_class_list_that_is_not_utf8(root, tmp_path):
    with open(os.path.join(root, "classes.txt"), "wb") as f:
        f.write(b"zero\none\n\xff\xfetwo\n")
    code, err = run_dann(tiny_args(root, tmp_path / "log"))
    assert code == 2 and "classes.txt, line 3: not UTF-8 text (bad byte at offset 9)" in err


def test_an_image_whose_header_claims_a_huge_size(root, tmp_path):
    # a PNG header of 30000 x 30000 pixels, beyond PIL's limit against decompression bombs: the run stops on
    # it with exit 2 naming the file, as on any unreadable image
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = chunk(b"IHDR", struct.pack(">IIBBBBB", 30000, 30000, 8, 0, 0, 0, 0))
    bomb = os.path.join(root, "src", "0", "0.png")
    with open(bomb, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + header + chunk(b"IEND", b""))
    code, err = run_dann(tiny_args(root, tmp_path / "log"))
    assert code == 2 and f"cannot read image {bomb} (DecompressionBombError" in err


def test_mistyped_backend_variable(root, tmp_path):
    done = run_script("ila_dann.py", tiny_args(root, tmp_path / "log"), backend="standlone")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "ILA_TLLIB_BACKEND='standlone'" in done.stderr and "'standalone'" in done.stderr


@pytest.mark.parametrize("choice, expected", [("v1", "IMAGENET1K_V1, resnet50-0676ba61.pth (the V1 weights tllib"),
                                              ("default", "IMAGENET1K_V2, resnet50-11ad3fa6.pth")])
def test_resnet_weights_v1_unless_asked(monkeypatch, capsys, choice, expected):
    """tllib's tables were trained from torchvision's V1 ImageNet weights: they are the default, the log
    names the file, and --weights default takes torchvision's current (V2) weights instead."""
    import torch
    import torchvision
    import torchvision.models._api as weights_api

    from ila_tllib.models import get_model
    asked = []
    reference = torchvision.models.resnet50()

    def cached(url, *args, **kwargs):    # what torchvision reads from its cache or downloads
        asked.append(url)
        return reference.state_dict()
    monkeypatch.setattr(weights_api, "load_state_dict_from_url", cached)
    backbone = get_model("resnet50", weights=choice)
    assert [url.rsplit("/", 1)[-1] for url in asked] == [expected.split(", ")[1].split(" ")[0]]
    assert "=> backbone weights: torchvision " + expected in capsys.readouterr().out
    assert torch.equal(backbone.conv1.weight, reference.conv1.weight) and backbone.out_features == 2048
    get_model("resnet50", scratch=True)
    assert len(asked) == 1 and "=> backbone weights: none (--scratch)" in capsys.readouterr().out


@pytest.mark.parametrize("arch", ["ig_resnext101_32x8d", "resnet50.a1_in1k"])
def test_timm_names_it_maps_to_others_are_backbones(arch):
    # tllib's ImageNet-Sketch task list names ig_resnext101_32x8d, which timm now maps to a tagged model and
    # leaves out of list_models(); a name with its weights' tag is a model too
    import timm
    from ila_tllib.models import unknown_arch
    assert arch not in timm.list_models() and unknown_arch(arch) is None
    assert "unknown architecture 'ig_resnext101'" in unknown_arch("ig_resnext101")
    assert "unknown architecture 'resnet50.no_such_tag'" in unknown_arch("resnet50.no_such_tag")


@pytest.mark.parametrize("extra, message", [
    (["--phase", "test"], "--phase test: no "), (["--resume"], "--resume: no "),
    (["--k", "9"], "--k 9 is larger than ILA's source batch")])     # found once the data are read
def test_a_run_refused_in_a_log_folder_it_made_leaves_nothing(root, tmp_path, extra, message):
    # a mistyped --log got a folder of its own, with a lock and a log of the refusal
    log = tmp_path / "made" / "log"
    code, err = run_dann(tiny_args(root, log, *extra))
    assert code == 2 and err.strip().splitlines()[-1].startswith(f"error: {message}"), err
    assert os.listdir(tmp_path) == ["data"]
    # in a folder that was there, the log of the refusal stays (as the other logs of the folder do)
    log.mkdir(parents=True)
    code, err = run_dann(tiny_args(root, log, *extra))
    assert code == 2
    (written,) = [name for name in os.listdir(log) if not name.startswith(".")]
    assert written.startswith("test-" if "test" in extra else "train-")
    assert err.strip().splitlines()[-1] in (log / written).read_text()


def test_a_checkpoint_flag_given_a_folder_says_it_is_one(tmp_path):
    # BSP's --pretrain FOLDER said "no FOLDER", as if it were missing
    from ila_tllib.engine import UsageError
    from ila_tllib.engine.checkpoint import load_file
    with pytest.raises(UsageError) as error:
        load_file(str(tmp_path), "--pretrain", "give the file BSP's pretraining wrote")
    assert str(error.value) == (f"--pretrain: {tmp_path} is a folder: give the checkpoint file in it; give the file "
                                f"BSP's pretraining wrote")


def test_samples_per_class_far_beyond_every_source_class_is_refused(root, tmp_path):
    # a huge value built a batch beyond the memory (a traceback); up to ten times the largest class, classes
    # cycle (tests/test_scripts.py)
    code, err = run_dann(tiny_args(root, tmp_path / "log", "--samples-per-class", "10000000"))
    assert code == 2 and err.strip().splitlines()[-1] == (
        "error: --samples-per-class 10000000 would repeat every image of the largest source class (4 images) more "
        "than 10 times in each batch; give at most 40")


def test_a_layer_size_beyond_the_memory_is_named_by_its_flag(root, tmp_path):
    # a bottleneck of a billion features ended in the allocator's traceback (exit 1), with empty folders left
    code, err = run_dann(tiny_args(root, tmp_path / "log", "--bottleneck-dim", "1000000000"))
    assert code == 2 and re.fullmatch(r"error: the networks do not fit in memory \(a layer asked for [\d.]+ GiB\); "
                                      r"lower --bottleneck-dim 1000000000, or choose a smaller -a than lenet",
                                      err.strip().splitlines()[-1]), err[-2000:]
    assert not (tmp_path / "log").exists()
