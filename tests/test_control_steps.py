"""benchmarks/control_steps.py as a user runs it, on logs written here in the scripts' format."""
import os
import subprocess
import sys

from helpers import REPO
from test_gain_by_shift import write_log

SCRIPT = os.path.join(REPO, "benchmarks", "control_steps.py")


def run(*steps):
    return subprocess.run([sys.executable, SCRIPT, *steps], capture_output=True, text=True, cwd=REPO, timeout=120)


def test_each_step_is_paired_with_the_one_before(tmp_path):
    # DANN 80, 82 -> control 78, 83 (-2, +1: mean -0.5, up in 1 of 2) -> ILA-DA 85, 81 (+7, -2: +2.5, 1 of 2);
    # seed 2 is missing from the control, so no step reads it
    base, control, ila = (str(tmp_path / name) for name in ("base", "control", "ila"))
    for seed, acc in ((0, 80.0), (1, 82.0), (2, 50.0)):
        write_log(base, "DANN", seed, acc, [(74, 75)], (), "--ila-trade-off", "0")
    for seed, acc in ((0, 78.0), (1, 83.0)):
        write_log(control, "ILA-DA+DANN", seed, acc, [(74, 75)], (), "--ila-trade-off", "1e-9")
    for seed, acc in ((0, 85.0), (1, 81.0), (2, 99.0)):
        write_log(ila, "ILA-DA+DANN", seed, acc, [(74, 75)], (50.0,))
    done = run(base, control, ila)
    assert done.returncode == 0, done.stderr
    assert "| DANN | A→W | base | 2 | 81.0 | - | - | - |" in done.stdout
    assert "| DANN | A→W | control | 2 | 80.5 | -0.5 | 1/2 | -2.0 +1.0 |" in done.stdout
    assert "| DANN | A→W | ila | 2 | 83.0 | +2.5 | 1/2 | +7.0 -2.0 |" in done.stdout


def test_a_folder_with_two_runs_of_a_chain_must_name_its_methods(tmp_path):
    both = str(tmp_path / "both")
    write_log(both, "DANN", 0, 80.0, [(74, 75)], (), "--ila-trade-off", "0")
    write_log(both, "ILA-DA+DANN", 0, 84.0, [(66, 71)], (50.0,))
    done = run(both, both)
    assert done.returncode == 2 and "two runs of DANN A→W seed 0" in done.stderr and f"{both}=DANN" in done.stderr
    done = run(both + "=DANN", both + "=ILA-DA+DANN")
    assert done.returncode == 0
    assert "| DANN | A→W | both (ILA-DA+DANN) | 1 | 84.0 | +4.0 | 1/1 | +4.0 |" in done.stdout
    done = run(both + "=DANN")
    assert done.returncode == 2 and "at least two steps" in done.stderr


def test_a_mistyped_folder_or_method_is_named():
    import subprocess
    import sys
    script = os.path.join(REPO, "benchmarks", "control_steps.py")
    known = os.path.join(REPO, "benchmarks", "results", "offline_digits_4x300")
    for entry, told in ((known + "_typo=DANN", f"no such folder {known}_typo"),
                        (known + "=DAN", "unknown method(s) DAN; choose from DANN")):
        done = subprocess.run([sys.executable, script, entry, known], capture_output=True, text=True, cwd=REPO)
        assert done.returncode == 2 and f"error: {entry}: {told}" in done.stderr, done.stderr[-2000:]


def test_steps_of_another_budget_are_refused_not_paired(tmp_path):
    # a control trained 2 x 30 iterations against a baseline of 4 x 300 printed a "change" of the budget
    base, short = str(tmp_path / "base"), str(tmp_path / "short")
    write_log(base, "DANN", 0, 80.0, [(74, 75)], (), "--ila-trade-off", "0", "--epochs", "4", "-i", "300")
    write_log(short, "ILA-DA+DANN", 0, 40.0, [(74, 75)], (50.0,), "--epochs", "2", "-i", "30")
    done = run(base, short)
    assert done.returncode == 2 and "ran other recipes (epochs 4 and 2, iters_per_epoch 300 and 30)" in done.stderr
