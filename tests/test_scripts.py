"""End to end: the example scripts on tiny generated image lists, as a tllib user runs them."""
import glob
import os
import re
import subprocess
import sys

import pytest
import torch
from PIL import Image

from ila_tllib.run_logs import collect
from ila_tllib.tables import format_table

from helpers import (DIGIT_FLAGS, REPO, SCRIPTS, TLLIB, only_log, run_script, script_env,  # noqa: F401
                     tiny_args)


def test_the_seed_warning_names_the_script_however_it_is_started(tiny_root, tmp_path):
    # as a module (python -m): still the script's warning, and the run goes on
    log = str(tmp_path / "log")
    args = tiny_args(tiny_root, log, "--epochs", "1", "--seed", "0")
    done = subprocess.run([sys.executable, "-m", "ila_dann", *args], capture_output=True, text=True, cwd=SCRIPTS,
                          env=script_env(), timeout=300)
    assert done.returncode == 0, done.stderr
    assert re.search(r"ila_dann\.py:\d+: UserWarning: You have chosen to seed training", done.stderr), done.stderr
    # a filter written for tllib's scripts, on the script's module, silences it
    done = subprocess.run([sys.executable, "-W", "ignore::UserWarning:__main__", os.path.join(SCRIPTS, "ila_dann.py"),
                           *tiny_args(tiny_root, log, "--seed", "0", "--phase", "test")],
                          capture_output=True, text=True, env=script_env(), timeout=300)
    assert done.returncode == 0 and "You have chosen" not in done.stderr, done.stderr


