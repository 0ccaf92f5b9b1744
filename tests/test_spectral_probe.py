"""benchmarks/spectral_probe.py as a user runs it: a subprocess, pipes, exit code."""
import os
import re
import subprocess
import sys

from helpers import DIGIT_FLAGS, REPO, script_env

PROBE = os.path.join(REPO, "benchmarks", "spectral_probe.py")
SCRIPT = os.path.join(REPO, "examples", "domain_adaptation", "ila_dann.py")


def test_probe_prints_what_the_penalty_sees_and_keeps_the_scripts_exit_code(offline_digits, tmp_path):
    args = [offline_digits, "-d", "ImageList", "-s", "mnist", "-t", "uci", *DIGIT_FLAGS, "-b", "16", "--epochs", "1",
            "-i", "4", "-p", "2", "--k", "1", "--mu", "0.5", "--samples-per-class", "1", "--seed", "0",
            "--log", str(tmp_path / "log")]
    done = subprocess.run([sys.executable, PROBE, "--every", "2", SCRIPT] + args, capture_output=True, text=True,
                          cwd=REPO, env=script_env(), timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "test_acc1 = " in done.stdout
    lines = re.findall(r"^probe it (\d+) \|f_s\| ([0-9.]+) sigma1\^2 ([0-9.]+) share ([0-9.]+) above zero ([0-9.]+) "
                       r"penalty ([0-9.]+) target sigma1\^2 ([0-9.]+) share ([0-9.]+)$", done.stderr, re.M)
    assert [int(line[0]) for line in lines] == [0, 2]
    norm, top, share, above, penalty, top_t, share_t = map(float, lines[0][1:])
    # the penalty is beta (2e-4) times sigma_1^2 of the source batch plus that of the target batch, each
    # printed to 0.05
    assert norm > 0 and 0 < share <= 1 and 0 < share_t <= 1 and 0 < above <= 1
    assert abs(penalty - 2e-4 * (top + top_t)) <= 2e-4 * 0.1 + 5e-5

    bad = subprocess.run([sys.executable, PROBE, "--every", "0", SCRIPT], capture_output=True, text=True, cwd=REPO,
                         env=script_env(), timeout=60)
    assert bad.returncode == 2 and "--every 0" in bad.stderr
    failing = subprocess.run([sys.executable, PROBE, SCRIPT, offline_digits, "-d", "ImageList", "-s", "mnist",
                              "-t", "uci", "--mu", "2"], capture_output=True, text=True, cwd=REPO, env=script_env(),
                             timeout=120)
    assert failing.returncode == 2 and "--mu" in failing.stderr
