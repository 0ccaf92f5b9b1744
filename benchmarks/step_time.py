"""Milliseconds per training iteration of CDAN and ILA-DA+CDAN, same process, same batch.

    python benchmarks/step_time.py                     # LeNet, 28x28 grey digits, CPU
    python benchmarks/step_time.py --arch resnet50     # ResNet-50, 224 px synthetic images (GPU when present)
    python benchmarks/step_time.py --arch resnet50 --amp --channels-last --fp32-baseline

One iteration = forward of source + target, CE + CDAN (+ ILA), backward, SGD step — the engine's own
``Trainer.losses``, with the modules prepared as the scripts prepare them (``--amp``, ``--channels-last``).
CDAN reads tllib's batches (-b source + -b target). ILA-DA+CDAN reads the batches its ``--ila-batch``
gives: ``extra`` (the default) adds a class-balanced source batch (classes × m) to the same forward
pass; ``shared`` makes the source batch itself classes × m; ``--samples-per-class 0`` has no balanced batch:
ILA reads tllib's random source rows, so no rows are added. ILA's term is the scripts' default one, its
spectral penalty, BatchNorm statistics, source bank and the moving average it mines on included.
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
from ila_cdan import CDAN  # noqa: E402
from ila_tllib.engine import BatchPlan, Trainer, get_parser  # noqa: E402
from ila_tllib.engine.flags import DEFAULT_MINING_EMA  # noqa: E402
from ila_tllib.engine.ila_term import build_ila_term  # noqa: E402
from ila_tllib.engine.precision import prepare_modules  # noqa: E402
from ila_tllib.engine.moving_average import MINING_AVERAGES  # noqa: E402
from ila_tllib.engine.run import build_classifier  # noqa: E402
from ila_tllib.models import DIGIT_ARCHS  # noqa: E402


EXTRA_ROWS = "CDAN + ILA's rows, no ILA term"


def build_trainers(opts, device, speed_flags):
    """CDAN's and ILA-DA+CDAN's trainers over one network (built with ``speed_flags``) and its optimiser."""
    digits = opts.arch in DIGIT_ARCHS
    flags = ["root", "-s", "s", "-t", "t", "-a", opts.arch, "--scratch", "--k", "3", "--mu", "0.75",
             "-b", str(opts.batch_size), "--ila-batch", opts.ila_batch, "--ila-mining-ema", str(opts.ila_mining_ema),
             "--ila-bn-statistics", opts.ila_bn_statistics] \
        + (["--ila-mining-average", opts.ila_mining_average] if opts.ila_mining_average else []) \
        + ([] if opts.samples_per_class is None else ["--samples-per-class", str(opts.samples_per_class)]) \
        + ([] if opts.ila_source_bank is None else ["--ila-source-bank", str(opts.ila_source_bank)]) \
        + (["--no-pool"] if digits else []) + speed_flags
    method = CDAN()
    args = get_parser(method).parse_args(flags)
    torch.manual_seed(0)
    classifier = build_classifier(args, method, opts.classes, device)
    plan = BatchPlan.from_args(args, opts.classes)
    transfer = method.build_transfer(args, classifier, opts.classes, plan.source_size, args.batch_size).to(device)
    prepare_modules(args, classifier, transfer, device)
    trainers = {with_ila: Trainer(args, method, classifier, transfer, plan,
                                  build_ila_term(args, opts.iters) if with_ila else None,
                                  opts.classes, device) for with_ila in (False, True)}
    optimizer = torch.optim.SGD(method.param_groups(classifier, transfer), lr=0.01, momentum=0.9)
    return trainers, optimizer, plan


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="lenet")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--samples-per-class", type=int, default=None,
                        help="the scripts' --samples-per-class (default: theirs, 0: tllib's random source rows)")
    parser.add_argument("--ila-source-bank", type=int, default=None,
                        help="the scripts' --ila-source-bank (default: theirs)")
    parser.add_argument("-b", "--batch-size", type=int, default=64, help="tllib's source and target batch")
    parser.add_argument("--ila-batch", choices=["extra", "shared"], default="extra", help="the scripts' --ila-batch")
    parser.add_argument("--ila-bn-statistics", choices=["tllib", "all"], default="tllib",
                        help="the scripts' --ila-bn-statistics (with --ila-batch extra: BatchNorm statistics from "
                             "tllib's rows, or from every row)")
    parser.add_argument("--ila-mining-ema", type=float, default=DEFAULT_MINING_EMA,
                        help="the scripts' --ila-mining-ema (0: ILA mines on the network itself)")
    parser.add_argument("--ila-mining-average", choices=list(MINING_AVERAGES), default=None,
                        help="the scripts' --ila-mining-average (what the moving average copies; default: theirs)")
    parser.add_argument("--iters", type=int, default=60)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--amp", action="store_true", help="the scripts' --amp (bfloat16 autocast for the networks)")
    parser.add_argument("--channels-last", action="store_true", help="the scripts' --channels-last")
    parser.add_argument("--split", action="store_true",
                        help="--ila-batch extra: also time CDAN with ILA's extra rows in its forward pass and no ILA "
                             "term, which splits ILA-DA's cost into the extra images and the term itself")
    parser.add_argument("--fp32-baseline", action="store_true",
                        help="also time CDAN without --amp/--channels-last, on its own copy of the networks")
    opts = parser.parse_args()
    if opts.threads:
        torch.set_num_threads(opts.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    speed_flags = (["--amp"] if opts.amp else []) + (["--channels-last"] if opts.channels_last else [])
    trainers, optimizer, plan = build_trainers(opts, device, speed_flags)
    variants = {"CDAN": (trainers[False], optimizer, False), "ILA-DA+CDAN": (trainers[True], optimizer, True)}
    if opts.split and plan.ila_source == "extra":
        variants[EXTRA_ROWS] = (trainers[False], optimizer, EXTRA_ROWS)
    if opts.fp32_baseline and speed_flags:
        baseline, baseline_optimizer, _ = build_trainers(opts, device, [])
        variants["CDAN (float32, NCHW)"] = (baseline[False], baseline_optimizer, False)
    shape = (1, 28, 28) if opts.arch == "lenet" else (3, 32, 32) if opts.arch == "dtn" else (3, 224, 224)
    b, n_b = opts.batch_size, plan.balanced_size
    x = torch.randn(2 * b + n_b, *shape, device=device)
    balanced = torch.arange(opts.classes, device=device).repeat(plan.samples_per_class)
    random_labels = torch.arange(b, device=device) % opts.classes
    labels_t = torch.zeros(b, dtype=torch.long, device=device)

    def batch_for(with_ila):
        if not with_ila:                       # tllib's CDAN: random source and target batches of -b
            return plan.assemble(x[:b], random_labels, x[b:2 * b], labels_t, False)
        if plan.ila_source == "extra":         # tllib's batches plus ILA's balanced one, one forward pass
            return plan.assemble(x[:b], random_labels, x[b:2 * b], labels_t, True, (x[2 * b:], balanced))
        n_s = plan.source_size                 # shared: the balanced batch; --samples-per-class 0: tllib's
        labels_s = balanced if plan.balanced_source else random_labels
        return plan.assemble(x[:n_s], labels_s, x[n_s:n_s + b], labels_t, True)

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
    average = trainers[True].ila.mining_network
    mining = average.describe() if average is not None else "ILA mines on: the network's own pass"
    ila_rows = (f"{plan.describe()}; spectral penalty {trainers[True].ila.spectral_penalty:g}, BatchNorm statistics "
                f"{plan.statistics_rule}; {mining}")
    layout = f"--ila-batch {opts.ila_batch}" if plan.samples_per_class else "--samples-per-class 0"
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