def test_a_reader_that_goes_away_does_not_stop_the_run(tiny_root, tmp_path):
    # `| head -1`: the pipe closes after the first line; the run trains on, into its log file, and exits 0
    log = str(tmp_path / "log")
    process = subprocess.Popen([sys.executable, os.path.join(SCRIPTS, "ila_dann.py"), *tiny_args(tiny_root, log)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=script_env())
    assert process.stdout.readline().startswith(b"Namespace(")
    process.stdout.close()
    _, err = process.communicate(timeout=300)
    assert process.returncode == 0, err.decode()
    assert b"Traceback" not in err and b"BrokenPipe" not in err
    text = only_log(log, "train")
    assert "note: the output's reader has gone" in text and re.search(r"^test_acc1 = ", text, re.M)


@pytest.mark.parametrize("script, pieces", [("ila_dann.py", "standalone"), ("ila_cdan.py", "tllib")])
def test_train_test_analysis(tiny_root, tmp_path, script, pieces):
    # every phase ends with exit 0 and its last line in the log, with either backend's pieces
    if pieces == "tllib" and not TLLIB:
        pytest.skip("tllib is not installed")
    log = str(tmp_path / "log")
    done = run_script(script, tiny_args(tiny_root, log, "--seed", "0"), backend=pieces)
    assert done.returncode == 0, done.stderr
    # tllib's scripts warn about --seed from their own main: the warning names the script, not the library
    assert re.search(rf"{script}:\d+: UserWarning: You have chosen to seed training", done.stderr), done.stderr
    text = only_log(log, "train")
    assert text.startswith("Namespace(") and f"tllib pieces: {pieces}" in text
    assert text.splitlines()[1] == f"method: {script[4:-3]}"   # what the tables name the run by
    assert re.search(r"Epoch: \[1\]\[0/4\]\tTime .*\tCls Acc .*\tDomain Acc .*\tILA Loss .*\tPL Prec .*\tKept", text)
    # tllib's own columns and formats: dann.py has no transfer-loss column and prints times with 2 decimals
    if script == "ila_dann.py":
        assert re.search(r"\tTime +\d+\.\d\d \( *\d+\.\d\d\)\tData .*\tLoss .*\tCls Acc", text)
        assert "Trans Loss" not in text
    else:
        assert re.search(r"\tTime \d+\.\d \(\d+\.\d\)\tData .*\tLoss .*\tTrans Loss \d+\.\d\d \(", text)
    assert "train_transform:  Compose(" in text and "val_transform:  Compose(" in text
    assert "=> using model 'lenet'" in text
    assert re.search(r"^best_acc1 = \d+\.\d$", text, re.M)
    test_acc = re.search(r"^test_acc1 = (\d+\.\d)$", text, re.M)
    assert test_acc and done.stdout.rstrip().endswith(test_acc.group(0))
    for name in ("best.pth", "latest.pth"):
        assert os.path.isfile(os.path.join(log, "checkpoints", name))
    assert not glob.glob(os.path.join(log, "checkpoints", ".tmp-*"))
    assert os.listdir(os.path.join(log, "visualize")) == []

    done = run_script(script, tiny_args(tiny_root, log, "--phase", "test"), backend=pieces)
    assert done.returncode == 0, done.stderr
    assert os.listdir(os.path.join(log, "visualize")) == ["test"]   # as tllib's logger leaves it, empty
    # the test phase evaluates 'best' on the target: the same accuracy as at the end of training
    acc_test = float(re.search(r"\* Acc@1 (\d+\.\d+)", done.stdout).group(1))
    assert f"{acc_test:3.1f}" == test_acc.group(1)
    assert done.stdout.splitlines()[-1] in only_log(log, "test")

    done = run_script(script, tiny_args(tiny_root, log, "--phase", "analysis"), backend=pieces)
    assert done.returncode == 0, done.stderr
    assert "A-distance =" in only_log(log, "analysis")
    assert os.path.isdir(os.path.join(log, "visualize", "analysis"))
    assert "Traceback" not in done.stderr
    assert os.path.getsize(os.path.join(log, "visualize", "TSNE.pdf")) > 1000
    with Image.open(os.path.join(log, "visualize", "affinity.png")) as im:
        assert im.size[0] > 3 * im.size[1] / 2        # three panels side by side


@pytest.mark.skipif(not TLLIB, reason="tllib is not installed")
def test_the_affinity_figure_of_one_checkpoint_is_the_same_with_either_backend(offline_digits, tmp_path):
    # its target batch (10 of uci's 120 images) was drawn from the global RNG after the A-distance, which
    # tllib's and ours use differently: the figure and its printed precision depended on the backend
    log = str(tmp_path / "log")
    args = [offline_digits, "-d", "ImageList", "-s", "mnist", "-t", "uci", *DIGIT_FLAGS, "-b", "10", "--epochs",
            "1", "-i", "3", "-p", "1", "--samples-per-class", "1", "--k", "1", "--seed", "0", "--log", log]
    assert run_script("ila_dann.py", args).returncode == 0
    lines = []
    for pieces in ("standalone", "tllib"):
        done = run_script("ila_dann.py", args + ["--phase", "analysis"], backend=pieces)
        assert done.returncode == 0, done.stderr
        lines.append(next(line for line in done.stdout.splitlines() if line.startswith("Saving the affinity")))
    assert lines[0] == lines[1]


def test_dann_takes_a_loss_that_accepts_unequal_batches(monkeypatch):
    import ila_dann
    from ila_tllib import backend
    from ila_tllib.engine import BatchPlan, get_parser
    from ila_tllib.standalone import DomainAdversarialLoss as Standalone

    class HalvingLoss(torch.nn.Module):   # stands in for tllib's, which halves the joint batch
        def __init__(self, discriminator):
            super().__init__()

    pieces = {**backend._choice()[1], "DomainAdversarialLoss": HalvingLoss}
    monkeypatch.setattr(backend, "_chosen", ("tllib", pieces, "tllib pieces: a stand-in"))
    classifier = type("Classifier", (), {"features_dim": 5})()
    dann = ila_dann.DANN()
    for extra, expected in ((["--samples-per-class", "2", "--ila-batch", "shared"], Standalone),   # 3 x 2 vs 4
                            (["--samples-per-class", "2"], HalvingLoss),                          # extra batch
                            (["--samples-per-class", "2", "--ila-trade-off", "0"], HalvingLoss),
                            (["--samples-per-class", "2", "--balanced-source", "--ila-trade-off", "0"], Standalone),
                            (["--samples-per-class", "2", "--classes-per-batch", "2", "--ila-batch", "shared"],
                             HalvingLoss)):   # 2 x 2
        args = get_parser(dann).parse_args(["root", "-s", "a", "-t", "b", "-b", "4", *extra])
        plan = BatchPlan.from_args(args, 3)
        transfer = dann.build_transfer(args, classifier, 3, plan.source_size, args.batch_size)
        assert type(transfer) is expected, extra


@pytest.mark.skipif(not TLLIB, reason="tllib is not installed")
def test_mdd_on_tllib_pieces_with_a_shared_balanced_batch_takes_the_standalone_discrepancy(tiny_root, tmp_path):
    # 3 classes x 2 sources against 8 targets: tllib's MDD adds per-sample source and target terms, so the
    # run must take the standalone one (it ended in a shape error when that choice was missed)
    log = str(tmp_path / "log")
    done = run_script("ila_mdd.py", tiny_args(tiny_root, log, "--ila-batch", "shared", "--epochs", "1"),
                      backend="tllib")
    assert done.returncode == 0, done.stderr
    assert "MarginDisparityDiscrepancy: the standalone one, as the source batch (6) and the target batch (8) " \
           "differ" in done.stdout


def test_affinity_figure_of_ila_on_random_rows_holds_a_training_batch_of_sources(tiny_root, tmp_path):
    # --samples-per-class 0: the figure's class-balanced batch holds ceil(-b / classes) per class, 3 x 3 here
    # (one per class would show three sources), and as many targets
    log = str(tmp_path / "log")
    args = tiny_args(tiny_root, log, "--epochs", "1", "-i", "1", "--samples-per-class", "0")
    assert run_script("ila_cdan.py", args).returncode == 0
    done = run_script("ila_cdan.py", args + ["--phase", "analysis"])
    assert done.returncode == 0, done.stderr
    assert re.search(r"kept \d+ of 9 targets", only_log(log, "analysis"))


def test_analysis_of_a_source_smaller_than_the_batch(tiny_root, tmp_path):
    # the class-balanced sampler trains on a source of 24 with -b 32; the analysis must cope too
    log = str(tmp_path / "log")
    args = tiny_args(tiny_root, log, "--epochs", "1", "-i", "1", "-b", "32", "--ila-batch", "shared") + ["-t", "src", "tgt"]
    done = run_script("ila_cdan.py", args)
    assert done.returncode == 0, done.stderr
    done = run_script("ila_cdan.py", args + ["--phase", "analysis"])
    assert done.returncode == 0, done.stderr
    assert "A-distance =" in only_log(log, "analysis")
    assert os.path.isdir(os.path.join(log, "visualize", "analysis"))


def test_cached_images_give_the_same_run(tiny_root, tmp_path):
    from ila_tllib.transforms import draws_nothing_at_random, get_train_transform
    # res. resizing without flips is transformed once; tllib's default (random crop and flip) is not
    assert draws_nothing_at_random(get_train_transform('res.', hflip=False, resize_size=28))
    assert not draws_nothing_at_random(get_train_transform('default'))
    assert not draws_nothing_at_random(get_train_transform('res.', hflip=True))
    logs = [str(tmp_path / name) for name in ("plain", "cached")]
    for log, extra in zip(logs, ([], ["--cache-images"])):
        done = run_script("ila_cdan.py", tiny_args(tiny_root, log, "--seed", "2", "--epochs", "1", *extra))
        assert done.returncode == 0, done.stderr
    weights = [torch.load(os.path.join(log, "checkpoints", "latest.pth"), weights_only=True) for log in logs]
    for k in weights[0]:
        assert torch.equal(weights[0][k], weights[1][k]), k
    # the analysis swaps in the validation transform: the cached training transform must not be applied too
    done = run_script("ila_cdan.py", tiny_args(tiny_root, logs[1], "--phase", "analysis", "--cache-images"))
    assert done.returncode == 0, done.stderr


def test_issue_command_on_offline_digits(offline_digits, tmp_path):
    log = str(tmp_path / "log")
    done = run_script("ila_cdan.py", [offline_digits, "-d", "ImageList", "-s", "mnist", "-t", "uci", "-a", "lenet", "--no-pool",
                                      "--scratch", "--train-resizing", "res.", "--val-resizing", "res.",
                                      "--resize-size", "28", "--no-hflip", "--norm-mean", "0.5", "--norm-std", "0.5",
                                      "-b", "64", "--epochs", "1", "-i", "5", "--log", log])
    assert done.returncode == 0, done.stderr
    assert re.search(r"^test_acc1 = \d+\.\d$", done.stdout, re.M)


def test_same_seed_same_result_and_baselines(tiny_root, tmp_path):
    accs = []
    for name, extra in (("a", []), ("b", []), ("erm", ["--trade-off", "0", "--ila-trade-off", "0"]),
                        ("cdan", ["--ila-trade-off", "0"])):
        log = str(tmp_path / name)
        done = run_script("ila_cdan.py", tiny_args(tiny_root, log, "--seed", "3", *extra))
        assert done.returncode == 0, done.stderr
        accs.append(re.search(r"^test_acc1 = (.*)$", done.stdout, re.M).group(1))
        if extra:
            assert "ILA Loss" not in only_log(log, "train")
    assert accs[0] == accs[1]
    assert ("batches: source random (8), target random (8); ILA's source batch class-balanced (3 classes x 2 = 6)"
            in only_log(tmp_path / "a", "train"))
    assert "batches: source random (8), target random (8)" in only_log(tmp_path / "cdan", "train")
    table, note = format_table(collect([str(tmp_path)])).split("\n\n")
    rows = {line.split(" | ")[0].strip("| "): line for line in table.splitlines()[2:]}
    assert set(rows) == {"ERM", "CDAN", "ILA-DA+CDAN"}
    # runs a and b differ only in --log: one row, one seed counted once (not two seeds at a spread of 0)
    assert rows["ILA-DA+CDAN"].endswith(f"| {float(accs[0]):.1f} | 1 |")
    assert note == ("seeds with more than one run, each counted once at the mean of its runs: ILA-DA+CDAN, S→T, "
                    f"seed 3 ({float(accs[0]):.1f} and {float(accs[0]):.1f})")
    assert rows["ERM"].endswith(f"| {float(accs[2]):.1f} | 1 |")


# -d CUB200 and an unknown -t: tests/test_exit_codes.py, which also checks the log folder
@pytest.mark.parametrize("extra, message", [
    (["-d", "NoSuchSet"], r"NoSuchSet.*valid.*ImageList.*Office31"),
    (["-d", "USPS"], r"-d USPS: USPS is one of tllib's digit domains: use -d Digits -s USPS"),
    (["--mu", "1.5"], r"--mu 1.5 .*\(0, 1\]"),
    (["--k", "500"], r"--k 500 .*larger than ILA's source batch"),
    (["--k", "500", "--pseudo-label", "consensus"], r"--k 500 .*larger than ILA's source batch"),
    (["-a", "no_such_net"], r"unknown architecture 'no_such_net'"),
    (["--samples-per-class", "20"], None),  # 8 per class but 20 asked: fine, classes cycle
    (["--balanced-source", "--ila-batch", "extra"], r"--balanced-source .*contradicts --ila-batch extra"),
    (["--classes-per-batch", "4"], r"--classes-per-batch 4 is more than the 3 classes of the data; give at most 3"),
    (["-b", "30"], r"the target domain \(tgt\) has 24 samples, fewer than the batch size 30: lower -b"),
])
def test_bad_input_exits_2_with_a_message(tiny_root, tmp_path, extra, message):
    args = tiny_args(tiny_root, str(tmp_path / "log"), "--epochs", "1", "-i", "1")
    # later flags win in argparse, so the bad value overrides the default
    done = run_script("ila_dann.py", args + extra)
    if message is None:
        assert done.returncode == 0, done.stderr
        return
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert re.search(message, done.stderr), done.stderr


def test_unwritable_log_and_foreign_checkpoint(tiny_root, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    done = run_script("ila_dann.py", tiny_args(tiny_root, str(blocker / "log")))
    assert done.returncode == 2 and "cannot write to --log" in done.stderr and "Traceback" not in done.stderr

    log = str(tmp_path / "log")
    assert run_script("ila_dann.py", tiny_args(tiny_root, log, "--epochs", "1", "-i", "1")).returncode == 0
    done = run_script("ila_dann.py", tiny_args(tiny_root, log, "--phase", "test", "--bottleneck-dim", "64"))
    assert done.returncode == 2 and "does not fit this model" in done.stderr and "Traceback" not in done.stderr


def test_torchrun_two_processes(tiny_root, tmp_path):
    log = str(tmp_path / "log")
    env = script_env("standalone")
    # '--' keeps torchrun's own parser away from the script's flags (it would read --log as ambiguous)
    # --standalone: a local rendezvous on a free port (a fixed or zero --master_port can clash or hang)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           os.path.join(SCRIPTS, "ila_cdan.py"), "--"] + tiny_args(tiny_root, log, "--seed", "0", "--epochs", "1",
                                                                 "--per-class-eval")
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    text = only_log(log, "train")                      # exactly one log: only rank 0 writes
    assert "torch.distributed: 2 processes (gloo)" in text
    # the same images, the same weights (see tests/test_exit_codes.py::test_torchrun_best_acc1_equals_test_acc1)
    best, test = (re.findall(rf"^{name} = (\d+\.\d)$", text, re.M) for name in ("best_acc1", "test_acc1"))
    assert len(best) == len(test) == 1 and best == test
    assert sorted(os.listdir(os.path.join(log, "checkpoints"))) == ["best.pth", "latest.pth", "resume.pth"]
    # the ratio test ran on the global batch: 8 targets in all, round(0.67 * 8) = 5 kept
    assert re.search(r"Kept +5 \( +5\)", text)
    # tllib's per-class table after each evaluation (its counts over both shards: tests/test_distributed.py)
    assert len(re.findall(r"^global correct: ", text, re.M)) == len(re.findall(r"^ \* Acc@1 ", text, re.M)) == 2


def test_torchrun_mdd_with_a_source_only_warm_up(tiny_root, tmp_path):
    # the warm-up trains on CE alone: MDD's adversarial head gets no gradient, which DDP must expect
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           os.path.join(SCRIPTS, "ila_mdd.py"), "--"] + tiny_args(tiny_root, str(tmp_path / "log"), "--seed", "0",
                                                                 "--epochs", "1", "--pretrain-iters", "2")
    done = subprocess.run(cmd, capture_output=True, text=True, env=script_env("standalone"), timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert re.search(r"^Pretrain: \[0/2\]", done.stdout, re.M) and re.search(r"^test_acc1 = ", done.stdout, re.M)


def test_torchrun_bsp_pretrains_then_every_process_reads_the_saved_weights(tiny_root, tmp_path):
    # process 0 writes pretrain.pth, every process loads it: process 1 read it before it existed
    log = str(tmp_path / "log")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           os.path.join(SCRIPTS, "ila_bsp.py"), "--"] + tiny_args(tiny_root, log, "--seed", "0", "--epochs", "1",
                                                                 "--pretrain-epochs", "1")
    done = subprocess.run(cmd, capture_output=True, text=True, env=script_env("standalone"), timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Pretraining process is done." in done.stdout and re.search(r"^test_acc1 = ", done.stdout, re.M)
    assert "pretrain.pth" in os.listdir(os.path.join(log, "checkpoints"))


def test_balanced_source_control_has_its_own_row(tiny_root, tmp_path):
    # the sampling control: ILA's class-balanced source batch, no ILA term
    log = str(tmp_path / "control")
    done = run_script("ila_dann.py", tiny_args(tiny_root, log, "--epochs", "1", "--ila-trade-off", "0",
                                               "--balanced-source"))
    assert done.returncode == 0, done.stderr
    text = only_log(log, "train")
    assert "batches: source class-balanced (3 classes x 2 = 6), target random (8)" in text
    assert "ILA Loss" not in text
    table = format_table(collect([str(tmp_path)])).splitlines()
    assert table[2].startswith("| DANN (balanced source) |")


def test_ila_meters_appear_when_ila_starts(tiny_root, tmp_path):
    log = str(tmp_path / "log")
    done = run_script("ila_dann.py", tiny_args(tiny_root, log, "--ila-start-iter", "4"))   # epoch 1 of 2 x 4
    assert done.returncode == 0, done.stderr
    lines = only_log(log, "train").splitlines()
    epoch0 = [line for line in lines if line.startswith("Epoch: [0]")]
    epoch1 = [line for line in lines if line.startswith("Epoch: [1]")]
    assert epoch0 and not any("ILA Loss" in line for line in epoch0)
    assert epoch1 and all("ILA Loss" in line and "PL Prec" in line for line in epoch1)
    assert sum(line.startswith("ILA: ") for line in lines) == 1       # one summary: epoch 1's


def test_a_target_that_is_also_a_source_is_warned_of(tiny_root, tmp_path):
    # -s src tgt -t tgt trains on the target's labels: tllib's scripts run it without a word
    log = str(tmp_path / "log")
    args = tiny_args(tiny_root, log, "--epochs", "1", "-i", "1")
    args[args.index("-s") + 1:args.index("-s") + 2] = ["src", "tgt"]
    done = run_script("ila_dann.py", args)
    assert done.returncode == 0, done.stderr
    assert re.search(r"ila_dann\.py:\d+: UserWarning: -t tgt is also a source domain \(-s src tgt\): its labels train "
                     r"the classifier, so the target accuracy measures no adaptation", done.stderr), done.stderr
    assert "also a source domain" not in run_script("ila_dann.py", tiny_args(tiny_root, str(tmp_path / "other"),
                                                                              "--epochs", "1", "-i", "1")).stderr
    # a domain found case-insensitively is that domain: warned of too, and logged as the dataset spells it
    args[args.index("-s") + 1:args.index("-s") + 3] = ["SRC", "Tgt"]
    args[args.index("--log") + 1] = str(tmp_path / "cased")
    done = run_script("ila_dann.py", args)
    assert done.returncode == 0 and "UserWarning: -t tgt is also a source domain (-s src tgt)" in done.stderr
    assert "source=['src', 'tgt'], target=['tgt']" in only_log(str(tmp_path / "cased"), "train")


@pytest.mark.parametrize("flags, said", [
    ([], "ILA mines on: a second pass, without gradient, from the network's first dropout layer on"),
    (["--ila-mining-ema", "0"], "ILA mines on: the network's own pass"),      # the paper's: it said nothing
    (["--pseudo-label", "classifier"], "ILA mines on: the network's own pass"),
    (["--ila-trade-off", "0"], None)])
def test_the_log_says_what_ila_mines_on_wherever_ila_runs(tiny_root, tmp_path, flags, said):
    log = str(tmp_path / "log")
    done = run_script("ila_dann.py", tiny_args(tiny_root, log, "--epochs", "1", "-i", "1", *flags))
    assert done.returncode == 0, done.stderr
    lines = [line for line in only_log(log, "train").splitlines() if line.startswith("ILA mines on")]
    assert lines == [] if said is None else len(lines) == 1 and lines[0].startswith(said), lines


def test_extra_batch_pretraining_and_ablation_flags(tiny_root, tmp_path):
    log = str(tmp_path / "log")
    done = run_script("ila_dann.py", tiny_args(tiny_root, log, "--epochs", "1", "--ila-batch", "extra",
                                               "--pretrain-iters", "3", "--pseudo-label", "classifier",
                                               "--metric-loss", "triplet", "--similarity", "inverse_euclidean"))
    assert done.returncode == 0, done.stderr
    text = only_log(log, "train")
    assert "Pretrain: [0/3]" in text and "Pretrain: [2/3]" in text
    assert "batches: source random (8), target random (8); ILA's source batch class-balanced (3 classes x 2 = 6)" in text
    # the adversary saw tllib's random batch of -b 8 while ILA had its own balanced batch of 3 x 2
    assert re.search(r"ILA: \d+ of 4 batches", text) and re.search(r"^test_acc1 = ", text, re.M)


@pytest.mark.parametrize("script, columns", [
    ("ila_mdd.py", r"\tTime \d+\.\d \(\d+\.\d\)\tData .*\tLoss .*\tTrans Loss .*\tCls Acc [^\t]*\tILA Loss"),
    ("ila_bsp.py", r"\tTime +\d+\.\d\d \( *\d+\.\d\d\)\tData .*\tLoss .*\tCls Acc .*\tDomain Acc .*\tILA Loss"),
])
def test_mdd_and_bsp_scripts(tiny_root, tmp_path, backend, script, columns):
    log = str(tmp_path / "log")
    extra = ["--pretrain-epochs", "1"] if script == "ila_bsp.py" else []
    done = run_script(script, tiny_args(tiny_root, log, "--epochs", "1", "--seed", "0", *extra), backend=backend)
    assert done.returncode == 0, done.stderr
    text = only_log(log, "train")
    assert f"tllib pieces: {backend}" in text and re.search(columns, text)
    assert re.search(r"^test_acc1 = \d+\.\d$", done.stdout, re.M)
    if script == "ila_mdd.py":    # tllib's mdd.py prints every group's rate before an epoch, without a name
        assert re.search(r"^\[[-\d.e]+(, [-\d.e]+){3}\]$", text, re.M) and not re.search(r"^lr:", text, re.M)
        # ...and names --wd's value wd in its Namespace line (no dest), between momentum and workers as there
        assert re.search(r"^Namespace\(.*, momentum=0\.9, wd=0\.0005, workers=", text) and "weight_decay" not in text
    else:
        assert re.search(r"^Namespace\(.*, momentum=0\.9, weight_decay=", text)
    if script == "ila_bsp.py":    # tllib's source-only pretraining first, kept as a checkpoint
        assert "Pretraining the model on source domain." in text and "Pretraining process is done." in text
        # as tllib's bsp.py: the group rates, then epochs of its source-only meters
        assert re.search(r"^Pretraining the model on source domain\.\nlr: \[[-\d.e]+(, [-\d.e]+)*\]$", text, re.M)
        assert re.search(r"^Epoch: \[0\]\[0/4\]\tTime +\d+\.\d \( *\d+\.\d\)\tData [^\t]*\tLoss +\d+\.\d\d "
                         r"\( *\d+\.\d\d\)\tCls Acc [^\t]*$", text, re.M)
        assert os.path.isfile(os.path.join(log, "checkpoints", "pretrain.pth"))
    if script == "ila_bsp.py":
        # the baseline in the same folder, from the first run's pretraining (--pretrain): the new run sets that
        # run's other checkpoints aside and leaves the file it reads in place
        pretrained = os.path.join(log, "checkpoints", "pretrain.pth")
        baseline = run_script(script, tiny_args(tiny_root, log, "--epochs", "1", "--ila-trade-off", "0",
                                                "--pretrain", pretrained), backend=backend)
        moved = re.search(r"^=> an earlier run's checkpoints were moved to (.*)\n=> (.*) stays where it is: "
                          r"--pretrain reads it$", baseline.stdout, re.M)
        assert moved and not os.path.exists(os.path.join(moved.group(1), "pretrain.pth")), baseline.stderr[-3000:]
        assert moved.group(2) == pretrained and os.path.isfile(pretrained)
        assert "Pretraining the model" not in baseline.stdout
    else:
        baseline = run_script(script, tiny_args(tiny_root, str(tmp_path / "base"), "--epochs", "1",
                                                "--ila-trade-off", "0"), backend=backend)
    assert baseline.returncode == 0 and "ILA Loss" not in baseline.stdout


#: tllib's own .sh files (thuml/Transfer-Learning-Library, examples/domain_adaptation/image_classification):
#: the digit tasks' --lr (MNIST -> USPS, USPS -> MNIST, SVHN -> MNIST) and Office-31's --seed, per method
TLLIB_RECIPES = {"dann": ((0.01, 0.1, 0.03), 1), "cdan": ((0.01, 0.1, 0.01), 2),
                 "mdd": ((0.01, 0.01, 0.01), 1), "bsp": ((0.01, 0.1, 0.1), 1)}


@pytest.mark.parametrize("name", ["dann", "cdan", "mdd", "bsp"])
def test_task_lists_parse_and_pass_the_flag_checks(name):
    import importlib
    import shlex

    from ila_tllib.engine import check_args, get_parser
    module = importlib.import_module(f"ila_{name}")
    method = next(v for v in vars(module).values() if isinstance(v, type) and getattr(v, "name", None) == name)()
    lines = [line for line in open(os.path.join(SCRIPTS, f"ila_{name}.sh")) if " python " in line]
    assert len(lines) >= 21
    for line in lines:
        words = shlex.split(line)
        argv = words[words.index(f"ila_{name}.py") + 1:]
        args = get_parser(method).parse_args(argv)
        check_args(args, method)
        assert args.log.startswith(f"logs/ila_{name}/") and args.ila_trade_off > 0
        (digit_lrs, office31_seed) = TLLIB_RECIPES[name]
        if args.data == "Digits":
            task = ("MNIST", "USPS", "SVHNRGB").index(args.source[0])
            assert args.lr == digit_lrs[task], line
        if args.data == "Office31":
            assert args.seed == office31_seed, line


@pytest.mark.parametrize("script", sorted(os.path.basename(p) for p in glob.glob(os.path.join(REPO, "benchmarks", "*.py"))
                                          if not os.path.basename(p).startswith("_")))   # _*.py: shared by scripts
def test_every_benchmark_script_explains_itself(script):
    path = os.path.join(REPO, "benchmarks", script)
    done = subprocess.run([sys.executable, path, "--help"], capture_output=True, text=True, env=script_env(),
                          timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("usage:"), done.stderr[-2000:]

