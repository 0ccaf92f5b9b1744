"""benchmarks/step_time.py runs in every batch layout, as a user runs it (a subprocess, pipes, exit code)."""
import math
import os
import re
import subprocess
import sys

import pytest

from helpers import REPO, script_env


@pytest.mark.parametrize("flags, layout", [
    ([], "source random (64), target random (64); ILA's source batch class-balanced (10 classes x 4 = 40)"),
    (["--ila-batch", "shared"], "source class-balanced (10 classes x 4 = 40), target random (64); ILA reads the source"),
    # ILA on tllib's random source rows: the source batch must keep its 64 rows (it once had none)
    (["--samples-per-class", "0", "--ila-mining-ema", "0"], "source random (64), target random (64); ILA reads the source batch"),
    # a flag the benchmark does not define goes to the scripts' parser
    (["--ila-source-sampling", "random"], "target random (64); ILA's source batch random (40)"),
    # a class-balanced batch of 5 of the 10 classes
    (["--classes-per-batch", "5"], "ILA's source batch class-balanced (5 classes x 4 = 20)"),
])
def test_step_time_runs_in_each_batch_layout(flags, layout):
    done = subprocess.run([sys.executable, os.path.join(REPO, "benchmarks", "step_time.py"), "--iters", "2"] + flags,
                          capture_output=True, text=True, cwd=REPO, env=script_env(), timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert layout in done.stdout
    rows = dict(re.findall(r"^\| (CDAN|ILA-DA\+CDAN) \| ([0-9.]+) \|$", done.stdout, re.M))
    assert set(rows) == {"CDAN", "ILA-DA+CDAN"} and all(math.isfinite(float(v)) for v in rows.values())


def test_a_mistyped_flag_exits_2_as_the_scripts_do():
    done = subprocess.run([sys.executable, os.path.join(REPO, "benchmarks", "step_time.py"), "--iters", "2",
                           "--ila-batch", "both"], capture_output=True, text=True, cwd=REPO, env=script_env(), timeout=300)
    assert done.returncode == 2
    assert "--ila-batch" in done.stderr and "invalid choice" in done.stderr


@pytest.mark.parametrize("flags, told", [(["--iters", "0"], "argument --iters: must be at least 1, got 0"),
                                         (["--mu", "2"], "--mu 2.0 is outside (0, 1]"),
                                         (["--arch", "no_such_net"], "unknown architecture 'no_such_net'")])
def test_a_value_out_of_range_exits_2_with_the_flag_named(flags, told):
    done = subprocess.run([sys.executable, os.path.join(REPO, "benchmarks", "step_time.py")] + flags,
                          capture_output=True, text=True, cwd=REPO, env=script_env(), timeout=300)
    assert done.returncode == 2 and told in done.stderr and "Traceback" not in done.stderr, done.stderr[-2000:]


@pytest.mark.parametrize("n", ["0", "4"])
def test_the_loss_speed_memory_sizes_below_a_batch_exit_2(n):
    # a size too small for ILA's batch (k = 5) ended in a subprocess's traceback
    done = subprocess.run([sys.executable, os.path.join(REPO, "benchmarks", "ila_loss_speed.py"), "--memory", n],
                          capture_output=True, text=True, cwd=REPO, env=script_env(), timeout=120)
    assert done.returncode == 2 and f"argument --memory: must be at least 12, got {n}" in done.stderr, \
        done.stderr[-2000:]
