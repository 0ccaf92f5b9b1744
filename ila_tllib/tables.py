"""Collect ``test_acc1`` from training logs into tllib's README table.

    python -m ila_tllib.tables LOGDIR [LOGDIR ...]

Each LOGDIR is searched recursively for ``train-*.txt`` logs, of this package's scripts and of
tllib's own (``cdan.py``, ``mcc.py``, ...): the ``Namespace(...)`` line describes the run, the last
``test_acc1 = x`` line gives its result. Each run's method is named as tllib's tables name it:

- a log of tllib's own script: by tllib's log layout ``logs/<method>/<Task>/`` (``cdan`` → CDAN,
  ``mcc`` → MCC, ``erm`` → ERM, ...; a folder name not in :data:`TLLIB_METHODS` is kept as written);
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
import ast
import glob
import hashlib
import math
import os
import re
import statistics
import sys
from collections import Counter, defaultdict
from typing import Callable, Dict, List, Optional, Tuple

from .logged_flags import (HISTORY_PREFIX, METHOD_PREFIX, RESUMED_PREFIX,   # not torch: reading logs never needs it
                           TLLIB_RESNETS, comparable, is_ila_term_flag, with_flags_added_later)

__all__ = ["Run", "LogError", "read_run", "collect", "collect_or_exit", "run_epochs", "seed_values", "seed_acc",
           "missing_folders", "recipe_difference", "RECIPE_FLAGS", "row_names", "task_labels",
           "format_table", "format_paired_table", "main", "TLLIB_METHODS", "ORIGIN"]

#: tllib's script (and log folder) names -> the method's name in tllib's tables.
TLLIB_METHODS = {
    "erm": "ERM", "source_only": "ERM", "dann": "DANN", "dan": "DAN", "jan": "JAN", "adda": "ADDA",
    "cdan": "CDAN", "mcd": "MCD", "afn": "AFN", "bsp": "BSP", "mdd": "MDD", "mcc": "MCC", "cc_loss": "CC-Loss",
    "fixmatch": "FixMatch", "self_ensemble": "Self-Ensemble",
}
# row order: tllib's tables', each method followed by its sampling control and its ILA-DA version
_ORDER = ["ERM", "DANN", "DAN", "JAN", "ADDA", "CDAN", "MCD", "AFN", "BSP", "MDD", "MCC", "CC-Loss", "FixMatch",
          "Self-Ensemble"]
# this package's logs without a ``method:`` line: the flag only a method's script has -> that method
# (first match wins)
_OUR_SIGNATURES = (("trade_off_bsp", "BSP"), ("margin", "MDD"), ("randomized", "CDAN"))

#: the methods whose whole adaptation term --trade-off weighs (BSP's penalty has its own weight): with it and
#: ILA-DA's at 0 the run is ERM. A method of one's own keeps its name.
_TRADE_OFF_IS_THE_TERM = {"DANN", "CDAN", "MDD", "MCC"}

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
# flags that never separate rows: seeds are averaged, tasks are columns; a resumed run, and one that kept its
# images decoded in memory, trained as the run without
IGNORED = {"seed", "log", "phase", "workers", "print_freq", "root", "per_class_eval", "source", "target", "resume",
           "cache_images"}


def _start_weights(args: dict, ours: bool) -> Optional[str]:
    """The ImageNet weights a ResNet run started from (None when none were loaded). Logs without
    ``weights``: tllib's loaded V1; this package's older ones loaded torchvision's default."""
    if args.get("scratch") or args.get("pretrained") or args.get("arch") not in TLLIB_RESNETS:
        return None
    return args.get("weights", "default" if ours else "v1")


class Run:
    def __init__(self, args: dict, acc: float, path: str, logged_method: Optional[str] = None,
                 flags_over_the_run: Optional[str] = None, resumed: bool = False):
        self.acc, self.path, self.logged_method, self.resumed = acc, path, logged_method, resumed
        # a resume with other values: the values each changed flag had (the Namespace gives the last ones)
        self.flags_over_the_run = flags_over_the_run
        self.ours = "ila_trade_off" in args
        self.args = {**args, "weights": _start_weights(args, self.ours)}

    @property
    def folder(self) -> str:
        """``<method>`` of tllib's ``logs/<method>/<Task>/train-*.txt``."""
        return os.path.basename(os.path.dirname(os.path.dirname(os.path.abspath(self.path))))

    @property
    def base(self) -> str:
        if not self.ours:
            return TLLIB_METHODS.get(self.folder.lower(), self.folder)
        if self.logged_method is not None:
            named = TLLIB_METHODS.get(self.logged_method.lower(), self.logged_method.upper())
        else:
            named = next((method for flag, method in _OUR_SIGNATURES if flag in self.args), "DANN")
        if self.args.get("trade_off", 1.0) == 0 and self.args.get("ila_trade_off", 0) == 0 and \
                (named in _TRADE_OFF_IS_THE_TERM or (named == "BSP" and not self.args.get("trade_off_bsp"))):
            return "ERM"
        return named

    @property
    def variant(self) -> int:
        """0: the method itself; 1: its sampling control; 2: with ILA-DA."""
        if self.ours and self.args.get("ila_trade_off", 0) > 0:
            return 2
        return 1 if self.args.get("balanced_source") else 0

    @property
    def method(self) -> str:
        return ("{}", "{} (balanced source)", "ILA-DA+{}")[self.variant].format(self.base)

    @property
    def task(self) -> str:
        def short(domains):
            return "+".join(SHORT_DOMAINS.get(d, d[0].upper() if len(d) > 2 else d) for d in domains)
        return f"{short(self.args['source'])}→{short(self.args['target'])}"

    @property
    def task_key(self) -> tuple:
        """What the task is, in full: the dataset and the domains as given."""
        return (self.args.get("data"), tuple(self.args["source"]), tuple(self.args["target"]))


