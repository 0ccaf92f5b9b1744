"""Exit codes and messages that automation can trust (0 done, 2 bad input, 3 divergence).

Every case runs a script as a user does: a subprocess whose stdout and stderr are pipes (but for the
flag checks marked "in process", which call the scripts' own check_args on many more flag sets than a
subprocess each could afford; the subprocess cases before them show that such a check exits 2). Each checks
the exit code, the one ``error:`` line, that no traceback was printed and, where a run must not touch
them, that the checkpoints are byte for byte what they were. A case that happens after the --log folder
is opened (where a logger that closes the real stdout would lose the message) runs with tllib's pieces
and with the standalone ones (fixture ``backend``) and also finds its message in the log file; a flag
error, found before any folder is opened, runs once.
"""
import contextlib
import fcntl
import glob
import os
import re
import shutil
import subprocess
import sys
import time

import pytest
import torch

from helpers import (DIGIT_FLAGS, FULL_DISK, OUT_OF_MEMORY, SCRIPTS, TLLIB, as_torchrun, checkpoint_files, flag_error,
                     make_image_list, one_error, only_log, run_script, script_env, tiny_args)

ONE_EPOCH = ("--epochs", "1", "-i", "2", "--seed", "0")


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return make_image_list(tmp_path_factory.mktemp("exit_codes_data"))


@pytest.fixture
def own_root(root, tmp_path):
    """A copy of the images and lists that a test may damage."""
    return shutil.copytree(root, str(tmp_path / "data"))


@pytest.fixture(scope="module")
def finished_runs(root, tmp_path_factory):
    """One finished 1-epoch training run per backend, made on first use: (its --log, its CompletedProcess)."""
    made = {}

    def get(backend):
        if backend not in made:
            log = str(tmp_path_factory.mktemp(f"finished_{backend}") / "log")
            made[backend] = log, run_script("ila_dann.py", tiny_args(root, log, *ONE_EPOCH), backend=backend)
        return made[backend]
    return get


@pytest.fixture
def finished(finished_runs, backend, tmp_path):
    """A copy of a finished run's --log folder that the test may use up."""
    log, done = finished_runs(backend)
    assert done.returncode == 0, done.stderr[-3000:]
    return shutil.copytree(log, str(tmp_path / "log"))


def logged(log, phase, line):
    """The message reached the log file as well as the pipe."""
    assert line in only_log(log, phase)


# ----------------------------------------------------------------- success: exit 0, through a pipe

def test_finished_run_exits_0(finished_runs, backend):
    # --phase test and analysis end with 0 too: tests/test_scripts.py::test_train_test_analysis
    log, done = finished_runs(backend)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr and f"tllib pieces: {backend}" in done.stdout
    result = re.search(r"^test_acc1 = \d+\.\d$", done.stdout, re.M)
    assert result and done.stdout.rstrip().endswith(result.group(0))
    assert result.group(0) in only_log(log, "train")


# ----------------------------------------------------------------- flag errors: before any folder

@pytest.mark.parametrize("extra, message", [
    (["--seed", "-1"], r"--seed -1 is outside 0 \.\. 2\*\*32 - 1; give a non-negative seed"),
    (["-d", "CUB200"], r"-d CUB200: tllib's CUB200 is a single-domain dataset"),
])
def test_flag_error_exits_2_before_any_folder(root, tmp_path, extra, message):
    log = tmp_path / "log"
    line = one_error(run_script("ila_dann.py", tiny_args(root, log, *ONE_EPOCH, *extra)), 2)
    assert re.search(message, line), line
    assert not log.exists()


@pytest.mark.parametrize("extra, message", [
    (["--resize-size", "32"], r"-a lenet takes 28x28 images, but .*--resize-size 32 .*use .*--resize-size 28"),
    (["--norm-std", "0"], r"--norm-std 0\.0: every value must be positive"),
    (["--lr", "nan", "-i", "1"], r"--lr nan is not a finite number; give a finite value"),
    (["--ila-trade-off", "nan"], r"--ila-trade-off nan is not a finite number; give a finite value"),
    (["--samples-per-class", "0", "--classes-per-batch", "2"],
     r"--classes-per-batch 2 shapes a class-balanced batch, and there is none \(--samples-per-class 0\); add "
     r"--samples-per-class m > 0 or drop it"),
    (["--ila-source-sampling", "random", "--ila-batch", "shared"],
     r"--ila-source-sampling random draws ILA's own source batch, and there is none here; it needs ILA with "
     r"--ila-batch extra \(the default\) and --samples-per-class m > 0, or drop it"),
    (["--ila-bank-anchors"], r"--ila-bank-anchors contrasts the source bank's features, and there is no bank; add "
                             r"--ila-source-bank B > 0 or drop it"),
    (["--trade-off", "nan"], r"--trade-off nan is not a finite number"),
    (["--momentum", "nan"], r"--momentum nan is not a finite number"),
    (["--lr-gamma", "nan"], r"--lr-gamma nan is not a finite number"),
    (["--wd", "inf"], r"--weight-decay inf is not a finite number"),
    (["--ila-temperature=-inf"], r"--ila-temperature -inf is not a finite number"),
    (["--lr", "1e300"], r"--lr 1e\+300 lies beyond float32's range \(±3\.4e38\), in which the weights and the "
                        r"losses are computed; give a smaller value$"),
    (["--ila-trade-off=-1e39"], r"--ila-trade-off -1e\+39 lies beyond float32's range"),
    (["--norm-mean", "nan"], r"--norm-mean nan is not a finite number"),
    (["--seed", str(2 ** 32)], r"--seed 4294967296 is outside 0 \.\. 2\*\*32 - 1"),
    (["--norm-std", "-0.5"], r"--norm-std -0\.5: every value must be positive"),
    (["-a", "dtn", "--norm-mean", "0.5", "--norm-std", "0.5"], r"-a dtn takes 32x32 images"),
    (["--lr", "-0.01"], r"--lr -0\.01 must be positive$"),
    (["--classes-per-batch", "0"], r"--classes-per-batch 0: a class-balanced batch needs classes to draw from; "
                                   r"give 2 or more, or leave it out for all classes$"),
    (["--classes-per-batch", "1"], r"--classes-per-batch 1: every class-balanced batch would hold one class \(ILA "
                                   r"would give every target that class and contrast nothing\); give 2 or more"),
    (["--samples-per-class", "1"], r"--k 3 with --samples-per-class 1: .* every vote is a tie; use --k 1, or "
                                   r"--samples-per-class 2 or more$"),
    (["--samples-per-class", "1", "--k", "1"], None),
    (["--samples-per-class", "1", "--ila-source-bank", "4"], None),   # the bank gives the vote more per class
    (["-b", "1", "--pretrain-iters", "2"], r"a source batch of 1 with --pretrain-iters 2: a source-only step would "
                                           r"train BatchNorm on one image, which it cannot; raise -b$"),
    (["--ila-batch", "shared", "--samples-per-class", "1", "--k", "1", "--classes-per-batch", "1",
      "--pretrain-iters", "2"], r"--classes-per-batch 1: every class-balanced batch would hold one class \(ILA"),
    (["--balanced-source", "--ila-batch", "shared", "--ila-trade-off", "0", "--classes-per-batch", "1"],
     r"--classes-per-batch 1: every class-balanced batch would hold one class; give 2 or more"),
    # the source-only steps read the class-balanced batch here, not -b
    (["-b", "1", "--pretrain-iters", "2", "--ila-batch", "shared"], None),
    # training's rules do not stop a test of a finished run, and a batch that is not drawn has no rule
    (["--samples-per-class", "1", "--phase", "test"], None),
    (["-b", "1", "--pretrain-iters", "2", "--phase", "analysis"], None),
    (["--classes-per-batch", "1", "--ila-trade-off", "0"], None),
    (["--classes-per-batch", "1", "--ila-source-sampling", "random"], None),
])
def test_more_flag_errors(root, extra, message):
    # in process: the same check_args as the script above
    if message is None:
        import ila_dann
        from ila_tllib.engine import check_args, get_parser
        check_args(get_parser(ila_dann.DANN()).parse_args(tiny_args(root, "unused", *ONE_EPOCH, *extra)),
                   ila_dann.DANN())
        return
    error = flag_error(tiny_args(root, "unused", *ONE_EPOCH, *extra))
    assert re.match(message, error), error


