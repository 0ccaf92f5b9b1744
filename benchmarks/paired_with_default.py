"""An ablation against ILA-DA's defaults, seed by seed: does the changed part beat the default?

    python benchmarks/paired_with_default.py VARIANT_DIR DEFAULT_DIR [DEFAULT_DIR ...] [--more VARIANT_DIR ...]
        [--seeds 0 1 2 3 4]

``python -m ila_tllib.tables --paired`` pairs each ILA-DA row with its baseline; this pairs the runs of one
ablation (VARIANT_DIR, e.g. ``benchmarks/results/offline_digits_ablations_4x300/source-bank32``) with the
default ILA-DA runs of the same method, task and seed (DEFAULT_DIR, e.g.
``benchmarks/results/offline_digits_4x300``), and prints per method the mean difference per task, the mean
over tasks with its standard error and the pairs the variant wins (a tie is not a win).
"""
import argparse
import os
import statistics
import sys
from collections import defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from ila_tllib.run_logs import collect_or_exit, missing_folders, recipe_difference  # noqa: E402
from ila_tllib.tables import average_gain  # noqa: E402


def by_key(runs, parser):
    """(method, task, seed) -> run, ILA-DA runs only; two runs of one key are an error (a folder that
    also holds an ablation's runs: give the default runs' own folders)."""
    found = {}
    for r in runs:
        if r.method.startswith("ILA-DA+"):
            key = (r.method, r.task, r.args["seed"])
            if key in found:
                parser.error(f"two runs of {key[0]} {key[1]} seed {key[2]}: {found[key].path} and {r.path}; give "
                             f"folders that hold one run of each (e.g. DIR/ILA-DA+DANN DIR/ILA-DA+CDAN)")
            found[key] = r
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("variant")
    parser.add_argument("default", nargs="+")
    parser.add_argument("--more", nargs="+", default=[], metavar="DIR",
                        help="more folders of the variant's runs (e.g. other seeds), pooled with VARIANT")
    parser.add_argument("--seeds", nargs="+", type=int, default=None, metavar="SEED",
                        help="pair only these seeds (default: every seed in both)")
    args = parser.parse_args()
    missing = missing_folders([args.variant] + args.more + args.default)
    if missing:
        parser.error(missing)
    variant_runs = collect_or_exit(parser, [args.variant] + args.more)
    default_runs = collect_or_exit(parser, args.default)
    same = {os.path.realpath(r.path) for r in variant_runs} & {os.path.realpath(r.path) for r in default_runs}
    if same:
        parser.error(f"the variant's and the default's folders hold the same runs (e.g. {sorted(same)[0]}); give "
                     f"the variant's folder, then the default runs' folders")
    variant, default = by_key(variant_runs, parser), by_key(default_runs, parser)
    differences = defaultdict(lambda: defaultdict(list))      # method -> task -> [variant - default]
    paired = [key for key in set(variant) & set(default) if args.seeds is None or key[2] in args.seeds]
    for key in sorted(paired, key=str):
        unlike = recipe_difference(variant[key], default[key])
        if unlike:
            parser.error(unlike)
        method, task, _ = key
        differences[method][task].append(variant[key].acc - default[key].acc)
    if not differences:
        parser.error("no ILA-DA run of the same method, task and seed is in both folders; give an ablation's "
                     "folder, then the folder of the default runs")
    print("| ILA-DA row | per task: mean of variant − default (range) | Avg ± s.e. | pairs won |")
    print("|---|---|---|---|")
    for method, tasks in sorted(differences.items()):
        cells = [f"{task} {statistics.mean(d):+.1f} ({min(d):+.1f} .. {max(d):+.1f})" for task, d in tasks.items()]
        flat = [x for d in tasks.values() for x in d]
        won = sum(x > 0 for x in flat)
        print(f"| {method} | {'; '.join(cells)} | {average_gain(list(tasks.values()))} | {won}/{len(flat)} |")


if __name__ == "__main__":
    main()
