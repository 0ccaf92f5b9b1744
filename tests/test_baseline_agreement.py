"""benchmarks/baseline_agreement.py: agreement and the threshold on hand-built cases, and the script as a user
runs it."""
import os
import re
import shutil
import subprocess
import sys

import pytest
import torch

from helpers import DIGIT_FLAGS, REPO, load_benchmark, run_script, script_env

SCRIPT = os.path.join(REPO, "benchmarks", "baseline_agreement.py")


def test_pairwise_agreement_by_hand():
    # a and b agree on 3 of 4 images, a and c on 1, b and c on 2: (75 + 25 + 50) / 3
    agreement = load_benchmark("baseline_agreement").pairwise_agreement
    a, b, c = torch.tensor([0, 1, 2, 3]), torch.tensor([0, 1, 2, 0]), torch.tensor([0, 2, 1, 0])
    assert agreement([a, b, c]) == pytest.approx(50.0)
    assert agreement([a, a]) == 100.0
    for one_or_unequal in ([a], [a, a[:3]]):     # (a mean of no pair raises a ValueError of its own)
        with pytest.raises(ValueError, match="needs at least two prediction vectors of one length"):
            agreement(one_or_unequal)


def test_separating_threshold_by_hand():
    separate = load_benchmark("baseline_agreement").separating_threshold
    assert separate([40.0, 50.0], [60.0, 90.0]) == (True, 55.0)
    assert separate([40.0, 65.0], [60.0, 90.0]) == (False, None)     # one lost task above a gained one
    assert separate([50.0], [50.0]) == (False, None)                   # a tie separates nothing
    assert separate([], [60.0]) == (False, None)


def test_outcome_bands():
    outcome = load_benchmark("baseline_agreement").outcome
    assert [outcome(g) for g in (-0.6, -0.5, 0.0, 0.5, 0.6, float("nan"))] == \
        ["lost", "level", "level", "level", "gained", "not run"]


def test_on_finished_runs_and_on_a_folder_without_them(offline_digits, tmp_path):
    runs = tmp_path / "runs"
    for seed in (0, 1):
        done = run_script("ila_dann.py", [offline_digits, "-d", "ImageList", "-s", "mnist", "-t", "uci", *DIGIT_FLAGS,
                                          "-b", "16", "--epochs", "1", "-i", "3", "-p", "3", "--ila-trade-off", "0",
                                          "--seed", seed, "--log", runs / "DANN" / f"mnist2uci_seed{seed}"])
        assert done.returncode == 0, done.stderr[-2000:]
    logged = []
    for seed in (0, 1):
        log_dir = runs / "DANN" / f"mnist2uci_seed{seed}"
        text = "".join(p.read_text() for p in log_dir.glob("train-*.txt"))
        logged.append(float(re.search(r"^test_acc1 = ([\d.]+)", text, re.M).group(1)))
    # the same weights twice (a copy of seed 0's run in a second folder) must agree on every image
    twins = tmp_path / "twins"
    shutil.copytree(runs / "DANN" / "mnist2uci_seed0", twins / "a" / "DANN" / "mnist2uci_seed0")
    shutil.copytree(runs / "DANN" / "mnist2uci_seed0", twins / "b" / "DANN" / "mnist2uci_seed0")
    for log in (twins / "b").rglob("train-*.txt"):   # a byte-identical copy is one run to the tables' reader
        log.write_text(log.read_text() + "\n")
    # the gain column is the committed logs' (gain_by_shift.py's table), whatever these runs give
    row = r"^\| DANN \| M→U \| 2 \| ([\d.]+) \| ([\d.]+) \| ([+-]\d+\.\d) \| (gained|level|lost) \|$"
    for folder, expected_accuracy in ((runs, sum(logged) / 2), (twins, logged[0])):
        done = subprocess.run([sys.executable, SCRIPT, str(folder), "--seeds", "0", "1"], capture_output=True,
                              text=True, cwd=REPO, env=script_env(), timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        found = re.search(row, done.stdout, re.M)
        assert found, done.stdout
        agreement, accuracy, gain = map(float, found.groups()[:3])
        assert load_benchmark("baseline_agreement").outcome(gain) == found.group(4)
        # one epoch: the finished weights are the ones the log's test_acc1 was read with
        assert accuracy == pytest.approx(expected_accuracy, abs=0.051)
        if folder == twins:
            assert agreement == 100.0
        else:   # images both runs get right are images they agree on; images they agree on are all right or
            a, b = logged  # all wrong for both, so the share is at most 100 minus the gap of their accuracies
            assert a + b - 100 - 0.1 <= agreement <= 100 - abs(a - b) + 0.1
        assert "DANN: 0 lost task(s)" in done.stdout and "nothing to separate" in done.stdout
    done = subprocess.run([sys.executable, SCRIPT, str(tmp_path / "runs" / "DANN"), "--seeds", "5"],
                          capture_output=True, text=True, cwd=REPO, env=script_env(), timeout=120)
    assert done.returncode == 2 and "no baseline (DANN, CDAN) task has two finished runs" in done.stderr
