"""Whole runs with tllib's pieces against the same runs with ila_tllib's own: a user with tllib installed and
one without get the same training lines and the same accuracies from the same seed. Skipped without tllib."""
import re

import pytest

from helpers import TLLIB, only_log, run_script, tiny_args

pytestmark = pytest.mark.skipif(not TLLIB, reason="tllib is not installed")


def numbers_of_the_run(log):
    """The log's lines that carry results: the training meters without the wall-clock columns, the
    epochs' accuracies and ILA summaries, best_acc1 and test_acc1."""
    kept = []
    for line in only_log(log, "train").splitlines():
        if line.startswith("Epoch:"):
            kept.append(re.sub(r"\t(Time|Data) [^\t]*", "", line))
        elif line.startswith((" * Acc@1", "ILA:", "best_acc1", "test_acc1")):
            kept.append(line)
    return kept


@pytest.mark.parametrize("script, extra", [
    ("ila_dann.py", []), ("ila_cdan.py", []), ("ila_cdan.py", ["--randomized", "--entropy"]),
    ("ila_mdd.py", []), ("ila_bsp.py", []),
], ids=["dann", "cdan", "cdan-randomized-entropy", "mdd", "bsp"])
def test_tllib_pieces_and_own_pieces_give_the_same_run(tiny_root, tmp_path, script, extra):
    runs = {}
    for pieces in ("tllib", "standalone"):
        log = str(tmp_path / pieces)
        done = run_script(script, tiny_args(tiny_root, log, "--seed", "1", *extra), backend=pieces)
        assert done.returncode == 0, done.stderr
        assert f"tllib pieces: {pieces}" in only_log(log, "train")
        runs[pieces] = numbers_of_the_run(log)
    assert any(line.startswith("test_acc1 = ") for line in runs["tllib"])
    assert sum(line.startswith("Epoch:") for line in runs["tllib"]) >= 2
    assert runs["tllib"] == runs["standalone"]
