"""benchmarks/discriminator_probe.py: the source-likeness it reads is the one each adversarial loss scores its
discriminator by, and the script as a user runs it."""
import os
import re
import subprocess
import sys

import pytest
import torch

from helpers import REPO, load_benchmark, make_image_list, run_script, script_env, tiny_args

from ila_tllib import backend

SCRIPT = os.path.join(REPO, "benchmarks", "discriminator_probe.py")


@pytest.mark.parametrize("method", ["DANN", "CDAN"])
def test_source_likeness_is_what_the_loss_scores_its_discriminator_by(method):
    # the loss's own domain accuracy (sources above 0.5, targets below; equal batches: it pools both), against the one
    # the probe's per-target outputs give
    torch.manual_seed(0)
    f_s, f_t, g_s, g_t = torch.randn(16, 8), torch.randn(16, 8) + 0.5, torch.randn(16, 3), torch.randn(16, 3)
    if method == "DANN":
        transfer = backend.DomainAdversarialLoss(backend.DomainDiscriminator(8, hidden_size=16)).eval()
        transfer(f_s, f_t)
    else:
        transfer = backend.ConditionalDomainAdversarialLoss(backend.DomainDiscriminator(24, hidden_size=16),
                                                            num_classes=3, features_dim=8).eval()
        transfer(g_s, f_s, g_t, f_t)
    probe = load_benchmark("discriminator_probe")
    s, t = probe.source_likeness(method, transfer, f_s, g_s), probe.source_likeness(method, transfer, f_t, g_t)
    assert s.shape == t.shape == (16,) and bool(((s >= 0) & (s <= 1)).all())
    ours = 50 * ((s >= 0.5).float().mean() + (t < 0.5).float().mean()).item()
    assert abs(ours - float(transfer.domain_discriminator_accuracy)) < 1e-3


def test_the_script_on_a_finished_run_and_on_a_folder_without_one(tmp_path):
    root = make_image_list(str(tmp_path / "data"))
    log = str(tmp_path / "log")
    assert run_script("ila_cdan.py", tiny_args(root, log, "--epochs", "1", "--ila-trade-off", "0")).returncode == 0
    done = subprocess.run([sys.executable, SCRIPT, log, "--batches", "3", "--samples", "40", "--k", "1"],
                          capture_output=True, text=True, env=script_env(), timeout=300)
    assert done.returncode == 0, done.stderr
    row = re.search(r"^\| CDAN \| S→T \| 1 \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+|–) \| ([\d.]+|–) \| "
                    r"([\d.]+) \|$", done.stdout, re.M)   # an AUC needs right and wrong pseudo-labels both
    assert row and 0 <= float(row.group(6)) <= 1, done.stdout
    # ILA-DA's run on the same task is a row of its own, never averaged with its baseline's
    ila_log = str(tmp_path / "ila_log")
    assert run_script("ila_cdan.py", tiny_args(root, ila_log, "--epochs", "1")).returncode == 0
    done = subprocess.run([sys.executable, SCRIPT, log, ila_log, "--batches", "3", "--samples", "40", "--k", "1"],
                          capture_output=True, text=True, env=script_env(), timeout=300)
    assert done.returncode == 0, done.stderr
    means = done.stdout.split("\n\n")[1]
    assert re.search(r"^\| CDAN \| S→T \| 1 \|", means, re.M) and re.search(r"^\| ILA-DA\+CDAN \| S→T \| 1 \|", means, re.M)
    for bad, told in ((["--data-root", str(tmp_path / "moved")], f"not at {tmp_path / 'moved'}; give --data-root"),
                      (["--mu", "2"], "argument --mu: must lie in (0, 1]"),
                      (["--samples", "40", "--k", "40"], "--k 40 needs more than 40 --samples")):
        done = subprocess.run([sys.executable, SCRIPT, log, *bad], capture_output=True, text=True, env=script_env(),
                              timeout=300)
        assert done.returncode == 2 and told in done.stderr and "Traceback" not in done.stderr, (bad, done.stderr)
    assert not os.path.exists(tmp_path / "moved")
    done = subprocess.run([sys.executable, SCRIPT, str(tmp_path)], capture_output=True, text=True,
                          env=script_env(), timeout=300)
    assert done.returncode == 2 and "give the folder of a finished run" in done.stderr
