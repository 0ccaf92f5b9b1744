"""Collect ``test_acc1`` from training logs into tllib's README table.

    python -m ila_tllib.tables LOGDIR [LOGDIR ...]

Each LOGDIR is searched recursively for ``train-*.txt`` logs, of this package's scripts and of
tllib's own (``cdan.py``, ``mcc.py``, ...): the ``Namespace(...)`` line describes the run, the last
``test_acc1 = x`` line gives its result. Each run's method is named as tllib's tables name it:

- a log of tllib's own script: by tllib's log layout ``logs/<method>/<Task>/`` (``cdan`` → CDAN,
  ``mcc`` → MCC, ``erm`` → ERM, ...; a folder name not in :data:`~ila_tllib.run_logs.TLLIB_METHODS` is kept as written);
- a log of this package's scripts (its Namespace holds ILA-DA's flags), wherever it lies: by its
  ``method: <name>`` line (tllib's name for it, as above, or the name in capitals: a method of your
  own needs nothing here), or, in logs written before that line, by its flags (``--randomized``:
  CDAN, ``--margin``: MDD, ``--trade-off-bsp``: BSP, else DANN); ERM when both trade-offs are 0 and
  ``--trade-off`` weighs the method's whole term (DANN, CDAN, MDD, MCC; BSP with ``--trade-off-bsp
  0``); ``ILA-DA+<base>`` with ILA on, ``<base> (balanced source)`` for the sampling control. With
  ILA off it is tllib's recipe and shares tllib's row.

Runs that differ only in ``--seed`` are averaged (mean ± std); ``Avg`` averages the tasks seed by seed when
every task ran the same seeds (its ± is then the spread of one seed's average), else gives the mean of the
tasks' means alone. A folder may hold runs of several seeds (tllib's layout, looped over seeds) and of
several recipes (a baseline logged into ILA-DA's folder); of one seed and recipe (method, task, and every
flag both logs have that would split rows; a resumed run's log continues the folder's run of its method and
task, whatever flags the resume changed), its newest finished log is the run. A damaged result or
Namespace line in a finished run's log is an error naming the file (exit 2), as are folders without any
finished run. A log copied into another folder is the same run, counted once;
a seed with several runs (in two folders, or tllib's run and ours of one recipe) counts once, at their mean,
in both tables, and a line below each names it. A task is named by its domains' short names (``A→W``), or by
their full names where two tasks would share one (MNIST and MNISTRGB). A method gets one row per variant:
rows split on flags whose values differ between its runs, among the flags all of its runs have
(so a flag tllib's Namespace lacks never splits a row). A run resumed with other values of the flags a
resume may change (``--lr`` ...) has only its last values in its log's Namespace: its ``flags over the
run:`` line gives it a row of its own, named by that line (after the flags that split rows). ``Origin``
is the original paper's average as tllib's README quotes it (and the ILA-DA paper's for its rows), where
one exists.
"""
import argparse
import math
import os
import statistics
import sys
from collections import defaultdict
from typing import Dict, List

from .logged_flags import HISTORY_PREFIX, comparable, is_ila_term_flag
from .run_logs import IGNORED, LogError, Run, collect, missing_folders

__all__ = ["seed_values", "seed_acc", "row_names", "task_labels", "format_table", "format_paired_table",
           "average_gain", "main", "ORIGIN"]

# row order: tllib's tables', each method followed by its sampling control and its ILA-DA version
_ORDER = ["ERM", "DANN", "DAN", "JAN", "ADDA", "CDAN", "MCD", "AFN", "BSP", "MDD", "MCC", "CC-Loss", "FixMatch",
          "Self-Ensemble"]