def test_source_only_steps_need_two_images_in_every_process(root, monkeypatch):
    # in process: WORLD_SIZE alone, without a process group (the torchrun case is further down)
    # under torchrun -b is split over the processes: -b 2 over two gives each one image
    as_torchrun(monkeypatch)
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)    # --sync-bn below needs GPUs
    assert flag_error(tiny_args(root, "unused", *ONE_EPOCH, "-b", "2", "--pretrain-iters", "2")) == (
        "a source batch of 2 over 2 processes with --pretrain-iters 2: a source-only step would train BatchNorm on "
        "one image, which it cannot; raise -b")
    # a class-balanced batch of 2 classes x 1 is split too; with --sync-bn the statistics are pooled instead
    # (without --classes-per-batch the size waits for the data: the torchrun test below)
    assert flag_error(tiny_args(root, "unused", *ONE_EPOCH, "--ila-batch", "shared", "--samples-per-class", "1",
                                "--k", "1", "--classes-per-batch", "2", "--pretrain-iters", "2")) == (
        "a class-balanced source batch of 2 (2 classes x 1) over 2 processes with --pretrain-iters 2: a source-only "
        "step would train BatchNorm on one image, which it cannot; raise --samples-per-class or --classes-per-batch")
    import ila_bsp
    import ila_dann
    from ila_tllib.engine import check_args, get_parser
    for method, extra in ((ila_dann.DANN(), ["-b", "2", "--sync-bn", "--ila-bn-statistics", "all",
                                             "--pretrain-iters", "2"]),
                          # BSP's pretraining does not run with its weights given, nor on a resume
                          (ila_bsp.BSP(), ["-b", "1", "--pretrain", "weights.pth"]),
                          (ila_bsp.BSP(), ["-b", "1", "--resume"])):
        check_args(get_parser(method).parse_args(tiny_args(root, "unused", *ONE_EPOCH, *extra)), method)


@pytest.mark.parametrize("extra, message", [
    (["-b", "1", "--pretrain-epochs", "1"], "a source batch of 1 with BSP's source-only pretraining: a source-only "
                                            "step would train BatchNorm on one image, which it cannot; raise -b or "
                                            "give --pretrain"),
    (["--trade-off-bsp", "-1"], "--trade-off-bsp -1.0 cannot be negative"),
    (["--pretrain-lr", "0"], "--pretrain-lr 0.0 must be positive"),
])
def test_bsp_flag_errors_name_the_flag(root, tmp_path, extra, message):
    log = tmp_path / "log"
    assert one_error(run_script("ila_bsp.py", tiny_args(root, str(log), *ONE_EPOCH, *extra)), 2) == f"error: {message}"
    assert not log.exists()


# ----------------------------------------------------------------- bad input after the folder is opened

@pytest.mark.parametrize("backend", [None, "hidden"], ids=["tllib_installed", "without_tllib"])
def test_issue_command_through_a_pipe(root, tmp_path, backend):
    # exactly as typed in a shell: both streams into one pipe, the exit code of the script itself
    if backend is None and not TLLIB:
        pytest.skip("tllib is not installed")
    log = str(tmp_path / "logs" / "x")
    argv = [sys.executable, os.path.join(SCRIPTS, "ila_cdan.py"), root, "-d", "ImageList", "-s", "src", "-t",
            "nosuchdomain", *DIGIT_FLAGS, "--log", log]
    command = " ".join(f"'{a}'" for a in argv) + " 2>&1 | cat; exit ${PIPESTATUS[0]}"
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, env=script_env(backend),
                          timeout=300)
    assert done.returncode == 2, done.stdout[-3000:]
    assert "Traceback" not in done.stdout and "closed file" not in done.stdout
    errors = [line for line in done.stdout.splitlines() if line.startswith("error: ")]
    assert errors == ["error: unknown domain 'nosuchdomain' for dataset ImageList; valid domains are: src, tgt"]
    # the domains are named before the run writes anything: no --log folder that would read as a run's
    assert not os.path.exists(os.path.dirname(log))


def test_three_field_list_line_is_malformed(own_root, tmp_path, backend):
    path = os.path.join(own_root, "image_list", "src.txt")
    lines = open(path).read().splitlines()
    lines[2] += " 1"   # 'src/0/2.png 0 1'
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    log = str(tmp_path / "log")
    line = one_error(run_script("ila_dann.py", tiny_args(own_root, log, *ONE_EPOCH), backend=backend), 2)
    assert re.search(r"src\.txt, line 3: malformed line 'src/0/2\.png 0 1': 3 fields", line), line
    assert "missing" not in line
    assert not os.path.exists(log)      # a refused run leaves no folder of its own (the message is on stderr)


