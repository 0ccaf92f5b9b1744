"""Choose, seed by seed and without a target label, between a baseline's and ILA-DA's finished weights.

    python benchmarks/label_free_choice.py RUNS [RUNS ...] [--seeds 0 1 2 3 4] [--score snd] [--data-root DIR]

RUNS are folders searched for finished runs of the scripts (``train-*.txt`` beside
``checkpoints/latest.pth``, the weights after the last epoch), e.g. ``offline_digits.py``'s ``OUT/main/4x300``.
For every method (DANN, CDAN), task and seed with both the baseline's and ILA-DA's run, each run's weights
give softmax outputs on the target test images, and a label-free score of those outputs
(``ila_tllib.selection.SCORES``) keeps one of the two. Target labels are read for the accuracy columns only.

Per method and task, the last epoch's mean accuracy of the baseline, of ILA-DA and of the kept weights;
the kept weights' gain over the baseline, ILA-DA's own gain, how often ILA-DA was kept and how often the
kept weights were the more accurate of the two (ties count as right). Below, per method: the mean of the
tasks' gains, kept and ILA-DA's own, and the tasks whose kept gain is more than 0.5 below the baseline.
Each run's accuracy is checked against its log's last `` * Acc@1`` line.
"""
import argparse
import os
import statistics
import sys
from collections import defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)   # gain_by_shift and knn_vote_probe, next to this script

from gain_by_shift import METHODS, epoch_accuracy, tasks_below  # noqa: E402
from knn_vote_probe import ProbeError, target_outputs  # noqa: E402
from ila_tllib.selection import SCORES, better_of  # noqa: E402
from ila_tllib.run_logs import collect_or_exit  # noqa: E402

#: a task whose kept weights end further than this below the baseline (points) is listed as lost
WORST = -0.5
#: the largest gap (points) allowed between the accuracy computed here and the log's last epoch
LOGGED_TOLERANCE = 0.051


def read_weights(run, data_root=None):
    """A run's last-epoch accuracy (%) and every score of its target outputs."""
    _, outputs, labels = target_outputs(os.path.dirname(run.path), data_root)
    accuracy = 100 * (outputs.argmax(dim=1) == labels).double().mean().item()
    logged = epoch_accuracy(run.path, -1)
    if logged is not None and abs(accuracy - logged) > LOGGED_TOLERANCE:
        raise ProbeError(f"{os.path.dirname(run.path)}: its weights give {accuracy:.2f} % here but its log's last "
                         f"epoch {logged:.2f} %: give the --data-root it ran on")
    return dict(accuracy=accuracy, **{name: score.function(outputs) for name, score in SCORES.items()})


def choice_rows(pairs, score):
    """One dict per (method, task) from ``pairs``: (method, task) -> [(baseline reading, ILA-DA reading)]."""
    table = []
    for (method, task), found in sorted(pairs.items()):
        kept = [(b, i)[better_of(score, b[score], i[score])] for b, i in found]
        table.append(dict(
            method=method, task=task, n=len(found),
            base=statistics.mean(b["accuracy"] for b, _ in found),
            ila=statistics.mean(i["accuracy"] for _, i in found),
            kept=statistics.mean(k["accuracy"] for k in kept),
            ila_kept=sum(k is i for k, (_, i) in zip(kept, found)),
            right=sum(k["accuracy"] >= max(b["accuracy"], i["accuracy"]) for k, (b, i) in zip(kept, found))))
    for r in table:
        r["gain"], r["ila_gain"] = r["kept"] - r["base"], r["ila"] - r["base"]
    return table


def summary(table):
    """Per method: the kept and ILA-DA's own mean gain over the tasks, the counts of the table's last two
    columns, and the tasks whose kept gain is below :data:`WORST`."""
    lines = []
    for method in METHODS:
        mine = [r for r in table if r["method"] == method]
        if mine:
            n = sum(r["n"] for r in mine)
            lines.append(f"{method}: kept {statistics.mean(r['gain'] for r in mine):+.1f} over {len(mine)} task(s) "
                         f"(ILA-DA's own {statistics.mean(r['ila_gain'] for r in mine):+.1f}), ILA-DA kept in "
                         f"{sum(r['ila_kept'] for r in mine)}/{n}, the more accurate kept in "
                         f"{sum(r['right'] for r in mine)}/{n}; {tasks_below(mine, WORST)}")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="folders holding finished runs with their checkpoints")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="default: 0 1 2 3 4")
    parser.add_argument("--score", nargs="+", default=list(SCORES), choices=list(SCORES),
                        help="the label-free scores to choose by, one table each (default: all)")
    parser.add_argument("--data-root", default=None, help="the dataset root, if not the one in the logs")
    args = parser.parse_args()
    missing = [d for d in args.runs if not os.path.isdir(d)]
    if missing:
        parser.error(f"not a folder: {', '.join(missing)}; give folders holding finished runs")
    runs = {}
    for run in collect_or_exit(parser, args.runs):
        if run.args.get("seed") in args.seeds and \
                os.path.isfile(os.path.join(os.path.dirname(run.path), "checkpoints", "latest.pth")):
            runs[(run.method, run.task, run.args["seed"])] = run
    keys = sorted((m, t, s) for m, t, s in runs if m in METHODS and ("ILA-DA+" + m, t, s) in runs)
    if not keys:
        parser.error(f"no seed among {' '.join(map(str, args.seeds))} has both a baseline (DANN, CDAN) run and its "
                     f"ILA-DA run with checkpoints/latest.pth in {' '.join(args.runs)}")
    pairs = defaultdict(list)
    try:
        for method, task, seed in keys:
            pairs[(method, task)].append((read_weights(runs[(method, task, seed)], args.data_root),
                                          read_weights(runs[("ILA-DA+" + method, task, seed)], args.data_root)))
    except ProbeError as e:
        parser.error(str(e))
    for score in args.score:
        table = choice_rows(pairs, score)
        print(f"\nkept by {score} ({'higher' if SCORES[score].higher_is_better else 'lower'} is better)\n")
        print("| method | task | seeds | baseline | ILA-DA | kept | kept − baseline | ILA-DA − baseline | "
              "ILA-DA kept | more accurate kept |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for r in sorted(table, key=lambda r: (r["base"], r["method"])):
            print(f"| {r['method']} | {r['task']} | {r['n']} | {r['base']:.1f} | {r['ila']:.1f} | {r['kept']:.1f} | "
                  f"{r['gain']:+.1f} | {r['ila_gain']:+.1f} | {r['ila_kept']}/{r['n']} | {r['right']}/{r['n']} |")
        print()
        print("\n".join(summary(table)))


if __name__ == "__main__":
    main()
