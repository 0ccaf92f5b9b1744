"""ILA-DA's own diagnostics, per epoch, from training logs: how good were the affinities it trained on?

    python benchmarks/ila_diagnostics.py LOGDIR [LOGDIR ...]

Reads the ``ILA: ...`` line each epoch of a log ends with (target labels are read by the scripts for these
lines only, never for training) and prints, per row of the tables (a method and the flags that vary between
its runs) and task, the mean over seeds of: pseudo-label
precision of the kept targets and of all targets, Γ's AUC (right above wrong pseudo-labels), the share of
+1 affinities that pair different classes, the targets kept per batch, and the ILA weight applied.
"""
import argparse
import os
import re
import statistics
import sys
from collections import defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from ila_tllib.logged_flags import RESUMED_PREFIX, read_ila_summary  # noqa: E402
from ila_tllib.run_logs import collect_or_exit, missing_folders, run_epochs  # noqa: E402
from ila_tllib.tables import row_names  # noqa: E402

#: the columns, and the values of the ILA summary line that fill them (None: no batch of the epoch gave one)
COLUMNS = ("PL prec kept", "PL prec all", "AUC", "wrong +1 %", "kept", "weight")
_SUMMARY_VALUES = ("precision_kept", "precision_all", "auc", "wrong_positive", "kept", "weight")


EPOCH_LINE = re.compile(r"Epoch: \[(\d+)\]\[")


def _log_summaries(path):
    """Whether the log is a resumed run's, whether it trained at all, and {epoch: the COLUMNS' values} of its
    ``ILA:`` lines, each numbered by the training lines (``Epoch: [e][...]``) it ends: an epoch in which ILA
    did not run yet (``--ila-start-iter``) has none, and a resumed log starts at a later epoch."""
    resumed, epoch, found = False, None, {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith("best_acc1"):
                break
            resumed = resumed or line.startswith(RESUMED_PREFIX)
            numbered = EPOCH_LINE.match(line)
            if numbered:
                epoch = int(numbered.group(1))
            summary = read_ila_summary(line) if epoch is not None else None
            if summary:
                found[epoch] = tuple(summary[name] for name in _SUMMARY_VALUES)
    return resumed, epoch is not None, found


def epochs(path):
    """{epoch: one tuple of the COLUMNS' values} over the epochs in which ILA ran, for the run whose newest log
    is ``path``: a resumed run's earlier epochs come from the earlier logs of its folder (a fresh start there
    is another run's beginning)."""
    return run_epochs(path, _log_summaries)


def _mean(values):
    values = [v for v in values if v is not None]
    return statistics.mean(values) if values else None


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("logdirs", nargs="+")
    args = parser.parse_args()
    missing = missing_folders(args.logdirs)
    if missing:
        parser.error(missing)
    groups = defaultdict(list)
    runs = collect_or_exit(parser, args.logdirs)
    names = row_names(runs)         # the tables' rows: runs of other flags (an ablation) are not pooled
    for run in runs:
        rows = epochs(run.path)
        if rows:
            groups[(names[id(run)], run.task)].append(rows)
    if not groups:
        parser.error("no finished ILA-DA run with ILA's per-epoch lines in these folders")
    for (method, task), runs in sorted(groups.items()):
        print(f"\n{method}, {task} ({len(runs)} runs): mean over runs per epoch")
        print("| epoch | " + " | ".join(COLUMNS) + " |")
        print("|---" * (len(COLUMNS) + 1) + "|")
        for e in sorted(set.intersection(*(set(r) for r in runs))):      # the epochs every run has
            means = [_mean(r[e][c] for r in runs) for c in range(len(COLUMNS))]
            print(f"| {e} | " + " | ".join("n/a" if v is None else f"{v:.2f}" if c in (2, 5) else f"{v:.1f}"
                                           for c, v in enumerate(means)) + " |")


if __name__ == "__main__":
    main()