#: ``Origin``: (``-d``, method) -> the original paper's average accuracy. tllib's README quotes the
#: baselines' (ResNet-50; "/" there: none); the ILA-DA paper gives its own rows.
ORIGIN = {
    ("Office31", "ERM"): 76.1, ("Office31", "DANN"): 82.2, ("Office31", "BSP"): 87.7, ("Office31", "DAN"): 80.4,
    ("Office31", "JAN"): 84.3, ("Office31", "CDAN"): 87.7, ("Office31", "AFN"): 85.7, ("Office31", "MDD"): 88.9,
    ("Office31", "MCC"): 89.4,
    ("OfficeHome", "ERM"): 46.1, ("OfficeHome", "DAN"): 56.3, ("OfficeHome", "DANN"): 57.6,
    ("OfficeHome", "JAN"): 58.3, ("OfficeHome", "CDAN"): 65.8, ("OfficeHome", "BSP"): 64.9,
    ("OfficeHome", "AFN"): 67.3, ("OfficeHome", "MDD"): 68.1,
    ("Office31", "ILA-DA+DANN"): 85.54, ("Office31", "ILA-DA+CDAN"): 89.30,
    ("Digits", "DANN"): 89.29, ("Digits", "CDAN"): 93.1,
    ("Digits", "ILA-DA+DANN"): 93.83, ("Digits", "ILA-DA+CDAN"): 94.88,
    ("Birds31", "DANN"): 78.44, ("Birds31", "CDAN"): 82.18,
    ("Birds31", "ILA-DA+DANN"): 83.63, ("Birds31", "ILA-DA+CDAN"): 86.03,
}


def task_labels(runs: List[Run]) -> Dict[int, str]:
    """Each run's task as a table's column names it: its short name (``A→W``), or, where two tasks of
    ``runs`` share a short name (MNIST and MNISTRGB are both M), the domains' full names, with the dataset
    where that is what differs; keyed by ``id(run)``."""
    tasks_named = defaultdict(set)
    for r in runs:
        tasks_named[r.task].add(r.task_key)

    def full(r):
        data, source, target = r.task_key
        named = f"{'+'.join(source)}→{'+'.join(target)}"
        return f"{data}:{named}" if len({key[0] for key in tasks_named[r.task]}) > 1 else named
    return {id(r): r.task if len(tasks_named[r.task]) == 1 else full(r) for r in runs}


def seed_values(runs: List[Run], names: Dict[int, str], task_of: Dict[int, str]) -> Dict[tuple, List[Run]]:
    """``(row, task, seed)`` -> its runs. A seed counts once in both tables: where it has more than one run
    (two runs of it in two folders that are not copies of one log, or tllib's run and ours of one recipe) its
    value is their mean (:func:`seed_acc`), so that the spread stays the spread over seeds and a pair does not
    depend on the order the folders were read in; a line below the table names such seeds."""
    found = defaultdict(list)
    for r in runs:
        # a run without --seed (tllib's default) drew its own: runs without one are never one seed
        seed = comparable(r.args["seed"]) if r.args.get("seed") is not None else f"none ({r.path})"
        found[(names[id(r)], task_of[id(r)], seed)].append(r)
    return found


def seed_acc(found: List[Run]) -> float:
    return statistics.mean(r.acc for r in found)


def _several_runs(found: Dict[tuple, List[Run]], rows) -> str:
    """The line naming the seeds of ``rows`` with more than one run, each averaged as one ('' if none)."""
    several = sorted((key for key, runs in found.items() if len(runs) > 1 and key[0] in rows),
                     key=lambda key: (key[0], key[1], key[2]))
    if not several:
        return ""
    return "\n\nseeds with more than one run, each counted once at the mean of its runs: " + "; ".join(
        f"{row}, {task}, seed {seed} ({' and '.join(f'{r.acc:.1f}' for r in found[(row, task, seed)])})"
        for row, task, seed in several)


def _varying(group: List[Run]) -> List[str]:
    """The flags that split one method's runs into rows: those all its runs have, with more than one value."""
    shared = set.intersection(*(set(r.args) for r in group)) - IGNORED
    return [k for k in sorted(shared) if len({comparable(r.args[k]) for r in group}) > 1]


def row_names(runs: List[Run]) -> Dict[int, str]:
    """Method name plus the flags that vary between runs of that method (ablations get their own rows)."""
    by_method = defaultdict(list)
    for r in runs:
        by_method[r.method].append(r)
    names = {}
    for method, group in by_method.items():
        varying = _varying(group)
        for r in group:
            extra = ", ".join(f"{k}={comparable(r.args[k])}" for k in varying)   # a typed list as its tuple default
            if r.flags_over_the_run:   # a run resumed with other values never shares a row with one that was not
                extra += ("; " if extra else "") + HISTORY_PREFIX + r.flags_over_the_run
            names[id(r)] = f"{method} ({extra})" if extra else method
    return names


