"""Interrupted runs: exact resume after an epoch, resume after SIGKILL, and a NaN loss that stops training."""
import glob
import os
import shutil
import queue
import re
import signal
import threading
import subprocess
import sys
import time

import torch

from helpers import SCRIPTS, TLLIB, make_image_list, one_error, run_script, script_env, tiny_args
from ila_tllib.engine.flags import DEFAULT_MINING_EMA
from ila_tllib.engine.moving_average import DEFAULT_MINING_AVERAGE

import pytest


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return make_image_list(tmp_path_factory.mktemp("resume_data"))


def final_weights(log):
    return torch.load(os.path.join(log, "checkpoints", "latest.pth"), weights_only=True)


def assert_same_weights(log_a, log_b):
    """The two runs' final weights are bit for bit equal, with the same entries."""
    wa, wb = final_weights(log_a), final_weights(log_b)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k


def printed_test_acc1(done):
    return re.search(r"^test_acc1 = (\d+\.\d)$", done.stdout, re.M).group(1)


def epochs_trained(stdout):
    """The epochs whose training lines a run printed: a resumed run shows none before it (a restart with the
    same seed would end with the same weights, so the weights alone cannot tell the two apart)."""
    return sorted({int(e) for e in re.findall(r"^Epoch: \[(\d+)\]\[", stdout, re.M)})


@pytest.mark.parametrize("extra", [[], ["--ila-source-bank", "8"], ["--ila-mining-ema", "0"],
                                   ["--ila-mining-average", "bottleneck"], ["--ila-source-sampling", "random"]],
                         ids=["default", "source-bank", "no-mining-ema", "bottleneck-average", "random-extra-rows"])
def test_two_epochs_equal_one_plus_resume(root, tmp_path, extra):
    straight, resumed = str(tmp_path / "straight"), str(tmp_path / "resumed")
    # a run stopped after epoch 1 and extended to 2: the step schedule does not depend on --epochs (the
    # ramp spans --epochs x -i, so a resume is exact only with the same --epochs, as in the SIGKILL test);
    # the moving average ILA mines on (the default) and a source bank: their state after epoch 1 must come
    # back too
    common = ["--seed", "1", "--ila-start-iter", "2", "--ila-schedule", "step"] + extra
    a = run_script("ila_cdan.py", tiny_args(root, straight, *common, "--epochs", "2"))
    b1 = run_script("ila_cdan.py", tiny_args(root, resumed, *common, "--epochs", "1"))
    b2 = run_script("ila_cdan.py", tiny_args(root, resumed, *common, "--epochs", "2", "--resume"))
    for done in (a, b1, b2):
        assert done.returncode == 0, done.stderr
    assert "=> resumed from" in b2.stdout and "epoch 1, iteration 4" in b2.stdout
    assert epochs_trained(a.stdout) == [0, 1] and epochs_trained(b2.stdout) == [1]
    if "random" in extra:
        assert "ILA's source batch random (" in b2.stdout
    assert printed_test_acc1(a) == printed_test_acc1(b2)
    assert_same_weights(straight, resumed)


def test_random_flips_in_worker_processes_resume_exactly_whatever_the_worker_count(root, tmp_path):
    # a worker draws a random transform from its own RNG, seeded per pass; a resumed run skips into a pass
    # with a new generator. Each image's draw is seeded by its place in the run instead: the run stopped after
    # epoch 1 (one worker) and resumed (two) ends as the one never stopped (two)
    straight, resumed = str(tmp_path / "straight"), str(tmp_path / "resumed")

    def run(log, workers, *extra):
        args = [a for a in tiny_args(root, log, "--seed", "1", "--ila-schedule", "step", "-j", workers, *extra)
                if a != "--no-hflip"]
        done = run_script("ila_cdan.py", args)
        assert done.returncode == 0, done.stderr[-2000:]
        assert "RandomHorizontalFlip" in done.stdout
        return done
    run(straight, "2", "--epochs", "2")
    run(resumed, "1", "--epochs", "1")
    assert epochs_trained(run(resumed, "2", "--epochs", "2", "--resume").stdout) == [1]
    assert_same_weights(straight, resumed)


