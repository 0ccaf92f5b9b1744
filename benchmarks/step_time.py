"""Milliseconds per training iteration of CDAN and ILA-DA+CDAN, same process, same batch.

    python benchmarks/step_time.py                     # LeNet, 28x28 grey digits, CPU
    python benchmarks/step_time.py --arch resnet50     # ResNet-50, 224 px synthetic images (GPU when present)
    python benchmarks/step_time.py --arch resnet50 --amp --channels-last --fp32-baseline
    python benchmarks/step_time.py --ila-batch shared --samples-per-class 6   # any of the scripts' ILA flags

One iteration = forward of source + target, CE + CDAN (+ ILA), backward, SGD step — the engine's own
``Trainer.losses``, with the modules prepared as the scripts prepare them (``--amp``, ``--channels-last``).
CDAN reads tllib's batches (-b source + -b target). ILA-DA+CDAN reads the batches its ``--ila-batch``
gives: ``extra`` (the default) adds a class-balanced source batch (classes × m) to the same forward
pass; ``shared`` makes the source batch itself classes × m; ``--samples-per-class 0`` has no balanced batch:
ILA reads tllib's random source rows, so no rows are added. ILA's term is the scripts' default one, its
spectral penalty, BatchNorm statistics, source bank and the moving average it mines on included.
Flags this benchmark does not define go to the scripts' own parser, after the paper's digits k 3 and
μ 0.75, and set ILA-DA's layout as they set a run's (a mistyped one exits 2, as the scripts do).
The variants alternate, step by step, so that drift in machine load hits all alike. ``--fp32-baseline``
adds plain CDAN without ``--amp``/``--channels-last`` (its own copy of the networks) to the same run.
"""
import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples",
                                "domain_adaptation"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _argtypes import at_least  # noqa: E402
from ila_cdan import CDAN  # noqa: E402
from ila_tllib.engine import BatchPlan, Trainer, UsageError, check_args, get_parser  # noqa: E402
from ila_tllib.engine.ila_term import build_ila_term  # noqa: E402
from ila_tllib.engine.moving_average import describe_mining  # noqa: E402
from ila_tllib.engine.precision import prepare_modules  # noqa: E402
from ila_tllib.engine.run import build_classifier  # noqa: E402
from ila_tllib.models import digit_input_size, image_mode  # noqa: E402


EXTRA_ROWS = "CDAN + ILA's rows, no ILA term"


def build_trainers(opts, device, speed_flags, script_flags):
    """CDAN's and ILA-DA+CDAN's trainers over one network (built with ``speed_flags``) and its optimiser, with
    ILA-DA's flags as the scripts parse them (``script_flags`` after the paper's digits k and μ)."""
    size = digit_input_size(opts.arch)        # a digit backbone: its own image size and colours, no pool
    digits = [] if size is None else ["--no-pool", "--train-resizing", "res.", "--val-resizing", "res.",
                                      "--resize-size", str(size)] + \
        (["--norm-mean", "0.5", "--norm-std", "0.5"] if image_mode(opts.arch) == "L" else [])
    flags = ["root", "-s", "s", "-t", "t", "-a", opts.arch, "--scratch", "--k", "3", "--mu", "0.75",
             "-b", str(opts.batch_size)] + digits + speed_flags + script_flags
    method = CDAN()
    scripts = get_parser(method)
    scripts.usage = "%(prog)s [--arch ... --iters ..., see --help] [flags of the scripts, e.g. --ila-batch shared]"
    args = scripts.parse_args(flags)
    try:
        check_args(args, method)              # the scripts' own refusals: an unknown -a, --mu 2, ...
    except UsageError as e:
        scripts.error(str(e))
    torch.manual_seed(0)
    classifier = build_classifier(args, method, opts.classes, device)
    plan = BatchPlan.from_args(args, opts.classes)
    transfer = method.build_transfer(args, classifier, opts.classes, plan.source_size, args.batch_size).to(device)
    prepare_modules(args, classifier, transfer, device)
    trainers = {with_ila: Trainer(args, method, classifier, transfer, plan,
                                  build_ila_term(args, opts.iters) if with_ila else None,
                                  opts.classes, device) for with_ila in (False, True)}
    optimizer = torch.optim.SGD(method.param_groups(classifier, transfer), lr=0.01, momentum=0.9)
    return trainers, optimizer, plan, args