def _fmt(values: List[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}"


def format_table(runs: List[Run]) -> str:
    if not runs:
        return "no finished runs (no log with a test_acc1 line)"
    names, task_of = row_names(runs), task_labels(runs)
    found = seed_values(runs, names, task_of)
    tasks = sorted(set(task_of.values()), key=lambda t: min(r.path for r in runs if task_of[id(r)] == t))
    cells = defaultdict(list)          # (row, task) -> accuracies over seeds
    seeds_of = defaultdict(list)       # (row, task) -> their seeds, in the same order
    rows, first = [], {}
    for r in runs:
        row = names[id(r)]
        if row not in rows:
            rows.append(row)
            first[row] = r
    for (row, task, seed), of_seed in found.items():
        cells[(row, task)].append(seed_acc(of_seed))
        seeds_of[(row, task)].append(seed)
    position = {method: i for i, method in enumerate(_ORDER)}
    rows.sort(key=lambda n: (position.get(first[n].base, len(_ORDER)), first[n].base, first[n].variant, n))
    lines = ["| Method | Origin | Avg | " + " | ".join(tasks) + " | seeds |",
             "|---" * (len(tasks) + 4) + "|"]
    for row in rows:
        per_task = [cells[(row, t)] for t in tasks]
        # Avg seed by seed over the tasks when every task ran the same seeds, each once (its ± is then the
        # spread of a user's one-seed average); else the mean of the tasks' means, without a spread
        by_seed = [dict(zip(seeds_of[(row, t)], cells[(row, t)])) for t in tasks]
        seeds = [seeds_of[(row, t)] for t in tasks]
        if not all(seeds):
            avg = "-"
        elif len(tasks) == 1:
            avg = _fmt(per_task[0])
        elif all(set(s) == set(seeds[0]) for s in seeds):
            avg = _fmt([statistics.mean(accs[seed] for accs in by_seed) for seed in sorted(set(seeds[0]))])
        else:
            avg = f"{statistics.mean(statistics.mean(v) for v in per_task):.1f}"
        origin = ORIGIN.get((first[row].args.get("data"), first[row].method))
        seeds = "/".join(str(len(v)) for v in per_task)
        lines.append(f"| {row} | {origin if origin is not None else '-'} | {avg} | "
                     + " | ".join(_fmt(v) for v in per_task) + f" | {seeds} |")
    return "\n".join(lines) + _several_runs(found, rows)


def average_gain(differences: List[List[float]]) -> str:
    """The mean over tasks of the mean paired difference per task, ``± its standard error`` when every task
    has two pairs or more: :math:`\\sqrt{\\sum_t s_t^2 / n_t} / T`, from the seed-to-seed spread of each task's
    differences. The mean over many seeds lies within about two standard errors of it (further with
    very few seeds per task)."""
    mean = statistics.mean(statistics.mean(d) for d in differences)
    if min(len(d) for d in differences) < 2:
        return f"{mean:+.1f}"
    error = math.sqrt(sum(statistics.variance(d) / len(d) for d in differences)) / len(differences)
    return f"{mean:+.1f} ± {error:.1f}"


def _baseline_rows(runs: List[Run], names: Dict[int, str]) -> Dict[int, str]:
    """Each ILA-DA run -> the row of the method it is added to that ran as it did: where that method's runs
    split into rows (e.g. with and without ``--pretrain-iters``), the row whose splitting flags have the ILA-DA
    run's values. Left out when no row, or more than one, matches."""
    baselines = defaultdict(list)
    for r in runs:
        if r.variant == 0:
            baselines[r.method].append(r)
    splitting = {method: _varying(group) for method, group in baselines.items()}

    def same_recipe(baseline: Run, run: Run) -> bool:
        # the baseline trained as the ILA-DA run did but for ILA's term: every flag both logged has one value,
        # but the ignored ones and ILA's own
        return all(comparable(baseline.args[k]) == comparable(run.args[k])
                   for k in (set(baseline.args) & set(run.args)) - IGNORED if not is_ila_term_flag(k))
    against = {}
    for r in runs:
        if r.variant != 2 or r.base not in baselines:
            continue
        # a resumed run with other values ran another recipe: it pairs only with one resumed alike
        rows = {names[id(b)] for b in baselines[r.base] if b.flags_over_the_run == r.flags_over_the_run
                and all(comparable(b.args[k]) == comparable(r.args.get(k)) for k in splitting[r.base])
                and same_recipe(b, r)}
        if len(rows) == 1:
            against[id(r)] = rows.pop()
    return against


def format_paired_table(runs: List[Run]) -> str:
    """Every ILA-DA row against the method it is added to, seed by seed (runs of one task and one seed
    pair up, with a baseline run with the same flags but ILA's own, :func:`~ila_tllib.logged_flags.
    is_ila_term_flag`; where that method's runs split into rows, against the row that ran as the ILA-DA row did; a
    seed with several runs of one row pairs at their mean, and a last line names it): the mean paired gain per
    task and over the tasks, the range of the differences, and the pairs ILA-DA wins (a tie is not a win).
    A user runs one seed, so the win rate says more than a mean; the average over tasks carries its
    standard error (see :func:`average_gain`)."""
    names, task_of = row_names(runs), task_labels(runs)
    runs_of = seed_values(runs, names, task_of)
    acc = {key: seed_acc(found) for key, found in runs_of.items()}
    against = _baseline_rows(runs, names)
    base_of = {names[id(r)]: against[id(r)] for r in runs if against.get(id(r))}
    tasks = sorted(set(task_of.values()), key=lambda t: min(r.path for r in runs if task_of[id(r)] == t))
    lines = ["| ILA-DA row | against | " + " | ".join(tasks) + " | Avg ± s.e. | pairs won |",
             "|---" * (len(tasks) + 4) + "|"]
    for row in sorted(base_of):
        base = base_of[row]
        cells, per_task, diffs_all = [], [], []
        for task in tasks:
            diffs = [a - acc[(base, t, seed)] for (name, t, seed), a in acc.items()
                     if name == row and t == task and (base, t, seed) in acc]
            if diffs:
                per_task.append(diffs)
                diffs_all += diffs
                cells.append(f"{statistics.mean(diffs):+.1f} ({min(diffs):+.1f} .. {max(diffs):+.1f})")
            else:
                cells.append("-")
        if diffs_all:
            won = sum(d > 0 for d in diffs_all)
            average = average_gain(per_task) if len(per_task) == len(tasks) else "-"
            lines.append(f"| {row} | {base} | " + " | ".join(cells)
                         + f" | {average} | {won}/{len(diffs_all)} ({100 * won / len(diffs_all):.0f}%) |")
    if len(lines) == 2:
        if not any(r.variant == 2 for r in runs):
            return "no pairs: no ILA-DA run here"
        return ("no pairs: no ILA-DA run here has a finished run of the method it is added to, run with the "
                "same flags, task and seed; give the baselines' log folders too")
    return "\n".join(lines) + _several_runs(runs_of, set(base_of) | set(base_of.values()))


def main(argv=None):
    parser = argparse.ArgumentParser(description="Print tllib's results table from training logs (ours and "
                                                 "tllib's own).")
    parser.add_argument("log_dirs", nargs="+", metavar="LOGDIR")
    parser.add_argument("--paired", action="store_true",
                        help="also print every ILA-DA row's seed-by-seed gains over the method it is added to")
    args = parser.parse_args(argv)
    missing = missing_folders(args.log_dirs)
    if missing:
        print(f"error: {missing}", file=sys.stderr)
        return 2
    try:
        runs = collect(args.log_dirs)
    except LogError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not runs:
        print(f"error: no finished run in {', '.join(args.log_dirs)} (no training log with a test_acc1 line); give "
              f"the --log folders of finished runs", file=sys.stderr)
        return 2
    text = format_table(runs) + ("\n\n" + format_paired_table(runs) if args.paired else "")
    try:
        print(text, flush=True)
    except BrokenPipeError:      # a reader that stops early (| head) is not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
