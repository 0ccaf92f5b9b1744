"""Do two baseline runs agree on the target where ILA-DA gains, and disagree where it loses?

    python benchmarks/baseline_agreement.py RUNS [RUNS ...] [--seeds 0 1 2 3] [--data-root DIR]

RUNS are folders searched for finished runs of the scripts (``train-*.txt`` beside
``checkpoints/latest.pth``), e.g. ``offline_digits.py``'s ``OUT/main/4x300``. For every baseline (DANN,
CDAN: ILA off) and task with at least two runs among ``--seeds``, each run's finished weights predict the
target test images; the agreement is the mean, over every pair of those runs, of the share of images on
which the two predict the same class. It needs no target label (they are read for the accuracy column
only). Beside it, ILA-DA's mean gain over that baseline on that task, paired seed by seed in the committed
logs of the scripts' default (``gain_by_shift.py``'s folders, seeds 0-4): ``lost`` below -0.5, ``gained``
above +0.5. Last, per method: whether one agreement threshold puts every lost task below every gained one,
and where.
"""
import argparse
import itertools
import os
import statistics
import sys
from collections import defaultdict


HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)   # gain_by_shift and knn_vote_probe, next to this script

from gain_by_shift import DEFAULT_SETS, RESULTS, METHODS, rows  # noqa: E402
from knn_vote_probe import ProbeError, target_outputs  # noqa: E402
from ila_tllib.run_logs import collect_or_exit  # noqa: E402

#: ILA-DA's mean gain (points) beyond which a task counts as lost or gained
LOST_BELOW, GAINED_ABOVE = -0.5, 0.5


def target_predictions(run_dir, data_root=None):
    """The finished weights' predicted class and the label of every target test image, in the set's order."""
    run, outputs, labels = target_outputs(run_dir, data_root)
    return run, outputs.argmax(dim=1), labels


def pairwise_agreement(predictions):
    """Mean over every pair of runs of the share (%) of images both predict the same class for."""
    if len(predictions) < 2 or len({len(p) for p in predictions}) != 1:
        raise ValueError("pairwise_agreement needs at least two prediction vectors of one length")
    return statistics.mean(100 * (a == b).double().mean().item() for a, b in itertools.combinations(predictions, 2))


def separating_threshold(lost, gained):
    """(True, midpoint) when every value in ``lost`` is below every value in ``gained``; (False, None) when
    not, or when either group is empty."""
    if not lost or not gained or max(lost) >= min(gained):
        return False, None
    return True, (max(lost) + min(gained)) / 2


def outcome(gain):
    if gain != gain:   # NaN: no committed pair
        return "not run"
    return "lost" if gain < LOST_BELOW else "gained" if gain > GAINED_ABOVE else "level"


def committed_gains():
    """(method, task) -> ILA-DA's mean gain over that baseline in the committed logs of the default."""
    table = rows([os.path.join(RESULTS, s) for s in DEFAULT_SETS["cosine"]], set(range(5)), "cosine")
    return {(r["method"], r["task"]): r["gain"] for r in table}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="folders holding finished baseline runs with their checkpoints")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3],
                        help="the seeds whose runs are compared (default: 0 1 2 3)")
    parser.add_argument("--data-root", default=None, help="the dataset root, if not the one in the logs")
    args = parser.parse_args()
    missing = [d for d in args.runs if not os.path.isdir(d)]
    if missing:
        parser.error(f"not a folder: {', '.join(missing)}; give folders holding finished runs")
    folders = defaultdict(list)
    for run in collect_or_exit(parser, args.runs):
        if run.method in METHODS and run.args.get("seed") in args.seeds:
            run_dir = os.path.dirname(run.path)
            if os.path.isfile(os.path.join(run_dir, "checkpoints", "latest.pth")):
                folders[(run.method, run.task)].append(run_dir)
    folders = {key: sorted(set(dirs)) for key, dirs in folders.items() if len(set(dirs)) >= 2}
    if not folders:
        parser.error(f"no baseline (DANN, CDAN) task has two finished runs with checkpoints/latest.pth among seeds "
                     f"{' '.join(map(str, args.seeds))} in {' '.join(args.runs)}")
    gains = committed_gains()
    table = []
    for (method, task), dirs in sorted(folders.items()):
        try:
            found = [target_predictions(d, args.data_root) for d in dirs]
        except ProbeError as e:
            parser.error(str(e))
        accuracy = statistics.mean(100 * (p == y).double().mean().item() for _, p, y in found)
        gain = gains.get((method, task), float("nan"))
        table.append(dict(method=method, task=task, runs=len(found), accuracy=accuracy, gain=gain,
                          agreement=pairwise_agreement([p for _, p, _ in found])))
    print("| method | task | runs | agreement % | finished weights' accuracy % | ILA-DA's gain | outcome |")
    print("|---|---|---|---|---|---|---|")
    for r in sorted(table, key=lambda r: (r["method"], r["agreement"])):
        print(f"| {r['method']} | {r['task']} | {r['runs']} | {r['agreement']:.1f} | {r['accuracy']:.1f} | "
              f"{r['gain']:+.1f} | {outcome(r['gain'])} |")
    print()
    for method in METHODS:
        mine = [r for r in table if r["method"] == method]
        if not mine:
            continue
        lost = [r["agreement"] for r in mine if outcome(r["gain"]) == "lost"]
        gained = [r["agreement"] for r in mine if outcome(r["gain"]) == "gained"]
        separated, threshold = separating_threshold(lost, gained)
        verdict = (f"separated at {threshold:.1f} %" if separated else
                   "not separated" if lost and gained else "nothing to separate (one group is empty)")
        print(f"{method}: {len(lost)} lost task(s), agreement {_span(lost)}; {len(gained)} gained, {_span(gained)}: "
              f"{verdict}")


def _span(values):
    return f"{min(values):.1f} .. {max(values):.1f}" if values else "-"


if __name__ == "__main__":
    main()