def test_corrupt_image_with_two_workers(own_root, tmp_path, backend):
    # -j 2, the default: the image is decoded in a worker process, whose whole traceback the
    # DataLoader puts into the message it re-raises
    with open(os.path.join(own_root, "tgt", "0", "1.png"), "wb") as f:
        f.write(b"not a png")
    log = str(tmp_path / "log")
    done = run_script("ila_dann.py", tiny_args(own_root, log, *ONE_EPOCH, "-j", "2"), backend=backend)
    line = one_error(done, 2)
    assert re.search(r"^error: cannot read image .*tgt/0/1\.png .*replace or delete it and its line in "
                     r".*tgt\.txt$", line), line
    assert "Original Traceback" not in done.stderr and "DataLoader worker" not in line
    logged(log, "train", line)
    assert not checkpoint_files(log)   # the epoch did not finish: nothing saved


DAMAGES = {
    "truncated": lambda data: data[:len(data) // 2],
    "empty": lambda data: b"",
    "random bytes": lambda data: os.urandom(len(data)),
}
USES = (("resume", ["--resume"], "--resume"), ("best", ["--phase", "test"], "--phase test"))


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_damaged_checkpoint(finished, root, backend, damage):
    # each backend meets every damage, and both uses: resume.pth under --resume, best.pth under
    # --phase test (tllib's run takes the other use of each damage); load_file's unit test has them all
    name, flags, what = USES[(list(DAMAGES).index(damage) + (backend == "tllib")) % 2]
    path = os.path.join(finished, "checkpoints", f"{name}.pth")
    with open(path, "rb") as f:
        intact = f.read()
    with open(path, "wb") as f:
        f.write(DAMAGES[damage](intact))
    before = checkpoint_files(finished)
    done = run_script("ila_dann.py", tiny_args(root, finished, *ONE_EPOCH, *flags), backend=backend)
    line = one_error(done, 2)
    assert line.startswith(f"error: {what}: {path} cannot be read (") and "it is damaged or not a checkpoint" in line
    assert checkpoint_files(finished) == before
    assert "Epoch:" not in done.stdout        # nothing trained on bad input
    phase = "test" if what == "--phase test" else "train"
    assert line in open(sorted(glob.glob(os.path.join(finished, f"{phase}-*.txt")))[-1]).read()


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_load_file_names_a_damaged_file(tmp_path, damage):
    import torch
    from ila_tllib.engine import UsageError
    from ila_tllib.engine.checkpoint import load_file
    path = str(tmp_path / "resume.pth")
    torch.save({"w": torch.zeros(1000)}, path)
    with open(path, "rb") as f:
        intact = f.read()
    with open(path, "wb") as f:
        f.write(DAMAGES[damage](intact))
    for weights_only in (True, False):   # --phase test reads weights only, --resume the whole state
        with pytest.raises(UsageError, match=rf"^--resume: {re.escape(path)} cannot be read \(.*\); it is "
                                             r"damaged or not a checkpoint: FIX$") as error:
            load_file(path, "--resume", "FIX", weights_only=weights_only)
        # torch's own text ends at its first sentence: its advice (load with weights_only=False, report a bug)
        # does not fit a damaged file
        said = str(error.value).split(" cannot be read (", 1)[1].rsplit("); it is damaged", 1)[0]
        assert "weights_only" not in said and "If you are seeing" not in said and "trust" not in said, said


def test_unwritable_checkpoints_folder_found_before_training(root, tmp_path):
    # found while claiming the folder, before the log file is opened: like a flag error, run once
    log = str(tmp_path / "log")
    with unwritable(os.path.join(log, "checkpoints")):
        done = run_script("ila_dann.py", tiny_args(root, log, *ONE_EPOCH))
    line = one_error(done, 2)
    assert re.search(rf"^error: cannot write to --log {re.escape(log)}: {re.escape(log)}/checkpoints: "
                     r"(Permission denied|Operation not permitted); make it writable or choose another --log$",
                     line), line
    assert "Epoch:" not in done.stdout


@pytest.mark.parametrize("full_at", ["1", "write"])
def test_full_disk_while_saving(finished, root, backend, full_at):
    # the second epoch's checkpoint cannot be written, at its flush to disk or in the middle of torch.save's
    # writes (torch then raises a RuntimeError of its own): the run ends with one message and the first
    # epoch's checkpoints whole, with no temporary file left
    before = checkpoint_files(finished)
    done = run_script("ila_dann.py", tiny_args(root, finished, *ONE_EPOCH, "--resume", "--epochs", "2"),
                      backend=backend, PYTHONPATH=FULL_DISK, ILA_TEST_FULL_DISK=full_at)
    line = one_error(done, 2)
    latest = os.path.join(finished, "checkpoints", "latest.pth")
    assert line == (f"error: no space left on the device writing {latest}; a failed write leaves the file it "
                    f"replaces as it was, and resume.pth holds epoch 0: free space, then continue with --resume")
    assert checkpoint_files(finished) == before
    assert "Epoch: [1]" in done.stdout
    assert line in open(sorted(glob.glob(os.path.join(finished, "train-*.txt")))[-1]).read()


def test_a_batch_larger_than_the_gpus_memory_is_named(root, tmp_path):
    # tllib's DomainNet lines give ILA a class-balanced batch of 345 x 4 images: the first step ran out of
    # GPU memory with a traceback (exit 1)
    log = str(tmp_path / "log")
    done = run_script("ila_dann.py", tiny_args(root, log, *ONE_EPOCH), PYTHONPATH=OUT_OF_MEMORY,
                      ILA_TEST_OUT_OF_MEMORY="device")
    assert one_error(done, 2) == ("error: CUDA out of memory. Tried to allocate 1.38 GiB: lower -b, or ILA's own "
                                  "class-balanced source batch (the log's 'batches:' line gives its size; "
                                  "--samples-per-class, --classes-per-batch), or add --amp")
    assert "batches: source random (8), target random (8); ILA's source batch class-balanced" in done.stdout
    assert not os.path.exists(os.path.join(log, "checkpoints"))
    # the host's allocator failing stays a traceback: a tensor of absurd size there is more often a bug
    done = run_script("ila_dann.py", tiny_args(root, str(tmp_path / "host"), *ONE_EPOCH), PYTHONPATH=OUT_OF_MEMORY,
                      ILA_TEST_OUT_OF_MEMORY="host")
    assert done.returncode == 1 and "DefaultCPUAllocator: can't allocate memory" in done.stderr


@pytest.mark.parametrize("world_size, said", [
    ("abc", "WORLD_SIZE='abc' is not a number of processes; unset it, or start the script with torchrun, which sets it"),
    ("2", "WORLD_SIZE=2 without RANK, LOCAL_RANK, MASTER_ADDR, MASTER_PORT: several processes are started by "
          "torchrun (torchrun --nproc_per_node 2 SCRIPT ...); unset WORLD_SIZE for one")])
def test_a_world_size_left_in_the_shell_is_named(root, tmp_path, world_size, said):
    # int("abc") and the process group's "RANK expected" were tracebacks (exit 1)
    log = tmp_path / "log"
    done = run_script("ila_dann.py", tiny_args(root, str(log), *ONE_EPOCH), WORLD_SIZE=world_size)
    assert one_error(done, 2) == f"error: {said}"
    assert not log.exists()


# ----------------------------------------------------------------- divergence: exit 3, nothing saved

def test_a_log_folder_removed_during_the_run_is_named(root, tmp_path, backend):
    # its checkpoints/ gone when the first epoch's weights are written: FileNotFoundError, a traceback
    log = str(tmp_path / "log")
    done = run_script("ila_dann.py", tiny_args(root, log, *ONE_EPOCH), backend=backend, PYTHONPATH=FULL_DISK,
                      ILA_TEST_FULL_DISK="gone")
    assert one_error(done, 2) == (f"error: {os.path.join(log, 'checkpoints')} is gone (moved or removed during the "
                                  f"run), so epoch 0's checkpoints could not be written; start the run again")


def test_full_disk_during_analysis_leaves_the_earlier_figure(finished, root, backend):
    # tllib's t-SNE saved straight to visualize/TSNE.pdf: a disk full at that moment left half a figure in
    # place of the earlier one
    first = run_script("ila_dann.py", tiny_args(root, finished, *ONE_EPOCH, "--phase", "analysis"), backend=backend)
    assert first.returncode == 0, first.stderr[-3000:]
    figure = os.path.join(finished, "visualize", "TSNE.pdf")
    with open(figure, "rb") as f:
        before = f.read()
    done = run_script("ila_dann.py", tiny_args(root, finished, *ONE_EPOCH, "--phase", "analysis"), backend=backend,
                      PYTHONPATH=FULL_DISK, ILA_TEST_FULL_DISK="1")
    line = one_error(done, 2)
    assert line == f"error: no space left on the device writing {figure}: free space there, then run again", line
    with open(figure, "rb") as f:
        assert f.read() == before
    assert not [name for name in os.listdir(os.path.dirname(figure)) if name.startswith(".tmp-")]


def test_non_finite_batchnorm_statistics_stop_before_saving(root, tmp_path, backend):
    # a huge ILA weight leaves the losses finite but the BatchNorm statistics infinite
    log = str(tmp_path / "log")
    done = run_script("ila_dann.py", tiny_args(root, log, *ONE_EPOCH, "-i", "4", "--ila-trade-off", "1e12"),
                      backend=backend)
    line = one_error(done, 3)
    assert re.search(r"^error: (training diverged in epoch 0: .* holds non-finite values|the \w+ loss became "
                     r"\S+ at iteration \d)", line), line
    assert line.endswith("nothing was saved for epoch 0: no epoch had finished")
    assert not checkpoint_files(log)
    logged(log, "train", line)


def test_divergence_leaves_the_last_good_checkpoints(finished, root, backend):
    # --lr is one of the flags a resume may change (what the message tells a diverged run to lower): epoch 1
    # diverges, epoch 0's files stay
    before = checkpoint_files(finished)
    done = run_script("ila_dann.py", tiny_args(root, finished, *ONE_EPOCH, "--resume", "--epochs", "2",
                                               "--lr", "1e30"), backend=backend)
    assert "note: --lr 0.01 (now 1e+30): the rest of the run trains with the new value" in done.stdout
    line = one_error(done, 3)
    assert re.search(r"nothing was saved for epoch 1: the checkpoints in .* still hold epoch 0 \(best_acc1 = "
                     r"\d+\.\d\); continue from them with --resume and a lower --lr$", line), line
    assert checkpoint_files(finished) == before


def test_a_cdan_discriminator_gone_non_finite_is_a_divergence(root, tmp_path, backend):
    # CDAN's binary cross entropy checks its input: a discriminator whose weights became NaN fails that check
    # before the transfer loss's value can be checked, which must still read as a divergence (exit 3), not a
    # crash. The discriminator's weights are made NaN in the resume state (the network's stay finite)
    log = str(tmp_path / "log")
    first = run_script("ila_cdan.py", tiny_args(root, log, *ONE_EPOCH), backend=backend)
    assert first.returncode == 0, first.stderr[-3000:]
    path = os.path.join(log, "checkpoints", "resume.pth")
    state = torch.load(path, weights_only=False)
    for tensor in state["modules"]["transfer"].values():
        if tensor.is_floating_point():
            tensor.fill_(float("nan"))
    torch.save(state, path)
    before = checkpoint_files(log)
    done = run_script("ila_cdan.py", tiny_args(root, log, *ONE_EPOCH, "--resume", "--epochs", "2"), backend=backend)
    line = one_error(done, 3)
    assert re.search(r"^error: training diverged at iteration 2: transfer \S+ holds non-finite values \(lower --lr",
                     line), line
    assert line.endswith("continue from them with --resume and a lower --lr")
    assert checkpoint_files(log) == before


# ----------------------------------------------------------------- runs lost or mixed up

def test_second_run_on_a_busy_log_exits_2(root, tmp_path, backend):
    log = str(tmp_path / "log")
    # the first run writes into a small pipe that nobody reads: it holds the folder, then waits, idle
    read_end, write_end = os.pipe()
    with contextlib.suppress(AttributeError, OSError):   # Linux: a pipe of one page
        fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 4096)
    first = subprocess.Popen([sys.executable, os.path.join(SCRIPTS, "ila_dann.py")]
                             + tiny_args(root, log, "--epochs", "1", "-i", "100000", "-p", "1"),
                             stdout=write_end, stderr=write_end, env=script_env(backend))
    os.close(write_end)
    try:
        lock, deadline = os.path.join(log, ".lock"), time.time() + 120
        while not (os.path.exists(lock) and f"process {first.pid}," in open(lock).read()):
            assert first.poll() is None and time.time() < deadline, "the first run never took the lock"
            time.sleep(0.2)
        done = run_script("ila_dann.py", tiny_args(root, log, *ONE_EPOCH), backend=backend)
        line = one_error(done, 2)
        assert re.search(rf"--log {re.escape(log)} is in use by another run \(process {first.pid}, phase train, "
                         r"started .*\); wait for it to end or choose another --log$", line), line
        assert len(glob.glob(os.path.join(log, "train-*.txt"))) == 1   # the second run wrote nothing there
        assert not checkpoint_files(log)
        assert first.poll() is None
    finally:
        first.kill()
        first.wait()
        os.close(read_end)