# domain names whose first letter would collide with another domain's in one table
SHORT_DOMAINS = {"mnistm": "MM", "syn": "Syn", "street": "Street", "scan": "Scan"}


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


def parse_namespace(line: str) -> dict:
    """``Namespace(a=1, b='x')`` → dict, with literals only (no eval)."""
    call = ast.parse(line.strip(), mode="eval").body
    if not isinstance(call, ast.Call):
        raise ValueError("not a Namespace line")
    return {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}


class LogError(ValueError):
    """A finished run's log that cannot be read right (damaged or cut short): named, never left out unseen."""


#: the result line as both tllib's scripts and ours print it ("{:3.1f}"), whole: a line cut short is damage
_RESULT = re.compile(r"test_acc1 = +([0-9]+\.[0-9])\n")


def read_run(path: str) -> Optional[Run]:
    """One training log → a Run, or None when it holds no finished run; :class:`LogError` when its
    ``test_acc1`` line or, in a finished run's log, its ``Namespace`` line is damaged or missing."""
    args, acc, method, flags_over_the_run, damaged, resumed = None, None, None, None, None, False
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if args is None and damaged is None and line.startswith("Namespace("):
                try:
                    args = parse_namespace(line)
                except (ValueError, SyntaxError):
                    damaged = "its Namespace(...) line cannot be read"
            found = re.match(re.escape(METHOD_PREFIX) + r"(\S+)$", line)
            if found and method is None:
                method = found.group(1)
            if line.startswith(HISTORY_PREFIX):
                flags_over_the_run = line[len(HISTORY_PREFIX):].strip()
            resumed = resumed or line.startswith(RESUMED_PREFIX)
            if line.startswith("test_acc1 ="):
                whole = _RESULT.fullmatch(line)
                if whole is None:
                    raise LogError(f"{path}: its line {line.strip()!r} is damaged or cut short; run the task again "
                                   f"or move the log away")
                acc = float(whole.group(1))
    if acc is not None and args is None and damaged is None:
        damaged = "it has no Namespace(...) line"
    if damaged and acc is not None:
        raise LogError(f"{path}: {damaged}, so its run ({acc}) has no task or flags; run the task again or move "
                       f"the log away")
    if args is None or acc is None or args.get("phase", "train") != "train" or \
            not {"source", "target"} <= set(args):      # not an adaptation run's log (no task to file it under)
        return None
    if args.get("ila_trade_off", 0) > 0:         # this package's scripts (not tllib's), ILA-DA on
        # a log written before a flag existed ran with it off: an ablation of that flag then gets its own
        # row instead of being averaged with the older runs. Those are flags of ILA's term: with it off they
        # change nothing, and a baseline's log without them joins the baselines' row that has them
        args = with_flags_added_later(args)
    return Run(args, acc, path, method, flags_over_the_run, resumed)


def run_epochs(path: str, read_log: Callable[[str], Tuple[bool, bool, dict]]) -> dict:
    """{epoch: value} over the run whose newest log is ``path``, where ``read_log(log)`` gives one log's
    (whether it resumed a run, whether it trained or evaluated at all, {epoch: value}). A resumed run's log
    starts at the epoch it resumed from: the epochs before come from the earlier logs of its folder, back to
    the run's fresh start (an earlier fresh start is another run's; a log that stopped before training, a
    refused ``--resume`` say, starts nothing)."""
    logs = sorted(glob.glob(os.path.join(glob.escape(os.path.dirname(path)), "train-*.txt")))
    by_epoch: dict = {}
    for log in logs[:logs.index(path) + 1] if path in logs else [path]:
        resumed, ran, found = read_log(log)
        if ran and not resumed:
            by_epoch = {}
        by_epoch.update(found)
    return by_epoch


def missing_folders(log_dirs: List[str]) -> str:
    """The message for the log folders (or files) named that do not exist, or '' when all do: a mistyped
    folder must not just leave its runs out of a table."""
    missing = [d for d in log_dirs if not os.path.exists(d)]
    return f"no such log directory: {', '.join(missing)}" if missing else ""


