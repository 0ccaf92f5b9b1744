"""The scripts' default on every offline digit shift, in one table: what ILA-DA gains over its baseline, and
what the logs say about the shift.

    python benchmarks/gain_by_shift.py                  # the committed logs of the default (the angle), seeds 0-4
    python benchmarks/gain_by_shift.py --similarity inverse_euclidean   # the default before the angle
    python benchmarks/gain_by_shift.py --sets DIR ...   # other folders holding <method>/<task>_seed<n> runs
    python benchmarks/gain_by_shift.py --committed-baselines --sets DIR ...   # a variant's ILA-DA runs only
    python benchmarks/gain_by_shift.py --accuracy last  # the last epoch's weights, not the best epoch's
    python benchmarks/gain_by_shift.py --epoch 0        # the weights after the first epoch

Per method and task, paired seed by seed: the baseline's and ILA-DA's target accuracy, the gain and the
pairs ILA-DA is ahead in; then, from ILA-DA's own logs, the last epoch's pseudo-label precision of the kept
targets (target labels, read for the log only) and the domain discriminator's accuracy (no target label),
and the baseline's discriminator accuracy. Rows are sorted by the baseline's accuracy; below them, per
method, the mean of the tasks' gains, the pairs ahead and the tasks more than 0.5 below the baseline. A run
in a later folder of ``--sets`` replaces one of the same method, task and seed in an earlier folder (each
list of committed folders names the folders of older defaults first). A set written ``DIR=DANN,CDAN`` reads
only those methods' runs from DIR (a folder whose ILA-DA runs are not the default's). Every ILA-DA run read
must have run with ``--similarity``.

``--accuracy best`` (the default) reads tllib's ``test_acc1``: the accuracy of the epoch whose target test
accuracy was highest, an epoch chosen with target labels, as tllib's tables report it. ``--accuracy last``
reads the last epoch's `` * Acc@1`` instead: the weights a user without target labels keeps. ``--epoch N``
reads epoch N's (0: the first).

``--oracle-off-losing`` and ``--oracle-off-below PCT`` bound what switching ILA-DA off for a whole shift could
do for the mean gain and the tasks below -0.5: ILA-DA is counted as its baseline (the same runs: gain 0, not
ahead) on every task whose mean gain is below 0, or whose baseline's mean accuracy is below PCT. Both choose
the tasks with target labels; they are not a method. The pairs ahead can only fall: a switched-off pair is a
tie. The rows switched off say ``(off)`` and show no ILA-DA diagnostics.
"""
import argparse
import os
import re
import statistics
import sys
from collections import defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)   # ila_diagnostics, next to this script

from ila_diagnostics import epochs  # noqa: E402
from ila_tllib.logged_flags import RESUMED_PREFIX  # noqa: E402
from ila_tllib.run_logs import collect, missing_folders, recipe_difference, run_epochs  # noqa: E402

RESULTS = os.path.join(HERE, "results")
# the folders with the runs of the default's no-shrink spectral penalty on the paper's inverse distance, seeds 0-4
EUCLIDEAN_SETS = ["offline_digits_4x300", "offline_digits_ablations_4x300/no-shrink",
                "offline_digits_heldout_4x300", "offline_digits_heldout_4x300/no-shrink",
                "offline_digits_reverse_4x300", "offline_digits_reverse_4x300/no-shrink",
                "offline_digits_syn_4x300", "offline_digits_syn_4x300/no-shrink",
                "offline_digits_street_4x300", "offline_digits_street_target_4x300",
                "offline_digits_heldout_cosine_4x300=DANN,CDAN", "offline_digits_heldout_default_4x300"]


def baselines_only(entry):
    """A ``--sets`` entry narrowed to the baselines' runs (``DIR=DANN,CDAN``)."""
    return entry.partition("=")[0] + "=DANN,CDAN"