def test_rerun_keeps_the_finished_checkpoints(finished, root, backend):
    before = checkpoint_files(finished)
    figure = os.path.join(finished, "visualize", "TSNE.pdf")     # as the earlier run's --phase analysis left it
    with open(figure, "wb") as f:
        f.write(b"the earlier run's figure")
    done = run_script("ila_dann.py", tiny_args(root, finished, *ONE_EPOCH), backend=backend)
    assert done.returncode == 0, done.stderr[-3000:]
    moved = re.search(r"^=> an earlier run's checkpoints were moved to (.*) \(its analysis figures to \1/visualize\)$",
                      done.stdout, re.M)
    assert moved and os.path.dirname(moved.group(1)) == os.path.join(finished, "checkpoints"), done.stdout[-3000:]
    kept = os.path.relpath(moved.group(1), finished)
    assert {os.path.join(kept, os.path.basename(name)): data for name, data in before.items()} == \
        {name: data for name, data in checkpoint_files(finished).items()
         if name.startswith(kept) and not name.startswith(os.path.join(kept, "visualize"))}
    # its figures went with them: nothing in visualize/ reads as the new run's
    assert not os.path.exists(figure)
    with open(os.path.join(moved.group(1), "visualize", "TSNE.pdf"), "rb") as f:
        assert f.read() == b"the earlier run's figure"


