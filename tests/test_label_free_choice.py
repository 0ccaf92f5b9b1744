"""benchmarks/label_free_choice.py: the choice on hand-built readings, and the script as a user runs it."""
import os
import re
import subprocess
import sys

import pytest

from helpers import DIGIT_FLAGS, REPO, load_benchmark, run_script, script_env

SCRIPT = os.path.join(REPO, "benchmarks", "label_free_choice.py")


def test_choice_rows_by_hand():
    choice_rows = load_benchmark("label_free_choice").choice_rows
    base = [dict(accuracy=60.0, snd=1.0), dict(accuracy=50.0, snd=2.0)]
    ila = [dict(accuracy=70.0, snd=3.0), dict(accuracy=40.0, snd=1.5)]
    # seed 0 keeps ILA-DA (70, the more accurate), seed 1 the baseline (50, the more accurate)
    (row,) = choice_rows({("DANN", "M→U"): list(zip(base, ila))}, "snd")
    assert (row["base"], row["ila"], row["kept"]) == (55.0, 55.0, 60.0)
    assert (row["gain"], row["ila_gain"], row["ila_kept"], row["right"]) == (5.0, 0.0, 1, 2)
    ila[1]["snd"] = 2.5   # now seed 1 keeps ILA-DA too: 40 where the baseline had 50
    (row,) = choice_rows({("DANN", "M→U"): list(zip(base, ila))}, "snd")
    assert (row["kept"], row["ila_kept"], row["right"]) == (55.0, 2, 1)


def test_on_finished_runs_and_on_a_folder_without_pairs(offline_digits, tmp_path):
    runs = tmp_path / "runs"
    logged = {}
    for method, extra in (("DANN", ["--ila-trade-off", "0"]), ("ILA-DA+DANN", ["--k", "3", "--mu", "0.75"])):
        log = runs / method / "mnist2uci_seed0"
        done = run_script("ila_dann.py", [offline_digits, "-d", "ImageList", "-s", "mnist", "-t", "uci", *DIGIT_FLAGS,
                                          "-b", "16", "--epochs", "1", "-i", "3", "-p", "3", "--seed", "0",
                                          "--log", log, *extra])
        assert done.returncode == 0, done.stderr[-2000:]
        text = "".join(p.read_text() for p in log.glob("train-*.txt"))
        logged[method] = float(re.findall(r"^ \* Acc@1 +([\d.]+)", text, re.M)[0])   # the one epoch's
    done = subprocess.run([sys.executable, SCRIPT, str(runs), "--seeds", "0", "--score", "snd", "entropy"],
                          capture_output=True, text=True, cwd=REPO, env=script_env(), timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.findall(r"^\| DANN \| M→U \| 1 \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \| ([+-][\d.]+) \| ([+-][\d.]+) \| "
                       r"([01])/1 \| ([01])/1 \|$", done.stdout, re.M)
    assert len(found) == 2, done.stdout     # one table per score
    for base, ila, kept, gain, ila_gain, ila_kept, right in found:
        base, ila, kept = float(base), float(ila), float(kept)
        assert base == pytest.approx(logged["DANN"], abs=0.051)
        assert ila == pytest.approx(logged["ILA-DA+DANN"], abs=0.051)
        assert kept == (ila if ila_kept == "1" else base)
        assert right == ("1" if kept == max(base, ila) else "0")
        assert float(gain) == pytest.approx(kept - base, abs=0.051)
    done = subprocess.run([sys.executable, SCRIPT, str(runs / "DANN")], capture_output=True, text=True, cwd=REPO,
                          env=script_env(), timeout=120)
    assert done.returncode == 2 and "has both a baseline (DANN, CDAN) run and its ILA-DA run" in done.stderr