#: --similarity -> the committed folders of its runs: the angle's ILA-DA runs, paired with the same baselines
DEFAULT_SETS = {
    "inverse_euclidean": EUCLIDEAN_SETS,
    "cosine": [baselines_only(s) for s in EUCLIDEAN_SETS] + [
        "offline_digits_ablations_4x300/cosine", "offline_digits_street_target_4x300/cosine",
        "offline_digits_heldout_cosine_4x300=ILA-DA+DANN,ILA-DA+CDAN",
        # three shifts drawn at random from those never run, after the angle became the default
        "offline_digits_heldout_drawn_4x300",
        # the last three pairs of the five domains never run, after that draw
        "offline_digits_last_pairs_4x300",
        # four shifts to and from the sixth domain, scan, drawn before any run on it
        "offline_digits_scan_4x300",
        # the other six pairs of scan, after that test
        "offline_digits_scan_other_4x300"],
}
METHODS = ("DANN", "CDAN")
ALL_METHODS = METHODS + tuple("ILA-DA+" + m for m in METHODS)


def split_set(entry):
    """``DIR`` or ``DIR=M1,M2``: the folder and the methods read from it."""
    folder, _, methods = entry.partition("=")
    methods = tuple(methods.split(",")) if methods else ALL_METHODS
    unknown = set(methods) - set(ALL_METHODS)
    if unknown:
        raise ValueError(f"{entry}: unknown method(s) {', '.join(sorted(unknown))}; "
                         f"choose from {', '.join(ALL_METHODS)}")
    return folder, methods


def last_average(path, meter):
    """The running average a meter of the training line shows at the last line printed, or None."""
    found = None
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith("Epoch:"):
                m = re.search(re.escape(meter) + r" +[\d.]+ \( *([\d.]+)\)", line)
                found = float(m.group(1)) if m else found
    return found


def _log_epochs(path):
    """Whether a log resumed a run, whether it trained or evaluated, and {epoch: target accuracy} of the
    epochs it evaluates: its `` * Acc@1`` lines before ``best_acc1`` (the lines after it test the best epoch's
    weights again), counted from the epoch of its ``=> resumed from ...: epoch E`` line (0 for a fresh start)."""
    start, resumed, ran, found = 0, False, False, []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith("best_acc1"):
                break
            ran = ran or line.startswith("Epoch:")
            again = re.match(re.escape(RESUMED_PREFIX) + r".*: epoch (\d+), iteration", line)
            m = re.match(r" \* Acc@1 +([\d.]+)", line)
            if again:
                start, resumed = int(again.group(1)), True
            elif m:
                found.append(float(m.group(1)))
    return resumed, ran or bool(found), {start + i: acc for i, acc in enumerate(found)}


def epoch_accuracies(path):
    """The target accuracy of every epoch of the run whose newest log is ``path``, in order (a resumed run's
    earlier epochs from the earlier logs of its folder; None where none holds them)."""
    by_epoch = run_epochs(path, _log_epochs)
    return [by_epoch.get(epoch) for epoch in range(max(by_epoch, default=-1) + 1)]


def epoch_accuracy(path, epoch):
    """Epoch ``epoch``'s target accuracy (-1: the last epoch), or None when the log has no such epoch."""
    found = epoch_accuracies(path)
    return found[epoch] if -len(found) <= epoch < len(found) else None


#: --accuracy -> a finished run's target accuracy
ACCURACIES = {"best": lambda run: run.acc, "last": lambda run: epoch_accuracy(run.path, -1)}


def last_kept_precision(path):
    """The kept targets' pseudo-label precision of the last ``ILA:`` epoch summary, or None."""
    found = epochs(path)
    return found[max(found)][0] if found else None


def mean(values):
    values = [v for v in values if v is not None]
    return statistics.mean(values) if values else float("nan")