@pytest.mark.skipif(not TLLIB, reason="tllib is not installed")
def test_tllibs_randomized_map_is_saved_and_resumed(root, tmp_path):
    # tllib's map keeps R_f and R_g as plain tensors: without a seed a resumed run would draw new ones
    log = str(tmp_path / "log")

    def saved_map():
        state = torch.load(os.path.join(log, "checkpoints", "resume.pth"), weights_only=False)
        return {k: v for k, v in state["modules"]["transfer"].items() if k.startswith("map.")}
    for epochs in ("1", "2"):
        extra = ["--resume"] if epochs == "2" else []
        done = run_script("ila_cdan.py", tiny_args(root, log, "-r", "-rd", "16", "--epochs", epochs, *extra),
                          backend="tllib")
        assert done.returncode == 0, done.stderr[-2000:]
        if epochs == "1":
            first = saved_map()
    assert sorted(first) == ["map.Rf", "map.Rg"] and first["map.Rf"].shape == (256, 16)
    after = saved_map()
    assert all(torch.equal(first[k], after[k]) for k in first)


def test_torchrun_two_epochs_equal_one_plus_resume(root, tmp_path):
    # each process draws its own dropout masks; a resume must give every process its own RNG back
    env = script_env("standalone")

    def torchrun(log, *extra):
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               os.path.join(SCRIPTS, "ila_cdan.py"), "--"] + tiny_args(root, log, "--seed", "1", "--ila-schedule",
                                                                      "step", *extra)
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        return done

    straight, resumed = str(tmp_path / "straight"), str(tmp_path / "resumed")
    torchrun(straight, "--epochs", "2")
    torchrun(resumed, "--epochs", "1")
    assert epochs_trained(torchrun(resumed, "--epochs", "2", "--resume").stdout) == [1]
    assert_same_weights(straight, resumed)