def test_rerun_stopped_by_bad_input_leaves_the_checkpoints(finished, root, backend):
    # the target list is misspelt: the run stops before training, and the finished run's files stay put
    before = checkpoint_files(finished)
    argv = tiny_args(root, finished, *ONE_EPOCH)
    argv[argv.index("-t") + 1] = "tgtt"
    done = run_script("ila_dann.py", argv, backend=backend)
    assert "tgtt" in one_error(done, 2)
    assert "moved" not in done.stdout
    assert checkpoint_files(finished) == before


def test_rerun_with_a_damaged_pretrain_file_leaves_the_checkpoints(finished, root, tmp_path):
    # BSP reads --pretrain before it sets an earlier run's checkpoints aside
    before = checkpoint_files(finished)
    damaged = tmp_path / "pretrain.pth"
    damaged.write_bytes(b"not a checkpoint")
    done = run_script("ila_bsp.py", tiny_args(root, finished, *ONE_EPOCH, "--pretrain", damaged))
    assert one_error(done, 2).startswith(f"error: --pretrain: {damaged} cannot be read")
    assert "moved" not in done.stdout
    assert checkpoint_files(finished) == before


def test_bsp_rerun_with_its_own_pretrain_file_runs_again(root, tmp_path):
    # tllib's workflow: pretrain once, then rerun with --pretrain LOG/checkpoints/pretrain.pth in the same
    # folder. The rerun sets the other checkpoints aside but leaves the file it reads, so the same command
    # runs a third time; best.pth named by --pretrain is set aside all the same (the run writes it anew), and
    # pretrain.pth with it once no flag reads it
    log = str(tmp_path / "bsp")
    first = run_script("ila_bsp.py", tiny_args(root, log, *ONE_EPOCH, "--pretrain-epochs", "1"))
    assert first.returncode == 0, first.stderr[-3000:]
    pretrain = os.path.join(log, "checkpoints", "pretrain.pth")
    weights = open(pretrain, "rb").read()
    for _ in range(2):
        again = run_script("ila_bsp.py", tiny_args(root, log, *ONE_EPOCH, "--pretrain", pretrain))
        assert again.returncode == 0, again.stderr[-3000:]
        assert f"=> {pretrain} stays where it is: --pretrain reads it" in again.stdout, again.stdout
        assert open(pretrain, "rb").read() == weights
        moved = re.search(r"^=> an earlier run's checkpoints were moved to (.*)$", again.stdout, re.M).group(1)
        assert sorted(os.listdir(moved)) == ["best.pth", "latest.pth", "resume.pth"]
    best = os.path.join(log, "checkpoints", "best.pth")
    done = run_script("ila_bsp.py", tiny_args(root, log, *ONE_EPOCH, "--pretrain", best))
    assert done.returncode == 0, done.stderr[-3000:]
    moved = re.search(r"^=> an earlier run's checkpoints were moved to (.*)$", done.stdout, re.M).group(1)
    assert sorted(os.listdir(moved)) == ["best.pth", "latest.pth", "pretrain.pth", "resume.pth"]


def test_another_method_s_checkpoints_are_named_as_such(finished, root):
    # a DANN run's folder: MDD's --phase test names what differs, --resume names the method first (its flags
    # differ too, but giving them would not make a DANN checkpoint continue an MDD run); BSP given DANN's
    # resume state as --pretrain says it is one
    best = os.path.join(finished, "checkpoints", "best.pth")
    line = one_error(run_script("ila_mdd.py", tiny_args(root, finished, *ONE_EPOCH, "--phase", "test")), 2)
    assert re.match(rf"error: --phase test: {re.escape(best)} does not fit this model \(\d+ missing, e\.g\. \S+; "
                    r"\d+ not in this model, e\.g\. \S+.*\); it was written by another method's script", line), line
    line = one_error(run_script("ila_mdd.py", tiny_args(root, finished, *ONE_EPOCH, "--resume")), 2)
    assert line == (f"error: --resume: {os.path.join(finished, 'checkpoints', 'resume.pth')} was written by a dann "
                    f"run, not mdd: resume it with the dann script, or use another --log")
    resume = os.path.join(finished, "checkpoints", "resume.pth")
    line = one_error(run_script("ila_bsp.py", tiny_args(root, finished, *ONE_EPOCH, "--pretrain", resume)), 2)
    assert line.startswith(f"error: --pretrain: {resume} holds more than a network's weights (a --resume state): "), line
    assert "\x1b" not in line


def test_a_checkpoint_of_other_shapes_names_one(finished, root):
    best = os.path.join(finished, "checkpoints", "best.pth")
    line = one_error(run_script("ila_dann.py", tiny_args(root, finished, *ONE_EPOCH, "--phase", "test",
                                                         "--bottleneck-dim", "64")), 2)
    assert re.search(rf"{re.escape(best)} does not fit this model \(\d+ of another shape, e\.g\. \S+ \[256, \d+\] "
                     r"\(here \[64, \d+\]\)\)", line), line


def test_divergence_in_bsp_pretraining_names_the_pretraining_rate(root, tmp_path):
    done = run_script("ila_bsp.py", tiny_args(root, str(tmp_path / "log"), *ONE_EPOCH, "--pretrain-epochs", "1",
                                              "--pretrain-lr", "1e30"))
    line = one_error(done, 3)
    assert "in source-only pretraining: lower --pretrain-lr" in line and "--trade-off" not in line, line


