"""benchmarks/gain_by_shift.py as a user runs it, on logs written here in the scripts' format."""
import os
import subprocess
import sys

import pytest

from helpers import DIGIT_FLAGS, REPO, env_without_torch

SCRIPT = os.path.join(REPO, "benchmarks", "gain_by_shift.py")


def write_log(root, folder, seed, acc, domain_accs, precisions=(), *flags, epoch_accs=(), source="A", target="W"):
    from ila_dann import DANN
    from ila_tllib.engine import get_parser
    log = os.path.join(root, folder, f"{source}2{target}_seed{seed}")
    args = get_parser(DANN()).parse_args(["data/office31", "-s", source, "-t", target, "--seed", str(seed), "--log",
                                          log, *flags])
    os.makedirs(log)
    with open(os.path.join(log, "train-2026-01-01-00_00_00.txt"), "w") as f:
        f.write(repr(args) + "\n")
        for epoch, (now, average) in enumerate(domain_accs):
            f.write(f"Epoch: [{epoch}][ 0/10]\tTime 0.1 (0.1)\tLoss 1.00 (1.00)\tCls Acc 90.0 (90.0)\t"
                    f"Domain Acc {now:.1f} ({average:.1f})\n")
        for p in precisions:
            f.write(f"ILA: 0 of 10 batches had nothing to contrast; pseudo-label precision {p:.1f}% kept / 50.0% all, "
                    f"ratio AUC 0.80, kept 48.0 targets per batch, wrong +1 affinities 20.0%, weight 1.000\n")
        for epoch_acc in epoch_accs:     # as the scripts print each epoch's evaluation
            f.write(f"Test: [ 0/10]\tTime  0.012 ( 0.012)\tLoss 1.0e+00 (1.0e+00)\tAcc@1  50.00 ( 50.00)\n"
                    f" * Acc@1 {epoch_acc:.3f}\n")
        if epoch_accs:                   # then the best epoch's weights are tested again
            f.write(f"best_acc1 = {acc:.1f}\n * Acc@1 {acc:.3f}\n")
        f.write(f"test_acc1 = {acc:.1f}\n")


