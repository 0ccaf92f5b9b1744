"""Where a gain or a loss comes from: a chain of controls, each step paired with the one before, seed by seed.

    python benchmarks/control_steps.py BASELINE=DANN,CDAN CONTROL ... ILA-DA=ILA-DA+DANN,ILA-DA+CDAN

Each step is a folder holding ``<method>/<task>_seed<n>`` runs, written ``DIR`` or ``DIR=M1,M2`` to read
only those methods (as ``gain_by_shift.py --sets``). A run of ILA-DA + DANN and one of DANN belong to the
same chain (DANN's); every step must hold at most one run of each chain, task and seed. Per chain and
task, the table gives every step's mean accuracy over the seeds all steps share, then each step's mean
change from the step before, the seeds in which it went up, and the change seed by seed.
"""
import argparse
import os
import statistics
import sys
from collections import defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from gain_by_shift import ALL_METHODS, split_set  # noqa: E402
from ila_tllib.run_logs import collect, recipe_difference  # noqa: E402


def read_step(entry):
    """{(chain, task): {seed: run}} of one step; a second run of a chain, task and seed is an error."""
    folder, methods = split_set(entry)
    if not os.path.isdir(folder):
        raise ValueError(f"{entry}: no such folder {folder}")
    found = defaultdict(dict)
    for method in methods:
        for run in collect([os.path.join(folder, method)]):
            key, seed = (run.base, run.task), run.args.get("seed")     # ILA-DA+DANN's chain is DANN's
            if seed in found[key]:
                raise ValueError(f"{entry} holds two runs of {key[0]} {key[1]} seed {seed}; name the methods "
                                 f"to read from it, e.g. {folder}={key[0]}")
            found[key][seed] = run
    return found


def step_name(entry):
    folder, _, methods = entry.partition("=")
    name = os.path.basename(os.path.normpath(folder))
    return f"{name} ({methods})" if methods else name


def chain_rows(entries):
    steps = [read_step(e) for e in entries]
    rows = []
    for key in sorted(set.intersection(*(set(s) for s in steps))):
        seeds = sorted(set.intersection(*(set(s[key]) for s in steps)))
        if not seeds:
            continue
        for earlier, later in zip(steps, steps[1:]):
            unlike = next(filter(None, (recipe_difference(earlier[key][seed], later[key][seed]) for seed in seeds)),
                          "")
            if unlike:
                raise ValueError(unlike)
        accs = [[s[key][seed].acc for seed in seeds] for s in steps]
        for i, (entry, acc) in enumerate(zip(entries, accs)):
            row = dict(chain=key[0], task=key[1], step=step_name(entry), n=len(seeds), mean=statistics.mean(acc))
            if i:
                change = [a - b for a, b in zip(acc, accs[i - 1])]
                row.update(change=statistics.mean(change), up=sum(c > 0 for c in change), per_seed=change)
            rows.append(row)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("steps", nargs="+", metavar="DIR[=METHODS]",
                        help="two or more folders, the baseline's first; METHODS from " + ", ".join(ALL_METHODS))
    args = parser.parse_args()
    if len(args.steps) < 2:
        parser.error("give at least two steps: the baseline's folder, then the controls, in order")
    try:
        rows = chain_rows(args.steps)
    except ValueError as e:
        parser.error(str(e))
    if not rows:
        parser.error("no method, task and seed has runs in every step; check the folders and their methods")
    print("| method | task | step | seeds | mean | change | up | per seed |\n|---|---|---|---|---|---|---|---|")
    for r in rows:
        change = (f"{r['change']:+.1f} | {r['up']}/{r['n']} | " + " ".join(f"{c:+.1f}" for c in r["per_seed"])
                  if "change" in r else "- | - | -")
        print(f"| {r['chain']} | {r['task']} | {r['step']} | {r['n']} | {r['mean']:.1f} | {change} |")


if __name__ == "__main__":
    main()
