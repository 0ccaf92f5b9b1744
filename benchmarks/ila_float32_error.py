"""How far ILALoss on float32 features lands from the same loss computed in float64.

    python benchmarks/ila_float32_error.py [--n 124] [--dim 256] [--seeds 5]

For each feature distribution, n source + n target float32 features (n / 31 per class) go through
``ILALoss(fused=False)`` (the composable path, float32 arithmetic) and ``ILALoss()`` (the fused path); the
reference is the composable path on the same values in float64 (tested against the plain-loop oracle to
1e-9). Printed: the largest error over the seeds of φ (the composable path's similarity; the fused path's
φ is the float64 one), the loss (relative), the gradients (relative to the largest entry), Γ (relative), and
in how many seeds the pseudo-labels and the kept set differ from the reference.

Distributions: "spread" — class centres and samples N(0, 1) per dimension (the speed benchmark's batch);
"relu" — ReLU features around a common offset (as after a bottleneck's ReLU); "tight" — far-apart classes
whose samples lie 0.01 apart per dimension; "tight+offset" — the same around a common offset of 10.
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _argtypes import at_least  # noqa: E402
from ila_tllib import ILALoss, InverseEuclideanSimilarity  # noqa: E402

DISTRIBUTIONS = {   # name -> (centre scale, common offset, within-class spread, ReLU)
    "spread": (1.0, 0.0, 1.0, False),
    "relu": (0.5, 2.0, 0.3, True),
    "tight": (3.0, 0.0, 0.01, False),
    "tight+offset": (1.0, 10.0, 0.05, False),
}


def features(name, n, d, seed, classes=31):
    scale, offset, spread, relu = DISTRIBUTIONS[name]
    g = torch.Generator().manual_seed(seed)
    centres = offset + scale * torch.randn(classes, d, generator=g)
    y_s = torch.arange(classes).repeat(n // classes)
    y_t = torch.randint(0, classes, (len(y_s),), generator=g)
    f_s = centres[y_s] + spread * torch.randn(len(y_s), d, generator=g)
    f_t = centres[y_t] + spread * torch.randn(len(y_s), d, generator=g)
    return (f_s.relu(), y_s, f_t.relu()) if relu else (f_s, y_s, f_t)


def evaluate(f_s, y_s, f_t, dtype, fused):
    f_s, f_t = f_s.to(dtype).clone().requires_grad_(), f_t.to(dtype).clone().requires_grad_()
    ila = ILALoss(k=5, mu=0.67, fused=fused)
    loss = ila(f_s, y_s, f_t, num_classes=31)
    loss.backward()
    return dict(loss=loss.double(), grad_s=f_s.grad.double(), grad_t=f_t.grad.double(), ratio=ila.ratio.double(),
                labels=ila.pseudo_labels, kept=ila.kept)


def errors(ours, ref):
    rel = lambda a, b: ((a - b).abs() / b.abs()).max().item()                   # noqa: E731
    return dict(loss=rel(ours["loss"], ref["loss"]), ratio=rel(ours["ratio"], ref["ratio"]),
                grad=max(((ours[g] - ref[g]).abs().max() / ref[g].abs().max()).item() for g in ("grad_s", "grad_t")),
                labels=int(not torch.equal(ours["labels"], ref["labels"])),
                kept=int(not torch.equal(ours["kept"], ref["kept"])))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=at_least(31), default=124, help="sources (and targets); a multiple of 31")
    parser.add_argument("--dim", type=at_least(1), default=256, help="feature dimension (default: 256)")
    parser.add_argument("--seeds", type=at_least(1), default=5, help="how many seeds, from 0 (default: 5)")
    args = parser.parse_args()
    if args.n % 31:
        parser.error(f"--n {args.n} must be a multiple of 31 (the batches it draws hold 31 classes' rows)")
    print(f"n = {args.n} + {args.n}, d = {args.dim}, k = 5, mu = 0.67, worst of {args.seeds} seeds; reference: "
          f"the same features in float64\n")
    print("| features | path (float32 in) | max abs error of φ | loss rel. error | gradient error "
          "| Γ rel. error | seeds with other pseudo-labels | seeds with another kept set |")
    print("|---|---|---|---|---|---|---|---|")
    phi = InverseEuclideanSimilarity()
    for name in DISTRIBUTIONS:
        worst = {path: dict(loss=0.0, ratio=0.0, grad=0.0, labels=0, kept=0, phi=0.0) for path in ("composable", "fused")}
        for seed in range(args.seeds):
            f_s, y_s, f_t = features(name, args.n, args.dim, seed)
            ref = evaluate(f_s, y_s, f_t, torch.float64, fused=False)
            phi_error = (phi(f_s, f_t).double() - phi(f_s.double(), f_t.double())).abs().max().item()
            for path in worst:
                found = errors(evaluate(f_s, y_s, f_t, torch.float32, fused=path == "fused"), ref)
                found["phi"] = phi_error if path == "composable" else 0.0
                for key, value in found.items():
                    worst[path][key] = max(worst[path][key], value) if key in ("loss", "ratio", "grad", "phi") \
                        else worst[path][key] + value
        for path, w in worst.items():
            phi_text = f"{w['phi']:.1e}" if path == "composable" else "(float64)"
            print(f"| {name} | {path} | {phi_text} | {w['loss']:.1e} | {w['grad']:.1e} | {w['ratio']:.1e} "
                  f"| {w['labels']} | {w['kept']} |")


if __name__ == "__main__":
    main()