def test_bsp_pretraining_whose_weights_become_non_finite_saves_nothing(root, tmp_path):
    # the pretraining loss can stay finite while the weights or BatchNorm statistics do not: the pretraining
    # stops there, naming its own rate, and writes no pretrain.pth for a later --pretrain to read
    log = str(tmp_path / "log")
    done = run_script("ila_bsp.py", tiny_args(root, log, *ONE_EPOCH, "--pretrain-epochs", "2",
                                              "--pretrain-lr", "1e4"))
    line = one_error(done, 3)
    assert "source-only pretraining" in line and "lower --pretrain-lr" in line and "--trade-off" not in line, line
    assert not os.path.exists(os.path.join(log, "checkpoints", "pretrain.pth"))


def test_weights_holding_non_finite_values_are_refused(tmp_path):
    from ila_tllib.engine.checkpoint import load_weights
    from ila_tllib.engine.errors import UsageError
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    state = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    state["1.running_var"][1] = float("inf")
    path = str(tmp_path / "pretrain.pth")
    torch.save(state, path)
    with pytest.raises(UsageError) as error:
        load_weights(model, path, "--pretrain", "FIX")
    assert str(error.value) == f"--pretrain: {path} holds non-finite values (1.running_var), the weights of a " \
                               f"diverged run: FIX"
    state["1.running_var"][1] = 1.0
    torch.save(state, path)
    load_weights(model, path, "--pretrain", "FIX")       # the same file, finite, loads
    assert torch.equal(model.state_dict()["1.running_var"], state["1.running_var"])


def test_stale_temporary_file_is_removed(finished, root, backend):
    # what a kill during a checkpoint write leaves behind
    stale = os.path.join(finished, "checkpoints", ".tmp-k1ll3d.pth")
    with open(stale, "wb") as f:
        f.write(b"half a checkpoint")
    before = checkpoint_files(finished)
    done = run_script("ila_dann.py", tiny_args(root, finished, *ONE_EPOCH, "--phase", "test"), backend=backend)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"=> removed 1 temporary file(s) an interrupted run left in {finished}" in done.stdout
    del before[os.path.relpath(stale, finished)]
    assert checkpoint_files(finished) == before


def test_stale_temporary_file_is_removed_from_a_folder_whose_name_globs(tmp_path):
    # the folder was a glob pattern: in --log "run[1]" a killed write's temporary file stayed
    from ila_tllib.engine.checkpoint import RunDirectory
    root = tmp_path / "run[1]"
    (root / "checkpoints").mkdir(parents=True)
    (root / "checkpoints" / ".tmp-k1ll3d.pth").write_bytes(b"half a checkpoint")
    directory = RunDirectory(str(root), "test").open()
    directory.close()
    assert directory.notes == [f"=> removed 1 temporary file(s) an interrupted run left in {root}"]
    assert os.listdir(root / "checkpoints") == []


def test_small_class_is_noted_once(own_root, tmp_path, backend):
    path = os.path.join(own_root, "image_list", "src.txt")
    lines = open(path).read().splitlines()
    with open(path, "w") as f:   # class 0 keeps one image of its 8
        f.write("\n".join([lines[0]] + [line for line in lines if not line.endswith(" 0")]) + "\n")
    log = str(tmp_path / "log")
    done = run_script("ila_dann.py", tiny_args(own_root, log, *ONE_EPOCH, "--samples-per-class", "4"),
                      backend=backend)
    assert done.returncode == 0, done.stderr[-3000:]
    note = ("note: 1 source class(es) hold fewer than --samples-per-class 4 images (e.g. class 0); their images "
            "repeat within a balanced batch")
    assert done.stdout.count(note) == 1 and only_log(log, "train").count(note) == 1


# ----------------------------------------------------------------- torchrun: every process ends right

def torchrun(script, args, backend, log_dir):
    """Two gloo processes; each one's stdout and stderr go to its own files under ``log_dir``."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "--redirects", "3",
           "--log-dir", log_dir, os.path.join(SCRIPTS, script), "--"] + [str(a) for a in args]
    return subprocess.run(cmd, capture_output=True, text=True, env=script_env(backend), timeout=300)


def process_outputs(log_dir):
    """rank -> (its stdout, its stderr)."""
    found = {}
    for folder in glob.glob(os.path.join(log_dir, "*", "attempt_0", "*")):
        read = [open(os.path.join(folder, f"{name}.log")).read() for name in ("stdout", "stderr")]
        found[int(os.path.basename(folder))] = tuple(read)
    return found


def exit_codes(torchrun_stderr):
    """rank -> exit code, from torchrun's summary of the failed processes."""
    return {int(rank): int(code) for rank, code in
            re.findall(r"rank\s*: (\d+) \(local_rank: \d+\)\s*exitcode\s*: (-?\d+)", torchrun_stderr)}


def test_torchrun_best_acc1_equals_test_acc1(offline_digits, tmp_path):
    # the report's case: 2 gloo processes, UCI target, 1 epoch. best_acc1 is the validation of the
    # best epoch, test_acc1 the same images evaluated again after reloading best.pth: the processes
    # must evaluate one model, process 0's BatchNorm statistics included (a process that keeps its own
    # gives 29.2 against 27.5 here), and reduce their counts exactly. With the backend a user gets
    log = str(tmp_path / "log")
    args = [offline_digits, "-d", "ImageList", "-s", "mnist", "-t", "uci", *DIGIT_FLAGS, "-b", "32", "--epochs", "1",
            "-i", "10", "--seed", "0", "--log", log]
    done = torchrun("ila_cdan.py", args, None, str(tmp_path / "torchrun"))
    assert done.returncode == 0, done.stderr[-3000:]
    text = only_log(log, "train")
    assert "torch.distributed: 2 processes (gloo)" in text and "Traceback" not in text
    assert f"tllib pieces: {'tllib' if TLLIB else 'standalone'}" in text
    best, test = (re.findall(rf"^{name} = (\d+\.\d)$", text, re.M) for name in ("best_acc1", "test_acc1"))
    assert len(best) == len(test) == 1 and best == test