def rows(sets, seeds, similarity, accuracy="best", epoch=None):
    """One dict per (method, task) with both the baseline's and ILA-DA's runs of the same seeds; every ILA-DA
    run read must have run with ``similarity``; ``accuracy`` names the run's accuracy in :data:`ACCURACIES`,
    unless ``epoch`` is given: that epoch's (0: the first)."""
    read = ACCURACIES[accuracy] if epoch is None else (lambda run: epoch_accuracy(run.path, epoch))
    runs = {}
    for folder, methods in map(split_set, sets):
        this_set = {}     # a later set replaces an earlier one's runs; two runs of a key in one set clash
        for method in methods:
            for run in collect([os.path.join(folder, method)]):
                if run.args.get("seed") in seeds and run.method == method:
                    ran_with = run.args.get("similarity")
                    if method.startswith("ILA-DA+") and ran_with != similarity:
                        raise ValueError(f"{os.path.dirname(run.path)} ran with --similarity {ran_with}, not "
                                         f"{similarity}: give --similarity {ran_with} or leave the run out")
                    key = (run.method, run.task, run.args["seed"])
                    if key in this_set:
                        raise ValueError(f"two runs of {key[0]} {key[1]} seed {key[2]} in {folder}: "
                                         f"{this_set[key].path} and {run.path} (another variant?); give --sets "
                                         f"folders that hold one run of each")
                    this_set[key] = run
        runs.update(this_set)
    by_task = defaultdict(list)
    for (method, task, seed), run in runs.items():
        if method in METHODS and ("ILA-DA+" + method, task, seed) in runs:
            by_task[(method, task)].append((run, runs[("ILA-DA+" + method, task, seed)]))
    table = []
    for (method, task), pairs in by_task.items():
        unlike = next(filter(None, (recipe_difference(b, i) for b, i in pairs)), "")
        if unlike:
            raise ValueError(unlike)
        accs = [(read(b), read(i)) for b, i in pairs]
        if any(a is None for pair in accs for a in pair):
            missing = next(r for pair, found in zip(pairs, accs) for r, a in zip(pair, found) if a is None)
            raise ValueError(f"{missing.path} prints no ' * Acc@1' line of that epoch before best_acc1: give "
                             f"--accuracy best, an epoch every run has, or logs of finished training runs")
        table.append(dict(
            method=method, task=task, n=len(pairs),
            base=mean(b for b, _ in accs), ila=mean(i for _, i in accs),
            gain=mean(i - b for b, i in accs), ahead=sum(i > b for b, i in accs),
            precision=mean(last_kept_precision(i.path) for _, i in pairs),
            disc_ila=mean(last_average(i.path, "Domain Acc") for _, i in pairs),
            disc_base=mean(last_average(b.path, "Domain Acc") for b, _ in pairs)))
    return sorted(table, key=lambda r: (r["base"], r["method"]))


def switched_off(table, off):
    """The table with ILA-DA counted as its baseline on every row ``off(row)`` is true for (marked ``off``):
    what a gate that switched ILA-DA off on those shifts would have given, the baseline's runs themselves."""
    return [dict(r, ila=r["base"], gain=0.0, ahead=0, precision=None, disc_ila=None, off=True) if off(r) else r
            for r in table]


def tasks_below(rows, worst):
    """``below W: T1 g1, T2 g2`` for the rows whose ``gain`` is below ``worst`` (``none`` when none is)."""
    below = ", ".join(f"{r['task']} {r['gain']:+.1f}" for r in rows if r["gain"] < worst)
    return f"below {worst:+.1f}: {below or 'none'}"