def collect(log_dirs: List[str]) -> List[Run]:
    files: Dict[str, str] = {}     # the file itself -> the path as found: a folder named twice counts once
    for d in log_dirs:
        found = [d] if os.path.isfile(d) else glob.glob(os.path.join(glob.escape(d), "**", "train-*.txt"),
                                                        recursive=True)
        for path in found:
            if os.path.isfile(path):   # not a link to nowhere, nor a folder of that name
                files.setdefault(os.path.realpath(path), path)
    # a log dir re-run keeps several train-*.txt, named by their start: of one seed and one recipe the newest
    # finished log is the run (a resume or a restart); runs of other seeds in one folder (tllib's layout,
    # looped over seeds) or of another method, task or flags (a baseline logged into ILA-DA's folder) are
    # runs of their own
    read = [(real, run) for real, run in ((real, read_run(files[real])) for real in sorted(files)) if run is not None]
    _one_spelling_per_domain([run for _, run in read])
    latest: Dict[tuple, List[Tuple[str, Run]]] = defaultdict(list)
    for real, run in read:
        kept = latest[(os.path.dirname(real), comparable(run.args.get("seed")))]
        kept[:] = [(path, earlier) for path, earlier in kept if not _same_recipe(earlier, run)] + [(real, run)]
    # then a log copied into another folder is the same run (its bytes are the same): counted once, whatever
    # order the folders sort in
    runs, copies = [], set()
    for real, run in sorted((found for kept in latest.values() for found in kept), key=lambda found: found[0]):
        with open(real, "rb") as f:
            content = hashlib.sha256(f.read()).digest()
        if content not in copies:
            copies.add(content)
            runs.append(run)
    return runs


def _one_spelling_per_domain(runs: List[Run]):
    """Domain names of one dataset that differ only in case are one domain (``-s a`` runs Office-31's ``A``;
    older logs keep the name as typed): each run's ``source`` and ``target`` take the spelling most of the
    runs use (of two as common, the first in sorted order), so that a task is one column."""
    counts = Counter((run.args.get("data"), name) for run in runs for side in ("source", "target")
                     for name in run.args[side])
    spelling: Dict[tuple, str] = {}
    for (data, name), _ in sorted(counts.items(), key=lambda item: (-item[1], item[0][1])):
        spelling.setdefault((data, name.lower()), name)
    for run in runs:
        for side in ("source", "target"):
            run.args[side] = [spelling[(run.args.get("data"), name.lower())] for name in run.args[side]]


def _same_recipe(earlier: Run, later: Run) -> bool:
    """Whether a later log of one folder and seed ran the earlier one's recipe: the same method and task, and,
    unless the later one resumed the folder's run (whose flags a resume may change), the same value of every
    flag both logs have that would split a table's rows."""
    if earlier.method != later.method or earlier.task_key != later.task_key:
        return False
    shared = (set(earlier.args) & set(later.args)) - IGNORED
    return later.resumed or all(comparable(earlier.args[k]) == comparable(later.args[k]) for k in shared)


#: the flags of a training recipe that no baseline, control or ablation here changes: the data and how it is
#: read, the network and its starting weights, and the optimiser's budget. Runs compared seed by seed must
#: agree on them (a source-only warm-up, --pretrain-iters, is a control of its own and may differ)
RECIPE_FLAGS = ("data", "resize_size", "train_resizing", "val_resizing", "norm_mean", "norm_std", "no_hflip",
                "arch", "no_pool", "bottleneck_dim", "weights", "epochs", "iters_per_epoch", "batch_size", "lr",
                "lr_gamma", "lr_decay", "momentum", "weight_decay")


def recipe_difference(a: Run, b: Run) -> str:
    """"" when runs ``a`` and ``b`` agree on :data:`RECIPE_FLAGS` (where both logged them) and on the values
    a resume changed over the run, else a sentence naming what differs, with both runs' folders."""
    differ = [f"{k} {a.args[k]!r} and {b.args[k]!r}" for k in RECIPE_FLAGS if k in a.args and k in b.args
              and comparable(a.args[k]) != comparable(b.args[k])]
    if a.flags_over_the_run != b.flags_over_the_run:
        differ.append(f"{HISTORY_PREFIX}{a.flags_over_the_run or 'none'} and {b.flags_over_the_run or 'none'}")
    if not differ:
        return ""
    return (f"{os.path.dirname(a.path)} and {os.path.dirname(b.path)} ran other recipes ({', '.join(differ)}): "
            f"their accuracies do not pair; give runs of one recipe and budget")


def collect_or_exit(parser: argparse.ArgumentParser, log_dirs: List[str]) -> List[Run]:
    """:func:`collect` for a command line: a damaged log ends it through ``parser.error`` (exit 2)."""
    try:
        return collect(log_dirs)
    except LogError as e:
        parser.error(str(e))


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
