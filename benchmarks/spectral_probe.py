"""Run an example script and print, every N iterations, what the spectral penalty sees: the mean norm of the
source features, sigma_1^2 of their batch and its share of the batch's energy, the share of feature entries
above zero, the penalty (beta included), then sigma_1^2 of the target batch and its share.

    python benchmarks/spectral_probe.py --every 10 examples/domain_adaptation/ila_dann.py ROOT -s syn -t mnistm ...

The script's own output goes to stdout as usual; the probe's lines go to stderr and start with ``probe``.
"""
import argparse
import os
import runpy
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from ila_tllib.engine import ila_term  # noqa: E402


def top_direction(f: torch.Tensor):
    """sigma_1^2 of a feature batch and its share of the batch's energy (nan for an all-zero batch)."""
    energy = torch.linalg.svdvals(f) ** 2
    return energy[0].item(), (energy[0] / energy.sum()).item() if energy.sum() > 0 else float("nan")


def install(every: int):
    penalty = ila_term.ILATerm.feature_penalty
    calls = [0]

    def probed(self, f_s, f_t, it):
        out = penalty(self, f_s, f_t, it)
        if calls[0] % every == 0:
            f = f_s.detach()
            (top_s, share_s), (top_t, share_t) = top_direction(f), top_direction(f_t.detach())
            print(f"probe it {calls[0]} |f_s| {f.norm(dim=1).mean():.3f} sigma1^2 {top_s:.1f} share {share_s:.2f} "
                  f"above zero {(f > 0).float().mean():.3f} penalty {0.0 if out is None else out.item():.4f} "
                  f"target sigma1^2 {top_t:.1f} share {share_t:.2f}", file=sys.stderr, flush=True)
        calls[0] += 1
        return out

    ila_term.ILATerm.feature_penalty = probed


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--every", type=int, default=10, help="print every N iterations (default: 10)")
    parser.add_argument("script", help="an example script, e.g. examples/domain_adaptation/ila_dann.py")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="the script's arguments")
    args = parser.parse_args()
    if args.every < 1:
        parser.error(f"--every {args.every} must be at least 1")
    if not os.path.isfile(args.script):
        parser.error(f"{args.script} is not a file; give the path of an example script")
    install(args.every)
    sys.argv = [args.script] + args.args
    sys.path.insert(0, os.path.dirname(os.path.abspath(args.script)))   # the scripts import their utils.py
    runpy.run_path(args.script, run_name="__main__")


if __name__ == "__main__":
    main()