def test_torchrun_error_in_one_process_ends_both(own_root, tmp_path):
    # only the process whose batch holds the broken image fails; the other, waiting for it in a
    # collective, must end too, with the same code and message and without a traceback. With the
    # backend a user gets (tllib where installed); ending together does not depend on it
    backend = None
    with open(os.path.join(own_root, "tgt", "0", "1.png"), "wb") as f:
        f.write(b"not a png")
    log, log_dir = str(tmp_path / "log"), str(tmp_path / "torchrun")
    done = torchrun("ila_cdan.py", tiny_args(own_root, log, "--seed", "0", "--epochs", "1"), backend, log_dir)
    assert done.returncode != 0
    assert exit_codes(done.stderr) == {0: 2, 1: 2}, done.stderr[-3000:]
    message = r"cannot read image .*tgt/0/1\.png .*replace or delete it and its line in .*tgt\.txt"
    outputs = process_outputs(log_dir)
    assert set(outputs) == {0, 1}
    for rank, (_, err) in outputs.items():
        assert "Traceback" not in err, (rank, err[-3000:])
        assert re.search(rf"^error: (process [01] stopped: )?{message}$", err, re.M), (rank, err[-3000:])
    assert re.search(rf"^error: (process 1 stopped: )?{message}$", only_log(log, "train"), re.M)
    assert not checkpoint_files(log)


def test_torchrun_analysis_gives_the_single_process_numbers(finished_runs, root, tmp_path):
    # process 0 analyses alone: it reseeded by rank as training does and gave other numbers than one process
    backend = "standalone"      # the seeding is the engine's, whichever backend
    log, done = finished_runs(backend)
    assert done.returncode == 0, done.stderr[-3000:]
    finished = shutil.copytree(log, str(tmp_path / "log"))
    readings = r"^(A-distance = .*|Saving the affinity matrix .*)$"
    args = tiny_args(root, finished, *ONE_EPOCH, "--phase", "analysis", "-j", "0", "--seed", "0")
    alone = run_script("ila_dann.py", args, backend=backend)
    assert alone.returncode == 0, alone.stderr[-3000:]
    done = torchrun("ila_dann.py", args, backend, str(tmp_path / "torchrun"))
    assert done.returncode == 0, done.stderr[-3000:]
    expected = re.findall(readings, alone.stdout, re.M)
    assert len(expected) == 2 and re.findall(readings, process_outputs(str(tmp_path / "torchrun"))[0][0],
                                             re.M) == expected


def test_torchrun_analysis_ends_both_as_process_0_ends(own_root, tmp_path):
    # the analysis runs on process 0 alone: process 1 ended at once with exit 0 (or was terminated) while
    # process 0 stopped on a damaged image with exit 2
    log, log_dir = str(tmp_path / "log"), str(tmp_path / "torchrun")
    assert run_script("ila_dann.py", tiny_args(own_root, log, *ONE_EPOCH, "--seed", "0")).returncode == 0
    with open(os.path.join(own_root, "tgt", "0", "1.png"), "wb") as f:
        f.write(b"not a png")
    done = torchrun("ila_dann.py", tiny_args(own_root, log, *ONE_EPOCH, "--seed", "0", "--phase", "analysis",
                                             "-j", "0"), None, log_dir)
    assert exit_codes(done.stderr) == {0: 2, 1: 2}, done.stderr[-3000:]
    outputs = process_outputs(log_dir)
    message = r"cannot read image .*tgt/0/1\.png .*replace or delete it and its line in .*tgt\.txt"
    assert re.search(rf"^error: {message}$", outputs[0][1], re.M), outputs[0][1][-3000:]
    assert re.search(rf"^error: process 0 stopped: {message}$", outputs[1][1], re.M), outputs[1][1][-3000:]


def test_torchrun_busy_log_ends_both(root, tmp_path):
    log, log_dir = tmp_path / "log", str(tmp_path / "torchrun")
    log.mkdir()
    with open(log / ".lock", "a+") as held:   # another run holds the folder
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write("process 4242, phase train, started earlier")
        held.flush()
        done = torchrun("ila_dann.py", tiny_args(root, str(log), *ONE_EPOCH), None, log_dir)
    assert exit_codes(done.stderr) == {0: 2, 1: 2}, done.stderr[-3000:]
    outputs = process_outputs(log_dir)
    message = (f"--log {log} is in use by another run (process 4242, phase train, started earlier); wait for it "
               f"to end or choose another --log")
    for rank, (_, err) in outputs.items():
        assert "Traceback" not in err, (rank, err[-3000:])
    assert [line for line in outputs[0][1].splitlines() if line.startswith("error: ")] == [f"error: {message}"]
    assert [line for line in outputs[1][1].splitlines() if line.startswith("error: ")] == \
        [f"error: process 0 stopped: {message}"]


def test_torchrun_class_balanced_warm_up_batch_too_small_for_batchnorm(root, tmp_path):
    # the balanced batch's size (3 classes x 1) is known only once the data is read: split over two
    # processes it gives one of them a single image, which a source-only step cannot train BatchNorm on
    log, log_dir = str(tmp_path / "log"), str(tmp_path / "torchrun")
    done = torchrun("ila_dann.py", tiny_args(root, log, *ONE_EPOCH, "--ila-batch", "shared", "--samples-per-class",
                                             "1", "--k", "1", "--pretrain-iters", "2"), None, log_dir)
    assert exit_codes(done.stderr) == {0: 2, 1: 2}, done.stderr[-3000:]
    message = ("a class-balanced source batch of 3 (3 classes x 1) over 2 processes with --pretrain-iters 2: a "
               "source-only step would train BatchNorm on one image, which it cannot; raise --samples-per-class")
    outputs = process_outputs(log_dir)
    assert set(outputs) == {0, 1}
    for rank, (_, err) in outputs.items():
        assert "Traceback" not in err, (rank, err[-3000:])
        assert f"error: {message}" in err.splitlines() or f"error: process 0 stopped: {message}" in err.splitlines()
    assert not checkpoint_files(log)


@contextlib.contextmanager
def unwritable(folder):
    """``folder`` made unwritable for the test's runs: by its mode, or, for root (whom modes do not
    stop), by the immutable attribute; skips where neither works."""
    os.makedirs(folder, exist_ok=True)
    os.chmod(folder, 0o555)
    immutable = False
    if _writable(folder) and shutil.which("chattr"):
        immutable = subprocess.run(["chattr", "+i", folder], capture_output=True).returncode == 0
    try:
        if _writable(folder):
            pytest.skip("no way to make a folder unwritable here")
        yield
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", folder], check=True)
        os.chmod(folder, 0o755)


def _writable(folder):
    probe = os.path.join(folder, "probe")
    try:
        open(probe, "wb").close()
    except OSError:
        return False
    os.remove(probe)
    return True


