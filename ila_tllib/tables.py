"""Collect ``test_acc1`` from training logs into tllib's README table.

    python -m ila_tllib.tables LOGDIR [LOGDIR ...]

Each LOGDIR is searched recursively for ``train-*.txt`` logs written by ``ila_dann.py`` /
``ila_cdan.py`` (the ``Namespace(...)`` line names the run, the last ``test_acc1 = x`` line gives its
result). Runs that differ only in ``--seed`` are averaged (mean ± std); a row per method, a column
per task, ``Avg`` over tasks, and ``Origin`` — the paper's average where one exists.
"""
import argparse
import ast
import glob
import os
import re
import statistics
import sys
from collections import defaultdict
from typing import Dict, List, Optional

__all__ = ["Run", "read_run", "collect", "format_table", "main"]

# The ILA-DA paper's (and, for the baselines, its cited) averages, keyed by (table, method).
PAPER_AVG = {
    ("Office31", "DANN"): 82.2, ("Office31", "CDAN"): 87.7,
    ("Office31", "ILA-DA+DANN"): 85.54, ("Office31", "ILA-DA+CDAN"): 89.30,
    ("Digits", "DANN"): 89.29, ("Digits", "CDAN"): 93.1,
    ("Digits", "ILA-DA+DANN"): 93.83, ("Digits", "ILA-DA+CDAN"): 94.88,
    ("Birds31", "DANN"): 78.44, ("Birds31", "CDAN"): 82.18,
    ("Birds31", "ILA-DA+DANN"): 83.63, ("Birds31", "ILA-DA+CDAN"): 86.03,
}
# flags that never separate rows: seeds are averaged, tasks are columns
IGNORED = {"seed", "log", "phase", "workers", "print_freq", "root", "per_class_eval", "source", "target"}
# flags added after some logs were written: a log without one ran with its default
LATER_FLAGS = {"balanced_source": False}


class Run:
    def __init__(self, args: dict, acc: float, path: str):
        self.args, self.acc, self.path = {**LATER_FLAGS, **args}, acc, path

    @property
    def base(self) -> str:
        if self.args.get("trade_off", 1.0) == 0 and self.args.get("ila_trade_off", 0) == 0:
            return "ERM"
        return "CDAN" if "randomized" in self.args else "DANN"

    @property
    def method(self) -> str:
        if self.base != "ERM" and self.args.get("ila_trade_off", 0) > 0:
            return "ILA-DA+" + self.base
        if self.args.get("balanced_source"):    # the sampling control: ILA's batches, no ILA term
            return self.base + " (balanced source)"
        return self.base

    @property
    def task(self) -> str:
        def short(domains):
            return "+".join(d[0].upper() if len(d) > 2 else d for d in domains)
        return f"{short(self.args['source'])}→{short(self.args['target'])}"


def _parse_namespace(line: str) -> dict:
    """``Namespace(a=1, b='x')`` → dict, with literals only (no eval)."""
    call = ast.parse(line.strip(), mode="eval").body
    if not isinstance(call, ast.Call):
        raise ValueError("not a Namespace line")
    return {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}


def read_run(path: str) -> Optional[Run]:
    """One training log → a Run, or None when it holds no finished run."""
    args, acc = None, None
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if args is None and line.startswith("Namespace("):
                try:
                    args = _parse_namespace(line)
                except (ValueError, SyntaxError):
                    return None
            m = re.match(r"test_acc1 = ([0-9.]+)", line)
            if m:
                acc = float(m.group(1))
    if args is None or acc is None or args.get("phase", "train") != "train":
        return None
    return Run(args, acc, path)


def collect(log_dirs: List[str]) -> List[Run]:
    runs = []
    for d in log_dirs:
        files = [d] if os.path.isfile(d) else glob.glob(os.path.join(d, "**", "train-*.txt"), recursive=True)
        for path in sorted(files):
            run = read_run(path)
            if run is not None:
                runs.append(run)
    # a log dir re-run keeps several train-*.txt; keep the newest finished one per directory
    latest: Dict[str, Run] = {}
    for run in runs:
        latest[os.path.dirname(run.path)] = run
    return list(latest.values())


def _row_names(runs: List[Run]) -> Dict[int, str]:
    """Method name plus the flags that vary between runs of that method (ablations get their own rows)."""
    by_method = defaultdict(list)
    for r in runs:
        by_method[r.method].append(r)
    names = {}
    for method, group in by_method.items():
        keys = sorted({k for r in group for k in r.args} - IGNORED)
        varying = [k for k in keys if len({repr(r.args.get(k)) for r in group}) > 1]
        for r in group:
            extra = ", ".join(f"{k}={r.args.get(k)}" for k in varying)
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
    names = _row_names(runs)
    tasks = sorted({r.task for r in runs}, key=lambda t: min(r.path for r in runs if r.task == t))
    cells = defaultdict(list)          # (row, task) -> accuracies over seeds
    rows, data = [], {}
    for r in runs:
        row = names[id(r)]
        if row not in rows:
            rows.append(row)
        cells[(row, r.task)].append(r.acc)
        data[row] = r.args.get("data")
    order = {"ERM": 0, "DANN": 1, "DANN (balanced source)": 2, "ILA-DA+DANN": 3, "CDAN": 4,
             "CDAN (balanced source)": 5, "ILA-DA+CDAN": 6}
    rows.sort(key=lambda n: (order.get(n, order.get(n.split(" (")[0], 9)), n))
    lines = ["| Method | Origin | Avg | " + " | ".join(tasks) + " | seeds |",
             "|---" * (len(tasks) + 4) + "|"]
    for row in rows:
        per_task = [cells[(row, t)] for t in tasks]
        # Avg per seed index over tasks, when every task has the same number of seeds
        counts = {len(v) for v in per_task}
        if len(counts) == 1 and 0 not in counts:
            avg = _fmt([statistics.mean(v[i] for v in per_task) for i in range(counts.pop())])
        else:
            avg = "-"
        origin = PAPER_AVG.get((data[row], row))
        seeds = "/".join(str(len(v)) for v in per_task)
        lines.append(f"| {row} | {origin if origin is not None else '-'} | {avg} | "
                     + " | ".join(_fmt(v) for v in per_task) + f" | {seeds} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Print tllib's results table from training logs.")
    parser.add_argument("log_dirs", nargs="+", metavar="LOGDIR")
    args = parser.parse_args(argv)
    missing = [d for d in args.log_dirs if not os.path.exists(d)]
    if missing:
        print(f"error: no such log directory: {', '.join(missing)}", file=sys.stderr)
        return 2
    print(format_table(collect(args.log_dirs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