def summary(table, worst=-0.5):
    """Per method, as the pass marks read it: the mean over tasks of the task's mean gain, the pairs ahead,
    and the tasks whose mean gain is below ``worst``."""
    lines = []
    for method in METHODS:
        mine = [r for r in table if r["method"] == method]
        if mine:
            lines.append(f"{method}: {statistics.mean(r['gain'] for r in mine):+.1f} over {len(mine)} task(s), "
                         f"ahead in {sum(r['ahead'] for r in mine)}/{sum(r['n'] for r in mine)} pairs; "
                         f"{tasks_below(mine, worst)}")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--similarity", default="cosine",   # no choices: reading logs needs no torch
                        help="the ILA-DA runs of the default with this --similarity (default: cosine, the "
                             "scripts' default; committed runs exist for %s; with --sets, the --similarity "
                             "every ILA-DA run read must have run with)" % ", ".join(DEFAULT_SETS))
    parser.add_argument("--sets", nargs="+", default=None,
                        help="instead of --similarity's committed runs: folders holding DANN/, CDAN/, "
                             "ILA-DA+DANN/, ILA-DA+CDAN/ run folders; a later folder's run replaces an earlier "
                             "one's of the same method, task and seed; DIR=DANN,CDAN reads only those methods")
    parser.add_argument("--committed-baselines", action="store_true",
                        help="read the committed DANN and CDAN runs of every shift first, before --sets (a "
                             "variant's ILA-DA runs read against the baselines the default's were)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="default: 0 1 2 3 4")
    parser.add_argument("--accuracy", default=None, choices=list(ACCURACIES),
                        help="best: tllib's test_acc1, the epoch of highest target test accuracy (default); "
                             "last: the last epoch's, chosen without target labels")
    parser.add_argument("--epoch", type=int, default=None,
                        help="instead of --accuracy, the accuracy after this epoch (0: the first; negative counts "
                             "from the last: -1 the last, -2 the one before)")
    parser.add_argument("--oracle-off-losing", action="store_true",
                        help="count ILA-DA as its baseline on every task whose mean gain is below 0 (target "
                             "labels choose the tasks: a bound on what switching ILA-DA off per shift does for "
                             "the mean gain; the pairs ahead can only fall)")
    parser.add_argument("--oracle-off-below", type=float, default=None, metavar="PCT",
                        help="count ILA-DA as its baseline on every task whose baseline's mean accuracy is "
                             "below PCT (target labels choose the tasks: a bound, as --oracle-off-losing)")
    args = parser.parse_args()
    if args.accuracy is not None and args.epoch is not None:
        parser.error("give --accuracy or --epoch, not both (--epoch -1 is the last epoch's accuracy)")
    args.accuracy = args.accuracy or "best"
    if args.sets is None and args.similarity not in DEFAULT_SETS:
        parser.error(f"no committed runs of the default with --similarity {args.similarity}; give the folders "
                     f"of its runs with --sets")
    args.sets = args.sets or [os.path.join(RESULTS, s) for s in DEFAULT_SETS[args.similarity]]
    if args.committed_baselines:
        # the baselines ran without ILA's term, so the angle's sets hold every shift's, whatever --similarity
        args.sets = [os.path.join(RESULTS, baselines_only(s)) for s in DEFAULT_SETS["cosine"]] + args.sets
    try:
        missing = missing_folders([split_set(entry)[0] for entry in args.sets])
        if missing:
            parser.error(f"--sets: {missing}")
        table = rows(args.sets, set(args.seeds), args.similarity, args.accuracy, args.epoch)
    except ValueError as e:
        parser.error(str(e))
    if not table:
        parser.error("no task has both a baseline's and ILA-DA's finished runs of the same seed in --sets (a set is "
                     "a folder holding the methods' folders, DANN/, ILA-DA+DANN/, ...: offline_digits.py writes "
                     "them under OUT/main/EPOCHSxITERS)")
    if args.oracle_off_losing:
        table = switched_off(table, lambda r: r["gain"] < 0)
    if args.oracle_off_below is not None:
        table = switched_off(table, lambda r: r["base"] < args.oracle_off_below)
    print("| method | task | seeds | baseline | ILA-DA | gain | ahead | kept PL right % | discriminator % "
          "(ILA-DA / baseline) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in table:
        task, precision, disc_ila = ((r["task"] + " (off)", "–", "–") if r.get("off") else
                                     (r["task"], f"{r['precision']:.0f}", f"{r['disc_ila']:.0f}"))
        print(f"| {r['method']} | {task} | {r['n']} | {r['base']:.1f} | {r['ila']:.1f} | {r['gain']:+.1f} | "
              f"{r['ahead']}/{r['n']} | {precision} | {disc_ila} / {r['disc_base']:.0f} |")
    print()
    print("\n".join(summary(table)))


if __name__ == "__main__":
    main()