def test_pairs_seeds_and_reads_the_last_epoch(tmp_path):
    root = str(tmp_path)
    # baseline 80 and 82, ILA-DA 85 and 81: gain (+5 - 1) / 2 = +2.0, ahead in 1 of 2; the last precision
    # (60, 70) and the last running average of the discriminator (ILA-DA 70, 72; DANN 75, 77) are the ones read
    write_log(root, "DANN", 0, 80.0, [(90, 95), (74, 75)], (), "--ila-trade-off", "0")
    write_log(root, "DANN", 1, 82.0, [(90, 95), (79, 77)], (), "--ila-trade-off", "0")
    write_log(root, "ILA-DA+DANN", 0, 85.0, [(90, 95), (66, 70)], (20.0, 60.0))
    write_log(root, "ILA-DA+DANN", 1, 81.0, [(90, 95), (71, 72)], (30.0, 70.0))
    write_log(root, "ILA-DA+DANN", 2, 99.0, [(90, 95)], (30.0,))       # no baseline of seed 2: left out
    # reading logs needs no torch
    no_torch = env_without_torch()
    done = subprocess.run([sys.executable, SCRIPT, "--sets", root], capture_output=True, text=True, cwd=REPO,
                          env=no_torch)
    assert done.returncode == 0, done.stderr
    assert "| DANN | A→W | 2 | 81.0 | 83.0 | +2.0 | 1/2 | 65 | 71 / 76 |" in done.stdout
    assert "DANN: +2.0 over 1 task(s), ahead in 1/2 pairs; below -0.5: none" in done.stdout
    done = subprocess.run([sys.executable, SCRIPT, "--sets", root, "--seeds", "1"], capture_output=True, text=True,
                          cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert "| DANN | A→W | 1 | 82.0 | 81.0 | -1.0 | 0/1 | 70 | 72 / 77 |" in done.stdout
    assert "DANN: -1.0 over 1 task(s), ahead in 0/1 pairs; below -0.5: A→W -1.0" in done.stdout
    # a later folder's run of the same method, task and seed replaces the earlier one's
    newer = str(tmp_path / "newer")
    write_log(newer, "ILA-DA+DANN", 1, 86.0, [(90, 95), (71, 68)], (30.0, 80.0))
    done = subprocess.run([sys.executable, SCRIPT, "--sets", root, newer], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert "| DANN | A→W | 2 | 81.0 | 85.5 | +4.5 | 2/2 | 70 | 69 / 76 |" in done.stdout


def test_a_set_can_name_the_methods_read_from_it(tmp_path):
    # the first folder's ILA-DA run (a variant, 99.0) is not read; the second folder's (84.0) is paired
    variant, default = str(tmp_path / "variant"), str(tmp_path / "default")
    write_log(variant, "DANN", 0, 80.0, [(74, 75)], (), "--ila-trade-off", "0")
    write_log(variant, "ILA-DA+DANN", 0, 99.0, [(66, 70)], (60.0,), "--similarity", "cosine")
    write_log(default, "ILA-DA+DANN", 0, 84.0, [(66, 71)], (50.0,))
    done = subprocess.run([sys.executable, SCRIPT, "--sets", variant + "=DANN", default], capture_output=True,
                          text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert "| DANN | A→W | 1 | 80.0 | 84.0 | +4.0 | 1/1 | 50 | 71 / 75 |" in done.stdout
    done = subprocess.run([sys.executable, SCRIPT, "--sets", variant + "=DANN,ERM"], capture_output=True, text=True,
                          cwd=REPO)
    assert done.returncode == 2 and "unknown method(s) ERM" in done.stderr


def test_the_last_epoch_instead_of_the_best(tmp_path):
    # test_acc1 is the best epoch's (DANN 80, ILA-DA 85: +5.0); the last epoch's are 78 and 75 (-3.0): the
    # lines after best_acc1, the best weights tested again, are not read
    root = str(tmp_path)
    write_log(root, "DANN", 0, 80.0, [(74, 75)], (), "--ila-trade-off", "0", epoch_accs=(70.0, 80.0, 78.0))
    write_log(root, "ILA-DA+DANN", 0, 85.0, [(66, 70)], (60.0,), epoch_accs=(85.0, 75.0))
    done = subprocess.run([sys.executable, SCRIPT, "--sets", root], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert "| DANN | A→W | 1 | 80.0 | 85.0 | +5.0 | 1/1 |" in done.stdout
    done = subprocess.run([sys.executable, SCRIPT, "--sets", root, "--accuracy", "last"], capture_output=True,
                          text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert "| DANN | A→W | 1 | 78.0 | 75.0 | -3.0 | 0/1 |" in done.stdout
    assert "DANN: -3.0 over 1 task(s), ahead in 0/1 pairs; below -0.5: A→W -3.0" in done.stdout
    # any epoch by its number: the first (70 and 85), the second to last (80 and 85); ILA-DA has no third
    for epoch, row in (("0", "| DANN | A→W | 1 | 70.0 | 85.0 | +15.0 | 1/1 |"),
                       ("-2", "| DANN | A→W | 1 | 80.0 | 85.0 | +5.0 | 1/1 |")):
        done = subprocess.run([sys.executable, SCRIPT, "--sets", root, "--epoch", epoch], capture_output=True,
                              text=True, cwd=REPO)
        assert done.returncode == 0 and row in done.stdout, (epoch, done.stdout, done.stderr)
    done = subprocess.run([sys.executable, SCRIPT, "--sets", root, "--epoch", "2"], capture_output=True, text=True,
                          cwd=REPO)
    assert done.returncode == 2 and "ILA-DA+DANN" in done.stderr and "an epoch every run has" in done.stderr
    # a log with no epoch's evaluation is named, with the way out
    write_log(root, "DANN", 1, 80.0, [(74, 75)], (), "--ila-trade-off", "0")
    write_log(root, "ILA-DA+DANN", 1, 85.0, [(66, 70)], (60.0,), epoch_accs=(85.0,))
    done = subprocess.run([sys.executable, SCRIPT, "--sets", root, "--accuracy", "last"], capture_output=True,
                          text=True, cwd=REPO)
    assert done.returncode == 2 and "A2W_seed1" in done.stderr and "--accuracy best" in done.stderr


def test_the_oracle_gates_count_ila_da_as_its_baseline(tmp_path):
    # baseline 80 and 82, ILA-DA 85 and 81 (gain +2.0, ahead in 1 of 2); seed 1 alone: -1.0
    root = str(tmp_path)
    for seed, base, ila in ((0, 80.0, 85.0), (1, 82.0, 81.0)):
        write_log(root, "DANN", seed, base, [(74, 75)], (), "--ila-trade-off", "0")
        write_log(root, "ILA-DA+DANN", seed, ila, [(66, 70)], (60.0,))

    def run(*flags):
        done = subprocess.run([sys.executable, SCRIPT, "--sets", root, *flags], capture_output=True, text=True,
                              cwd=REPO)
        assert done.returncode == 0, done.stderr
        return done.stdout
    # a task that gains is kept; one that loses counts as its baseline: gain 0, not ahead, no longer below -0.5
    assert "| DANN | A→W | 2 | 81.0 | 83.0 | +2.0 | 1/2 |" in run("--oracle-off-losing")
    out = run("--oracle-off-losing", "--seeds", "1")
    assert "| DANN | A→W (off) | 1 | 82.0 | 82.0 | +0.0 | 0/1 | – | – / 75 |" in out
    assert "DANN: +0.0 over 1 task(s), ahead in 0/1 pairs; below -0.5: none" in out
    # by the baseline's mean accuracy, 81.0: off below 81.5, kept below 81.0
    out = run("--oracle-off-below", "81.5")
    assert "| DANN | A→W (off) | 2 | 81.0 | 81.0 | +0.0 | 0/2 |" in out
    assert "DANN: +0.0 over 1 task(s), ahead in 0/2 pairs" in out
    assert "| DANN | A→W | 2 | 81.0 | 83.0 | +2.0 | 1/2 |" in run("--oracle-off-below", "81.0")


def test_nothing_to_pair_exits_2():
    done = subprocess.run([sys.executable, SCRIPT, "--sets", os.path.join(REPO, "tests")], capture_output=True,
                          text=True, cwd=REPO)
    assert done.returncode == 2 and "no task has both" in done.stderr


# the angle, the default, ran on all twenty ordered pairs of the first five domains and all ten pairs of
# scan, the paper's distance on fourteen, every shift on five seeds


@pytest.mark.parametrize("similarity, shifts, accuracy", [("cosine", 30, "best"), ("inverse_euclidean", 14, "best"),
                                                         ("cosine", 30, "last")])
def test_the_committed_logs_give_every_shift_its_row(similarity, shifts, accuracy):
    done = subprocess.run([sys.executable, SCRIPT, "--similarity", similarity, "--accuracy", accuracy],
                          capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("| DANN") or line.startswith("| CDAN")]
    assert len(rows) == 2 * shifts
    for row in rows:
        assert row.split("|")[3].strip() == "5", row   # seeds


def test_an_ila_run_of_another_similarity_exits_2(tmp_path):
    # --similarity checks the runs it reads: a cosine run among the paper's distance is named, not averaged in
    root = str(tmp_path)
    write_log(root, "DANN", 0, 80.0, [(74, 75)], (), "--ila-trade-off", "0")
    write_log(root, "ILA-DA+DANN", 0, 84.0, [(66, 71)], (50.0,), "--similarity", "inverse_euclidean")
    done = subprocess.run([sys.executable, SCRIPT, "--sets", root, "--similarity", "inverse_euclidean"],
                          capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    done = subprocess.run([sys.executable, SCRIPT, "--sets", root, "--similarity", "cosine"], capture_output=True,
                          text=True, cwd=REPO)
    assert done.returncode == 2 and "A2W_seed0" in done.stderr and "--similarity inverse_euclidean" in done.stderr
    # a similarity with no committed runs of the default reads only the folders it is given
    centred = str(tmp_path / "centred")
    write_log(centred, "DANN", 0, 80.0, [(74, 75)], (), "--ila-trade-off", "0")
    write_log(centred, "ILA-DA+DANN", 0, 84.0, [(66, 71)], (50.0,), "--similarity", "centered_cosine")
    done = subprocess.run([sys.executable, SCRIPT, "--sets", centred, "--similarity", "centered_cosine"],
                          capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert "| DANN | A→W | 1 | 80.0 | 84.0 | +4.0 |" in done.stdout, done.stdout
    done = subprocess.run([sys.executable, SCRIPT, "--similarity", "centered_cosine"], capture_output=True,
                          text=True, cwd=REPO)
    assert done.returncode == 2 and "give the folders of its runs with --sets" in done.stderr


def test_a_variant_read_against_the_committed_baselines(tmp_path):
    # one ILA-DA + DANN run of MNIST -> UCI, seed 0, with no baseline of its own: --committed-baselines pairs it
    # with the baseline run the default's table pairs its own seed-0 run with
    variant = str(tmp_path / "variant")
    write_log(variant, "ILA-DA+DANN", 0, 99.0, [(66, 71)], (50.0,), "--similarity", "centered_cosine",
              "-d", "ImageList", *DIGIT_FLAGS, "--epochs", "4", "-i", "300", "-b", "64",   # the committed recipe
              source="mnist", target="uci")
    args = [sys.executable, SCRIPT, "--seeds", "0", "--similarity", "centered_cosine", "--sets", variant]
    done = subprocess.run(args, capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 2 and "no task has both" in done.stderr
    done = subprocess.run(args + ["--committed-baselines"], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    default = subprocess.run([sys.executable, SCRIPT, "--seeds", "0"], capture_output=True, text=True, cwd=REPO)
    base = next(line for line in default.stdout.splitlines() if line.startswith("| DANN | M→U |")).split("|")[4]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| DANN") or line.startswith("| CDAN")]
    gain = 99.0 - float(base)
    assert rows == [f"| DANN | M→U | 1 | {float(base):.1f} | 99.0 | {gain:+.1f} | 1/1 | 50 | 71 / "
                    + rows[0].split(" / ")[-1]], done.stdout


def test_a_resumed_run_s_epochs_count_from_its_first_log(tmp_path):
    # killed after epoch 1 of 3 and resumed: the newest log starts at epoch 1, the earlier one holds epoch 0;
    # a later fresh start in the same folder would be another run, whose epochs alone count
    from helpers import load_benchmark
    gain_by_shift = load_benchmark("gain_by_shift")
    root = str(tmp_path)
    write_log(root, "DANN", 0, 72.0, [(74, 75)], (), "--ila-trade-off", "0", epoch_accs=(70.0, 72.0))
    log = os.path.join(root, "DANN", "A2W_seed0")
    first = os.path.join(log, "train-2026-01-01-00_00_00.txt")
    resumed = os.path.join(log, "train-2026-01-02-00_00_00.txt")
    with open(first) as f:
        namespace = f.readline()
    with open(resumed, "w") as f:
        f.write(namespace + "=> resumed from x/resume.pth: epoch 1, iteration 10, best_acc1 70.0\n"
                " * Acc@1 75.000\n * Acc@1 77.000\nbest_acc1 = 77.0\n * Acc@1 77.000\ntest_acc1 = 77.0\n")
    assert gain_by_shift.epoch_accuracies(resumed) == [70.0, 75.0, 77.0]
    refused = os.path.join(log, "train-2026-01-01-12_00_00.txt")        # a --resume refused between the two
    with open(refused, "w") as f:
        f.write(namespace + "error: --resume: x/resume.pth was written by a run with other flags\n")
    assert gain_by_shift.epoch_accuracies(resumed) == [70.0, 75.0, 77.0]
    assert gain_by_shift.epoch_accuracy(resumed, 0) == 70.0 and gain_by_shift.epoch_accuracy(resumed, -1) == 77.0
    assert gain_by_shift.epoch_accuracies(first) == [70.0, 72.0]
    fresh = os.path.join(log, "train-2026-01-03-00_00_00.txt")
    with open(fresh, "w") as f:
        f.write(namespace + " * Acc@1 60.000\nbest_acc1 = 60.0\n * Acc@1 60.000\ntest_acc1 = 60.0\n")
    assert gain_by_shift.epoch_accuracies(fresh) == [60.0]


def test_a_resumed_run_in_a_folder_whose_name_globs_is_read_whole(tmp_path):
    # the folder's earlier logs were found by a glob of its name: "[1]" matched "1", so a resumed run's first
    # epochs went missing in a folder such as ".../A2W_seed0[lr0.01]"
    from helpers import load_benchmark
    gain_by_shift = load_benchmark("gain_by_shift")
    log = tmp_path / "runs[1]"
    log.mkdir()
    namespace = "Namespace(ila_trade_off=0.0, source=['A'], target=['W'], seed=0)\n"
    (log / "train-2026-01-01-00_00_00.txt").write_text(namespace + "Epoch: [0][ 0/10]\n * Acc@1 70.000\n")
    resumed = log / "train-2026-01-02-00_00_00.txt"
    resumed.write_text(namespace + "=> resumed from x/resume.pth: epoch 1, iteration 10, best_acc1 70.0\n"
                       "Epoch: [1][ 0/10]\n * Acc@1 75.000\nbest_acc1 = 75.0\n * Acc@1 75.000\ntest_acc1 = 75.0\n")
    assert gain_by_shift.epoch_accuracies(str(resumed)) == [70.0, 75.0]


def test_a_mistyped_folder_is_named(tmp_path):
    root = str(tmp_path)
    write_log(root, "DANN", 0, 80.0, [(74, 75)], (), "--ila-trade-off", "0")
    write_log(root, "ILA-DA+DANN", 0, 85.0, [(66, 70)], (60.0,))
    typo = str(tmp_path / "typo")
    done = subprocess.run([sys.executable, SCRIPT, "--sets", root, typo + "=DANN"], capture_output=True, text=True,
                          cwd=REPO)
    assert done.returncode == 2 and f"--sets: no such log directory: {typo}" in done.stderr


def _ila_line(kept_precision):
    return (f"ILA: 0 of 10 batches had nothing to contrast; pseudo-label precision {kept_precision:.1f}% kept / "
            f"50.0% all, ratio AUC 0.60, kept 6.0 targets per batch, wrong +1 affinities 40.0%, weight 1.000\n")


def test_ila_diagnostics_number_epochs_by_their_training_lines(tmp_path):
    # ILA from the second epoch, killed after epoch 1 and resumed: the newest log's first ILA line is epoch 2's
    # (it was read as epoch 0), epoch 1's is in the earlier log, and epoch 0 has none
    from helpers import load_benchmark
    diagnostics = load_benchmark("ila_diagnostics")
    log = tmp_path / "ILA-DA+DANN" / "A2W_seed0"
    log.mkdir(parents=True)
    namespace = "Namespace(ila_trade_off=1.0, source=['A'], target=['W'], seed=0)\n"
    (log / "train-2026-01-01-00_00_00.txt").write_text(
        namespace + "Epoch: [0][ 0/10]\n * Acc@1 50.000\nEpoch: [1][ 0/10]\n" + _ila_line(30) + " * Acc@1 55.000\n")
    newest = log / "train-2026-01-02-00_00_00.txt"
    newest.write_text(namespace + "=> resumed from x/resume.pth: epoch 2, iteration 20, best_acc1 55.0\n"
                      "Epoch: [2][ 0/10]\n" + _ila_line(40) + " * Acc@1 60.000\nEpoch: [3][ 0/10]\n" + _ila_line(45)
                      + " * Acc@1 61.000\nbest_acc1 = 61.0\n" + _ila_line(99) + "test_acc1 = 61.0\n")
    found = diagnostics.epochs(str(newest))
    assert sorted(found) == [1, 2, 3] and [found[e][0] for e in (1, 2, 3)] == [30.0, 40.0, 45.0]
    fresh = log / "train-2026-01-03-00_00_00.txt"          # a later fresh start: another run's epochs alone
    fresh.write_text(namespace + "Epoch: [0][ 0/10]\n" + _ila_line(20) + " * Acc@1 40.000\nbest_acc1 = 40.0\n")
    assert {e: v[0] for e, v in diagnostics.epochs(str(fresh)).items()} == {0: 20.0}
    assert load_benchmark("gain_by_shift").last_kept_precision(str(newest)) == 45.0


def test_two_variants_in_one_set_and_contradictory_flags_exit_2(tmp_path):
    # two ILA-DA runs of one task and seed in one --sets folder (an ablation's next to the default's) were
    # read as one, whichever came last; a later set replacing an earlier one's runs stays as documented
    root = str(tmp_path)
    write_log(root, "DANN", 0, 80.0, [(60.0, 60.0)], (), "--ila-trade-off", "0")
    write_log(root, "ILA-DA+DANN", 0, 85.0, [(60.0, 60.0)], (70.0,))
    write_log(os.path.join(root, "ILA-DA+DANN"), "variant", 0, 70.0, [(60.0, 60.0)], (70.0,), "--ila-source-bank",
              "32")
    done = subprocess.run([sys.executable, SCRIPT, "--seeds", "0", "--sets", root], capture_output=True, text=True,
                          cwd=REPO)
    assert done.returncode == 2 and "two runs of ILA-DA+DANN A→W seed 0 in " + root in done.stderr, done.stderr
    later = str(tmp_path / "later")
    write_log(later, "ILA-DA+DANN", 0, 90.0, [(60.0, 60.0)], (70.0,))
    done = subprocess.run([sys.executable, SCRIPT, "--seeds", "0", "--sets", f"{root}=DANN", later],
                          capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0 and "| DANN | A→W | 1 | 80.0 | 90.0 | +10.0 | 1/1 |" in done.stdout, done.stderr
    done = subprocess.run([sys.executable, SCRIPT, "--accuracy", "last", "--epoch", "0"], capture_output=True,
                          text=True, cwd=REPO)
    assert done.returncode == 2 and "give --accuracy or --epoch, not both" in done.stderr


def test_runs_of_another_budget_are_refused_not_paired(tmp_path):
    # ILA-DA runs of 2 x 30 iterations against baselines of 4 x 300: a "gain" of the budget
    base, short = str(tmp_path / "base"), str(tmp_path / "short")
    write_log(base, "DANN", 0, 80.0, [(74, 75)], (), "--ila-trade-off", "0", "--epochs", "4", "-i", "300")
    write_log(short, "ILA-DA+DANN", 0, 40.0, [(66, 71)], (50.0,), "--epochs", "4", "-i", "30")
    done = subprocess.run([sys.executable, SCRIPT, "--sets", base + "=DANN", short + "=ILA-DA+DANN"],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 2 and "ran other recipes (iters_per_epoch 300 and 30)" in done.stderr, done.stderr