def main():
    # no abbreviations: a prefix of one of these options must not swallow a flag meant for the scripts
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                     allow_abbrev=False)
    parser.add_argument("--arch", default="lenet", help="the backbone, as the scripts' -a (default: lenet)")
    parser.add_argument("--classes", type=at_least(2), default=10, help="classes of the synthetic data (default: 10)")
    parser.add_argument("-b", "--batch-size", type=at_least(2), default=64, help="tllib's source and target batch")
    parser.add_argument("--iters", type=at_least(1), default=60, help="steps timed per method (default: 60)")
    parser.add_argument("--threads", type=at_least(1), default=None,
                        help="torch's threads (default: as OMP_NUM_THREADS leaves them)")
    parser.add_argument("--amp", action="store_true", help="the scripts' --amp (bfloat16 autocast for the networks)")
    parser.add_argument("--channels-last", action="store_true", help="the scripts' --channels-last")
    parser.add_argument("--split", action="store_true",
                        help="--ila-batch extra: also time CDAN with ILA's extra rows in its forward pass and no ILA "
                             "term, which splits ILA-DA's cost into the extra images and the term itself")
    parser.add_argument("--fp32-baseline", action="store_true",
                        help="also time CDAN without --amp/--channels-last, on its own copy of the networks")
    opts, script_flags = parser.parse_known_args()
    if opts.threads:
        torch.set_num_threads(opts.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    speed_flags = (["--amp"] if opts.amp else []) + (["--channels-last"] if opts.channels_last else [])
    trainers, optimizer, plan, args = build_trainers(opts, device, speed_flags, script_flags)
    variants = {"CDAN": (trainers[False], optimizer, False), "ILA-DA+CDAN": (trainers[True], optimizer, True)}
    if opts.split and plan.ila_batch == "extra":
        variants[EXTRA_ROWS] = (trainers[False], optimizer, EXTRA_ROWS)
    if opts.fp32_baseline and speed_flags:
        baseline, baseline_optimizer, _, _ = build_trainers(opts, device, [], script_flags)
        variants["CDAN (float32, NCHW)"] = (baseline[False], baseline_optimizer, False)
    size = digit_input_size(opts.arch) or 224
    shape = (1 if image_mode(opts.arch) == "L" else 3, size, size)
    plans = {False: BatchPlan.from_args(argparse.Namespace(**{**vars(args), "ila_trade_off": 0.0}), opts.classes),
             True: plan}               # tllib's CDAN, and ILA-DA+CDAN's layout as the engine draws it
    labels = {"balanced": lambda rows: torch.arange(plan.classes, device=device).repeat(rows // plan.classes),
              "random": lambda rows: torch.arange(rows, device=device) % opts.classes}

    def batch_for(with_ila):
        """The batch the engine's BatchPlan.draw makes of synthetic images, one iterator per part it reads."""
        iters = {name: iter([(torch.randn(rows, *shape, device=device), labels[sampling](rows))])
                 for name, (sampling, rows) in plans[with_ila].reads().items()}
        return plans[with_ila].draw(iters, device, with_ila)

    batches = {False: batch_for(False), True: batch_for(True)}
    batches[EXTRA_ROWS] = batches[True]._replace(ila=None)     # the rows go through the network, unused

    def step(trainer, optimizer, with_ila):
        out = trainer.losses(batches[with_ila], it=0)
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        trainer.after_step()                  # ILA-DA: the moving average it mines on follows the network

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    times = {name: [] for name in variants}
    for i in range(opts.iters + 5):
        for name, (trainer, optimizer_, with_ila) in variants.items():
            sync()
            t0 = time.perf_counter()
            step(trainer, optimizer_, with_ila)
            sync()
            if i >= 5:  # warm-up
                times[name].append((time.perf_counter() - t0) * 1e3)
    median = {name: statistics.median(t) for name, t in times.items()}
    where = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    mining = describe_mining(trainers[True].ila.mining_network)
    ila_rows = (f"{plan.describe()}; spectral penalty {trainers[True].ila.spectral_penalty:g}, BatchNorm statistics "
                f"{plan.statistics_rule}; {mining}")
    layout = f"--ila-batch {args.ila_batch}" if plan.samples_per_class else "--samples-per-class 0"
    b = opts.batch_size
    print(f"{opts.arch}, CDAN {b} + {b} images; ILA-DA+CDAN {ila_rows} ({layout}), {shape}, {where}, "
          f"{' '.join(speed_flags) or 'float32, NCHW'}, torch {torch.__version__}, median of {opts.iters}")
    print("| method | ms / iteration |\n|---|---|")
    for name, value in median.items():
        print(f"| {name} | {value:.1f} |")
    print(f"ILA-DA adds {100 * (median['ILA-DA+CDAN'] - median['CDAN']) / median['CDAN']:+.1f}%")
    if EXTRA_ROWS in median:
        print(f"of which the extra rows' forward and backward "
              f"{100 * (median[EXTRA_ROWS] - median['CDAN']) / median['CDAN']:+.1f}%, ILA's term "
              f"{100 * (median['ILA-DA+CDAN'] - median[EXTRA_ROWS]) / median['CDAN']:+.1f}%")
    if "CDAN (float32, NCHW)" in median:
        print(f"{' '.join(speed_flags)} makes the CDAN step {median['CDAN (float32, NCHW)'] / median['CDAN']:.2f}x "
              f"as fast as float32, NCHW")


if __name__ == "__main__":
    main()