def test_state_mismatch_names_what_torch_refuses():
    # torch's own load_state_dict is the oracle: it refuses exactly the states state_mismatch names
    import torch
    import torch.nn as nn
    from ila_tllib.engine.checkpoint import state_mismatch
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    own = model.state_dict()
    states = {"same": dict(own), "missing": {k: v for k, v in own.items() if k != "2.bias"},
              "extra": {**own, "3.weight": torch.zeros(1)}, "resized": {**own, "0.weight": torch.zeros(5, 3)}}
    for name, state in states.items():
        told = state_mismatch(own, state)
        try:
            nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2)).load_state_dict(state)
            refused = False
        except RuntimeError:
            refused = True
        assert bool(told) == refused, name
    assert state_mismatch(own, states["missing"]) == "1 missing, e.g. 2.bias"
    assert state_mismatch(own, states["extra"]) == "1 not in this model, e.g. 3.weight"
    assert state_mismatch(own, states["resized"]) == "1 of another shape, e.g. 0.weight [5, 3] (here [4, 3])"


@pytest.mark.parametrize("where", ["under_a_file", "under_proc"])
def test_an_offline_digits_root_that_cannot_be_made_is_bad_input(tmp_path, where):
    # -d OfflineDigits exports into ROOT on first use: a ROOT under a file, or where no folder can be made,
    # ends with exit 2 and one message naming ROOT (and no --log folder of the refused run)
    (tmp_path / "a_file").write_text("not a folder")
    root = str(tmp_path / "a_file" / "digits") if where == "under_a_file" else "/proc/ila_tllib_digits"
    log = str(tmp_path / "log")
    done = run_script("ila_dann.py", [root, "-d", "OfflineDigits", "-s", "mnist", "-t", "uci", *DIGIT_FLAGS,
                                      "-b", "8", "--epochs", "1", "-i", "2", "--log", log])
    line = one_error(done, 2)
    assert f"cannot create a folder for {root}" in line and "choose a root folder that can be written" in line, line
    assert not os.path.exists(root) and not os.path.exists(log)


def test_a_disk_error_outside_the_checkpoints_names_the_file_and_a_fix_that_fits():
    # reading the data without access is not a full disk: the fix named is access or another folder
    import errno
    from ila_tllib.engine.errors import classify
    denied = PermissionError(errno.EACCES, "Permission denied", "/data/own/image_list/src.txt")
    assert classify(denied) == (2, "permission denied (/data/own/image_list/src.txt): give access to it, or choose "
                                   "another folder (ROOT for the data, --log for the run's files)")
    full = OSError(errno.ENOSPC, "No space left on device", "/data/.digits.tmp-x/mnist/0.png")
    assert classify(full) == (2, "no space left on the device writing /data/.digits.tmp-x/mnist/0.png: free space "
                                 "there, then run again")
    assert classify(OSError(errno.EIO, "Input/output error")) is None      # not one a user fixes: a bug report


def _tiny_office31(root):
    """Office-31's layout with two colour images per domain (every domain, so that tllib's class fetches none)."""
    from PIL import Image
    for folder in ("amazon", "dslr", "webcam"):
        lines = []
        for i, (name, label) in enumerate((("back_pack", 0), ("bike", 1))):
            relative = f"{folder}/images/{name}/frame_{i:04d}.jpg"
            os.makedirs(os.path.dirname(os.path.join(root, relative)), exist_ok=True)
            Image.new("RGB", (32, 32), (40 * i, 90, 200)).save(os.path.join(root, relative))
            lines.append(f"{relative} {label}\n")
        os.makedirs(os.path.join(root, "image_list"), exist_ok=True)
        with open(os.path.join(root, "image_list", folder + ".txt"), "w") as f:
            f.writelines(lines)


def test_a_grey_backbone_on_colour_data_is_named(tmp_path, backend):
    # tllib's dataset classes decide their own mode: LeNet on Office-31 stopped the first step with a
    # convolution traceback (exit 1)
    root = str(tmp_path / "office31")
    _tiny_office31(root)
    done = run_script("ila_dann.py", [root, "-d", "Office31", "-s", "A", "-t", "W", "-a", "lenet", "--no-pool",
                                      "--scratch", "--train-resizing", "res.", "--val-resizing", "res.",
                                      "--resize-size", "28", "--no-hflip", "--norm-mean", "0.5", "--norm-std", "0.5", "-b", "2",
                                      "-i", "1", "--epochs", "1",
                                      "-j", "0", "--samples-per-class", "0", "--k", "1", "--log", tmp_path / "log"],
                      backend=backend)
    assert one_error(done, 2) == ("error: -a lenet reads grey (1 channel) images, but -d Office31 -s A gives colour "
                                  "(3 channels) ones: give -a dtn or a ResNet, or domains in grey (-d Digits: MNIST, "
                                  "USPS, SVHN grey; MNISTRGB, USPSRGB, SVHNRGB colour)")
    assert "Epoch: [0]" not in done.stdout


def test_every_source_domain_is_checked_for_its_channels():
    # several sources are one ConcatDataset: only its first domain was looked at, so -s MNIST SVHNRGB with
    # LeNet trained until the first batch that mixed grey and colour images failed to stack
    import types
    import torch
    from torch.utils.data import ConcatDataset, TensorDataset
    from ila_tllib.engine.data import check_channels
    from ila_tllib.engine.errors import UsageError

    def domain(channels):
        return TensorDataset(torch.zeros(2, channels, 28, 28), torch.zeros(2, dtype=torch.long))
    args = types.SimpleNamespace(arch="lenet", data="Digits")
    check_channels(args, {"-s": (["MNIST", "USPS"], ConcatDataset([domain(1), domain(1)]))})
    with pytest.raises(UsageError, match=r"-d Digits -s SVHNRGB gives colour \(3 channels\) ones: give -a dtn"):
        check_channels(args, {"-s": (["MNIST", "SVHNRGB"], ConcatDataset([domain(1), domain(3)])),
                              "-t": (["USPS"], domain(1))})


def test_class_names_of_labels_a_list_never_uses_come_from_the_other_domain():
    # ImageNet-R's renditions miss some of its 200 classes; this package names such a label by its number
    # (tllib's class spells out every name): the target's missing class took its name from the source
    import types
    from ila_tllib.engine.data import shared_class_names
    from ila_tllib.engine.errors import UsageError

    def domain(*names):
        return types.SimpleNamespace(classes=list(names))
    assert shared_class_names([domain("n01", "n02", "n03"), domain("n01", "1", "n03")]) == ["n01", "n02", "n03"]
    assert shared_class_names([domain("0", "cat"), domain("0", "cat")]) == ["0", "cat"]
    with pytest.raises(UsageError, match=r"label 1: cat / dog"):
        shared_class_names([domain("n01", "cat"), domain("n01", "dog")])
    with pytest.raises(UsageError, match="different class lists"):
        shared_class_names([domain("a", "b"), domain("a", "b", "c")])
