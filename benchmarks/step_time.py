"""Milliseconds per training iteration of CDAN and ILA-DA+CDAN, same process, same batch.

    python benchmarks/step_time.py                     # LeNet, 28x28 grey digits, CPU
    python benchmarks/step_time.py --arch resnet50     # ResNet-50, 224 px synthetic images (GPU when present)

One iteration = forward of source + target, CE + CDAN (+ ILA), backward, SGD step — the engine's own
``Trainer.losses``. The two variants alternate so that drift in machine load hits both alike.
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
from ila_tllib.engine import Batch, BatchPlan, Trainer, get_parser  # noqa: E402
from ila_tllib.engine.ila_term import ILATerm, build_ila_loss  # noqa: E402
from ila_tllib.engine.run import build_classifier  # noqa: E402
from ila_tllib.models import DIGIT_ARCHS  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="lenet")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--samples-per-class", type=int, default=6)
    parser.add_argument("-b", "--batch-size", type=int, default=64, help="target batch")
    parser.add_argument("--iters", type=int, default=60)
    parser.add_argument("--threads", type=int, default=None)
    opts = parser.parse_args()
    if opts.threads:
        torch.set_num_threads(opts.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    digits = opts.arch in DIGIT_ARCHS
    flags = ["root", "-s", "s", "-t", "t", "-a", opts.arch, "--scratch", "--k", "3", "--mu", "0.75",
             "-b", str(opts.batch_size), "--samples-per-class", str(opts.samples_per_class)] + (["--no-pool"] if digits else [])
    method = CDAN()
    args = get_parser(method).parse_args(flags)
    torch.manual_seed(0)
    classifier = build_classifier(args, method, opts.classes, device)
    plan = BatchPlan.from_args(args, opts.classes)
    transfer = method.build_transfer(args, classifier, opts.classes, plan.source_size, args.batch_size).to(device)
    trainers = {with_ila: Trainer(args, method, classifier, transfer, plan,
                                  ILATerm(build_ila_loss(args), args.ila_trade_off) if with_ila else None,
                                  opts.classes, device) for with_ila in (False, True)}
    optimizer = torch.optim.SGD(method.param_groups(classifier, transfer), lr=0.01, momentum=0.9)
    shape = (1, 28, 28) if opts.arch == "lenet" else (3, 32, 32) if opts.arch == "dtn" else (3, 224, 224)
    n_s = opts.classes * opts.samples_per_class
    x = torch.randn(n_s + opts.batch_size, *shape, device=device)
    labels_s = torch.arange(opts.classes, device=device).repeat(opts.samples_per_class)
    labels_t = torch.zeros(opts.batch_size, dtype=torch.long, device=device)

    def step(with_ila):
        batch = Batch(x, labels_s, labels_t, labels_s if with_ila else None, slice(0, n_s),
                      slice(n_s, n_s + opts.batch_size), slice(0, n_s) if with_ila else None)
        out = trainers[with_ila].losses(batch, it=0)
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    times = {False: [], True: []}
    for i in range(opts.iters + 5):
        for with_ila in (False, True):
            sync()
            t0 = time.perf_counter()
            step(with_ila)
            sync()
            if i >= 5:  # warm-up
                times[with_ila].append((time.perf_counter() - t0) * 1e3)
    base, ours = statistics.median(times[False]), statistics.median(times[True])
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"{opts.arch}, source {n_s} + target {opts.batch_size} images {shape}, {name}, median of {opts.iters}")
    print("| method | ms / iteration |\n|---|---|")
    print(f"| CDAN | {base:.1f} |\n| ILA-DA+CDAN | {ours:.1f} |")
    print(f"ILA-DA adds {100 * (ours - base) / base:+.1f}%")


if __name__ == "__main__":
    main()