def signal_in_the_second_epoch(root, log, flags, at, sig):
    """Start ila_dann.py with ``flags``; once its first epoch's resume.pth is written and it prints the line
    starting ``at``, send ``sig``. Returns (return code, stderr)."""
    proc = subprocess.Popen([sys.executable, os.path.join(SCRIPTS, "ila_dann.py")] + tiny_args(root, log, *flags),
                            env=script_env("standalone"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            # a test worker may ignore SIGINT, and an ignored signal stays ignored across exec
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    resume_file = os.path.join(log, "checkpoints", "resume.pth")
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    deadline = time.time() + 240
    try:
        while True:
            line = lines.get(timeout=max(1.0, deadline - time.time()))   # raises queue.Empty if it stalls
            if os.path.exists(resume_file) and line.startswith(at):
                break
        proc.send_signal(sig)
        proc.wait(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    return proc.returncode, proc.stderr.read()


def test_sigkill_mid_epoch_then_resume(root, tmp_path):
    # killed in its second epoch, resumed: the same final weights as a run that was never interrupted
    log, straight = str(tmp_path / "log"), str(tmp_path / "straight")
    args = ["--seed", "0", "--epochs", "2", "-i", "12", "-p", "1"]
    code, _ = signal_in_the_second_epoch(root, log, args, "Epoch: [1][ 3/12]", signal.SIGKILL)
    resume_file = os.path.join(log, "checkpoints", "resume.pth")
    assert code == -signal.SIGKILL
    torch.load(resume_file, weights_only=False)   # loadable: it was written atomically

    done = run_script("ila_dann.py", tiny_args(root, log, *args, "--resume"))
    assert done.returncode == 0, done.stderr
    assert re.search(r"=> resumed from .*resume.pth: epoch 1, iteration 12,", done.stdout)
    assert epochs_trained(done.stdout) == [1]
    uninterrupted = run_script("ila_dann.py", tiny_args(root, straight, *args))
    assert uninterrupted.returncode == 0, uninterrupted.stderr
    assert printed_test_acc1(done) == printed_test_acc1(uninterrupted)
    assert_same_weights(straight, log)


def test_ctrl_c_says_what_resume_continues_from_and_ends_as_sigint(root, tmp_path):
    # Ctrl-C in the second epoch: one line (no traceback) naming resume.pth, in the log too; the process ends
    # killed by SIGINT, as Python's own Ctrl-C ends, so a shell running a task list stops as well
    log = str(tmp_path / "log")
    code, err = signal_in_the_second_epoch(root, log, ["--epochs", "2", "-i", "40", "-p", "1"], "Epoch: [1][ 2/40]",
                                           signal.SIGINT)
    assert code == -signal.SIGINT, err
    resume_file = os.path.join(log, "checkpoints", "resume.pth")
    told = f"interrupted: {resume_file} holds the last finished epoch; continue with --resume"
    assert told in err and "Traceback" not in err, err
    assert told in "".join(open(path).read() for path in glob.glob(os.path.join(log, "train-*.txt")))


@pytest.mark.parametrize("first_flags, changed, to_continue", [
    # a run from before the moving-average default mined on the network itself; its own command now resolves
    # to the average: both flags differ (the average too: it resolves to 'network' without one), one continues it
    (["--ila-mining-ema", "0"], f"--ila-mining-ema 0 (now {DEFAULT_MINING_EMA:g}), --ila-mining-average network "
                                f"(now {DEFAULT_MINING_AVERAGE})", "--ila-mining-ema 0"),
    (["--ila-source-sampling", "random"], "--ila-source-sampling random (now balanced)",
     "--ila-source-sampling random"),
], ids=["before-the-average", "random-ila-rows"])
def test_resume_without_the_first_run_flags_says_how(root, tmp_path, first_flags, changed, to_continue):
    log = str(tmp_path / "log")
    first = run_script("ila_dann.py", tiny_args(root, log, "--epochs", "1", *first_flags))
    assert first.returncode == 0, first.stderr
    again = run_script("ila_dann.py", tiny_args(root, log, "--epochs", "2", "--resume"))
    assert again.returncode == 2 and "Traceback" not in again.stderr
    assert f"was written by a run with other flags: {changed} (to continue it" in again.stderr
    assert f"(to continue it, add {to_continue})" in again.stderr
    fixed = run_script("ila_dann.py", tiny_args(root, log, "--epochs", "2", "--resume", *to_continue.split()))
    assert fixed.returncode == 0, fixed.stderr


@pytest.fixture(scope="module")
def banked_log(root, tmp_path_factory):
    log = str(tmp_path_factory.mktemp("banked") / "log")
    done = run_script("ila_dann.py", tiny_args(root, log, "--epochs", "1", "--ila-source-bank", "8"))
    assert done.returncode == 0, done.stderr
    return log


@pytest.mark.parametrize("then, changed, to_continue", [
    (["--ila-source-bank", "4"], "--ila-source-bank 8 (now 4)", "--ila-source-bank 8"),
    (["--ila-source-bank", "0"], "--ila-source-bank 8 (now 0)", "--ila-source-bank 8"),
    (["--ila-source-bank", "8", "--ila-mining-ema", "0.9"], f"--ila-mining-ema {DEFAULT_MINING_EMA:g} (now 0.9)",
     f"--ila-mining-ema {DEFAULT_MINING_EMA:g}"),
    (["--ila-source-bank", "8", "--ila-mining-ema", "0"], f"--ila-mining-ema {DEFAULT_MINING_EMA:g} (now 0)",
     f"--ila-mining-ema {DEFAULT_MINING_EMA:g}"),
    (["--ila-source-bank", "8", "--ila-mining-average", "bottleneck"],
     f"--ila-mining-average {DEFAULT_MINING_AVERAGE} (now bottleneck)",
     f"--ila-mining-average {DEFAULT_MINING_AVERAGE}"),
    (["--ila-source-bank", "8", "--ila-source-sampling", "random"], "--ila-source-sampling balanced (now random)",
     "--ila-source-sampling balanced"),
], ids=["bank-resized", "bank-dropped", "ema-changed", "ema-dropped", "average-changed", "sampling-changed"])
def test_resume_with_other_ila_memory_is_a_clear_error(root, banked_log, then, changed, to_continue):
    # the bank's rings and the moving average are part of the resumed state: other values cannot continue it
    again = run_script("ila_dann.py", tiny_args(root, banked_log, "--epochs", "2", "--resume", *then))
    assert again.returncode == 2, again.stderr
    assert re.search(rf"was written by a run with other flags: (.*, )?{re.escape(changed)}", again.stderr), again.stderr
    assert "Traceback" not in again.stderr
    assert f"(to continue it, add {to_continue})" in again.stderr


def test_resume_refuses_any_flag_that_changes_the_run_and_names_it(root, banked_log):
    # the seed (the data order after the resume) and the batch size: both named, with the values to go back to
    again = run_script("ila_dann.py", tiny_args(root, banked_log, "--epochs", "2", "--resume", "--ila-source-bank", "8",
                                                "--seed", "3", "-b", "6", "--k", "5"))
    assert again.returncode == 2 and "Traceback" not in again.stderr
    assert ("other flags: --batch-size 8 (now 6), --seed not given (now 3), --k 3 (now 5) (to continue it, add "
            "--batch-size 8 --k 3 and drop --seed)") in again.stderr, again.stderr
    assert "=> using model" not in again.stdout, again.stdout   # refused before the model (and data) are built


def test_resume_may_go_on_longer_and_says_what_that_changes(root, tmp_path):
    log = str(tmp_path / "log")
    first = run_script("ila_dann.py", tiny_args(root, log, "--epochs", "1", "--seed", "0"))
    assert first.returncode == 0, first.stderr
    # the folder and the print frequency may change; --epochs too, with a note on the ramp that spans the run
    again = run_script("ila_dann.py", tiny_args(root, log, "--epochs", "2", "--resume", "--seed", "0", "-p", "1"))
    assert again.returncode == 0, again.stderr
    assert epochs_trained(again.stdout) == [1]
    assert "note: --epochs 1 (now 2): schedules that span the run" in again.stdout
    assert "flags over the run: --epochs 1 -> 2 at epoch 1" in again.stdout.splitlines()


def test_a_run_resumed_with_other_values_names_them_all_and_has_its_own_row(root, tmp_path):
    # a diverged run's remedy (--lr) and a longer run, over two resumes: the last log names every value each
    # had and from which epoch (the resume file keeps them), so the tables do not file the run with the runs
    # trained with its last values throughout; a resume of the finished run trains nothing and changes nothing
    from ila_tllib.run_logs import collect
    from ila_tllib.tables import format_table
    clean, resumed = str(tmp_path / "clean"), str(tmp_path / "resumed")
    for log, epochs, lr in ((clean, "3", "0.0025"), (resumed, "1", "0.005")):
        assert run_script("ila_dann.py", tiny_args(root, log, "--epochs", epochs, "--seed", "0",
                                                   "--lr", lr)).returncode == 0
    history = "flags over the run: --lr 0.005 -> 0.0025 at epoch 1, --epochs 1 -> 2 at epoch 1 -> 3 at epoch 2"
    for epochs, lr in (("2", "0.0025"), ("3", "0.0025")):
        done = run_script("ila_dann.py", tiny_args(root, resumed, "--epochs", epochs, "--resume", "--seed", "0",
                                                   "--lr", lr))
        assert done.returncode == 0, done.stderr
    assert history in done.stdout.splitlines() and "note: --lr" not in done.stdout
    rows = [line.split(" | ")[0].strip("| ") for line in format_table(collect([clean, resumed])).splitlines()[2:]]
    assert sorted(rows) == ["ILA-DA+DANN", f"ILA-DA+DANN ({history})"]
    # the finished run trains nothing more: another --lr there is refused, its values or more epochs are not
    refused = run_script("ila_dann.py", tiny_args(root, resumed, "--epochs", "3", "--resume", "--seed", "0",
                                                  "--lr", "0.001"))
    assert one_error(refused, 2) == (
        f"error: --resume: {os.path.join(resumed, 'checkpoints', 'resume.pth')} holds a run that has trained its 3 "
        f"epochs, so --lr 0.0025 (now 0.001) would train nothing; resume with the run's values, or raise --epochs "
        f"to train on with the new ones")
    # nor does fewer epochs: it would only relabel the finished run (its tables' row) with a history it never had
    refused = run_script("ila_dann.py", tiny_args(root, resumed, "--epochs", "2", "--resume", "--seed", "0",
                                                  "--lr", "0.0025"))
    assert one_error(refused, 2) == (
        f"error: --resume: {os.path.join(resumed, 'checkpoints', 'resume.pth')} holds a run that has trained its 3 "
        f"epochs, so --epochs 3 (now 2) would train nothing; resume with the run's values, or raise --epochs above "
        f"3 to train on")
    rows_after = [line.split(" | ")[0].strip("| ") for line in format_table(collect([clean, resumed])).splitlines()[2:]]
    assert rows_after == rows


def test_resume_without_checkpoint_is_a_clear_error(root, tmp_path):
    done = run_script("ila_dann.py", tiny_args(root, str(tmp_path / "fresh"), "--resume"))
    assert done.returncode == 2 and "--resume: no" in done.stderr and "Traceback" not in done.stderr


def test_resume_from_a_weights_file_says_it_is_not_a_resume_state(root, tmp_path):
    # best.pth copied over resume.pth: not a run with other flags, a file of another kind
    log = str(tmp_path / "log")
    assert run_script("ila_dann.py", tiny_args(root, log, "--epochs", "1", "--seed", "0")).returncode == 0
    resume = os.path.join(log, "checkpoints", "resume.pth")
    shutil.copyfile(os.path.join(log, "checkpoints", "best.pth"), resume)
    done = run_script("ila_dann.py", tiny_args(root, log, "--epochs", "2", "--resume", "--seed", "0"))
    assert one_error(done, 2) == (
        f"error: --resume: {resume} holds only a network's weights (as best.pth, latest.pth and pretrain.pth do), "
        f"not the state a run writes to resume.pth after each epoch; start without --resume to train anew (the old "
        f"checkpoints are kept aside)")


@pytest.mark.parametrize("damage, held", [("state = [1, 2]", "a list, not the state a run writes"),
                                          ("state['epoch'] = 'x'", "epoch 'x', where a run writes a count"),
                                          ("state['iter'] = None", "iter None, where"),
                                          ("state['epoch'] = -1", "epoch -1, where"),
                                          ("state['best_acc1'] = 'b'", "best_acc1 'b', where"),
                                          ("del state['iter']", "no iter, where")])
def test_a_resume_file_damaged_by_hand_is_named_not_a_traceback(root, tmp_path, damage, held):
    log = str(tmp_path / "log")
    assert run_script("ila_dann.py", tiny_args(root, log, "--epochs", "1", "--seed", "0")).returncode == 0
    resume = os.path.join(log, "checkpoints", "resume.pth")
    scope = {"state": torch.load(resume, weights_only=False)}
    exec(damage, scope)
    torch.save(scope["state"], resume)
    line = one_error(run_script("ila_dann.py", tiny_args(root, log, "--epochs", "2", "--resume", "--seed", "0")), 2)
    assert line.startswith(f"error: --resume: {resume} holds {held}") and "damaged" in line, line


def test_a_run_logged_with_domains_as_typed_resumes_under_the_dataset_s_names(root, tmp_path):
    # resume files written before -s and -t were logged as the dataset spells them hold the names as typed
    log = str(tmp_path / "log")
    assert run_script("ila_dann.py", tiny_args(root, log, "--epochs", "1", "--seed", "0")).returncode == 0
    resume = os.path.join(log, "checkpoints", "resume.pth")
    state = torch.load(resume, weights_only=False)
    for saved in (state["flags"], state["config"]):
        saved["source"], saved["target"] = ["SRC"], ["Tgt"]
    torch.save(state, resume)
    args = tiny_args(root, log, "--epochs", "2", "--resume", "--seed", "0")
    args[args.index("-s") + 1], args[args.index("-t") + 1] = "Src", "TGT"
    done = run_script("ila_dann.py", args)
    assert done.returncode == 0, done.stderr
    assert "source=['src'], target=['tgt']" in done.stdout


def test_nan_loss_stops_with_iteration_and_term(root, tmp_path):
    done = run_script("ila_dann.py", tiny_args(root, str(tmp_path / "nan"), "--lr", "1e30", "--seed", "0"))
    assert done.returncode == 3, done.stderr
    assert re.search(r"the (CE|transfer|ILA) loss became (nan|inf|-inf) at iteration \d+", done.stderr)
    assert "Traceback" not in done.stderr


def _data_seed(log):
    return torch.load(os.path.join(log, "checkpoints", "resume.pth"), weights_only=False)["data_seed"]


def test_runs_without_a_seed_draw_their_own_data_order_and_a_resume_keeps_it(root, tmp_path):
    # tllib's runs without --seed shuffle from a fresh generator: two runs here must not share one order of
    # batches and transforms (every unseeded run used seed 0), and a resumed run goes on with its run's order
    logs = [str(tmp_path / name) for name in ("a", "b")]
    for log in logs:
        done = run_script("ila_dann.py", tiny_args(root, log, "--epochs", "1"))
        assert done.returncode == 0, done.stderr
    first = _data_seed(logs[0])
    assert first != _data_seed(logs[1])
    done = run_script("ila_dann.py", tiny_args(root, logs[0], "--epochs", "2", "--resume"))
    assert done.returncode == 0 and "=> resumed from" in done.stdout, done.stderr
    assert _data_seed(logs[0]) == first
    done = run_script("ila_dann.py", tiny_args(root, str(tmp_path / "seeded"), "--epochs", "1", "--seed", "7"))
    assert done.returncode == 0 and _data_seed(str(tmp_path / "seeded")) == 7


@pytest.mark.parametrize("seeded", [False, True])
def test_cudnn_autotuning_is_on_as_in_tllibs_scripts_but_for_seeded_runs(root, tmp_path, monkeypatch, seeded):
    # tllib's scripts turn it on; it picks algorithms by timing, which a seeded run's exact repeat and
    # exact resume cannot have
    import ila_dann
    from ila_tllib.engine import get_parser
    from ila_tllib.engine.run import run
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", seeded)
    method = ila_dann.DANN()
    seed = ["--seed", "0"] if seeded else []
    args = get_parser(method).parse_args(tiny_args(root, str(tmp_path / "log"), "--epochs", "1", *seed))
    assert run(args, method) == 0
    assert torch.backends.cudnn.benchmark is not seeded
