"""Training logs read back as runs (:class:`Run`): the flags a run had, its method as tllib's tables name
it, its task, its ``test_acc1``; of this package's scripts and of tllib's own. :func:`collect` gathers the
runs of some folders, one per seed and recipe (see :mod:`ila_tllib.tables`, which makes tables of them).
Reading logs never imports torch."""
import argparse
import ast
import glob
import hashlib
import os
import re
from collections import Counter, defaultdict
from typing import Callable, Dict, List, Optional, Tuple

from .logged_flags import (HISTORY_PREFIX, METHOD_PREFIX, RESUMED_PREFIX, TLLIB_RESNETS, comparable,
                           with_flags_added_later)

__all__ = ["Run", "LogError", "read_run", "parse_namespace", "collect", "collect_or_exit", "run_epochs",
           "missing_folders", "recipe_difference", "RECIPE_FLAGS", "IGNORED", "TLLIB_METHODS", "SHORT_DOMAINS"]

#: tllib's script (and log folder) names -> the method's name in tllib's tables.
TLLIB_METHODS = {
    "erm": "ERM", "source_only": "ERM", "dann": "DANN", "dan": "DAN", "jan": "JAN", "adda": "ADDA",
    "cdan": "CDAN", "mcd": "MCD", "afn": "AFN", "bsp": "BSP", "mdd": "MDD", "mcc": "MCC", "cc_loss": "CC-Loss",
    "fixmatch": "FixMatch", "self_ensemble": "Self-Ensemble",
}
# this package's logs without a ``method:`` line: the flag only a method's script has -> that method
# (first match wins)
_OUR_SIGNATURES = (("trade_off_bsp", "BSP"), ("margin", "MDD"), ("randomized", "CDAN"))

#: the methods whose whole adaptation term --trade-off weighs (BSP's penalty has its own weight): with it and
#: ILA-DA's at 0 the run is ERM. A method of one's own keeps its name.
_TRADE_OFF_IS_THE_TERM = {"DANN", "CDAN", "MDD", "MCC"}

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
