"""Forward + backward time of ILALoss against the tests' loop oracle and a row-wise autograd loop.

    python benchmarks/ila_loss_speed.py [--sizes 32 124 512 2048] [--repeat 100]
    python benchmarks/ila_loss_speed.py --memory [1024 2048 4096 8192]

n counts source + target samples (half each); d = 256; the source batch is class-balanced.
Prints one markdown table per device (CPU, and CUDA when present). Two references, both forward +
backward, both checked to agree with ILALoss before they are timed:

* "oracle": the tests' plain-Python loop oracle (tests/ila_oracle.py, lists of floats): Eq. 4-7
  forward and their analytic gradient, loops over samples and feature dimensions (n <= --oracle-max);
* "row-wise": Eq. 4-7 with a Python loop over targets and sources where each step is a row-wise
  tensor op and autograd gives the backward, a much stronger baseline than the oracle.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

import torch

from ila_tllib import ILALoss
from ila_tllib.affinity import kept_count

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))
from ila_oracle import ila_oracle_gradient  # noqa: E402


def loop_ila_loss(f_s, y_s, f_t, k, mu, m):
    """Eq. 4-7 with a Python loop over targets and over sources (row-wise tensor ops, autograd intact)."""
    n_s, n_t = f_s.shape[0], f_t.shape[0]
    rows = [1.0 / (1.0 + (f_s - f_t[j]).norm(dim=1)) for j in range(n_t)]    # phi(f_j, every source)
    labels, gammas = [], []
    for j in range(n_t):
        s = rows[j].detach()
        votes = torch.bincount(y_s[s.topk(k).indices], minlength=int(y_s.max()) + 1)
        label = int(votes.argmax())
        like, unlike = s[y_s == label], s[y_s != label]
        gammas.append(float(like.topk(min(m, len(like))).values.sum() / unlike.topk(min(m, len(unlike))).values.sum()))
        labels.append(label)
    n_keep = kept_count(mu, n_t)
    kept = sorted(range(n_t), key=lambda j: -gammas[j])[:n_keep]
    sim = torch.stack([rows[j] for j in kept], dim=1)                        # (n_s, n_keep)
    kept_labels = torch.tensor([labels[j] for j in kept])
    losses = []
    for i in range(n_s):
        pos = kept_labels == y_s[i]
        if pos.any() and (~pos).any():
            losses.append(torch.logsumexp(sim[i], 0) - torch.logsumexp(sim[i][pos], 0))
    return torch.stack(losses).mean() if losses else sim.sum() * 0


def time_ms(fn, repeat, device):
    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()
    fn()
    sync()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def batch(n, d, device):
    n_s = n_t = n // 2
    n_classes = min(31, n_s // 2)
    m = n_s // n_classes
    y_s = torch.arange(n_classes, device=device).repeat(m)
    centers = torch.randn(n_classes, d, device=device)
    f_s = (centers[y_s] + torch.randn(len(y_s), d, device=device)).requires_grad_()
    f_t = (centers[torch.randint(0, n_classes, (n_t,), device=device)] + torch.randn(n_t, d, device=device)).requires_grad_()
    return f_s, y_s, f_t, m


def peak_rss_growth_mb(n, d):
    """Peak resident memory added by one forward + backward at size n, measured in a fresh process."""
    code = (f"import resource, sys, torch; sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r}); "
            f"from ila_loss_speed import batch; from ila_tllib import ILALoss; torch.manual_seed(0); "
            f"f_s, y_s, f_t, m = batch({n}, {d}, torch.device('cpu')); ila = ILALoss(k=5, mu=0.67); "
            f"before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss; ila(f_s, y_s, f_t).backward(); "
            f"print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)")
    return float(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 124, 512, 2048])
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=100)
    parser.add_argument("--loop-max", type=int, default=2048, help="largest n for which the row-wise loop is timed")
    parser.add_argument("--memory", type=int, nargs="*", default=None, metavar="N",
                        help="only print the peak memory one forward + backward adds, for these n "
                             "(default 1024 2048 4096 8192)")
    parser.add_argument("--oracle-max", type=int, default=512, help="largest n for which the loop oracle is timed")
    args = parser.parse_args()
    if args.memory is not None:
        sizes = args.memory or [1024, 2048, 4096, 8192]
        print(f"CPU, d = {args.dim}: peak resident memory added by one ILALoss forward + backward "
              f"(fresh process per n)\n\n| n (src+tgt) | MB | MB / (n_s n_t x 4 bytes) |\n|---|---|---|")
        for n in sizes:
            mb = peak_rss_growth_mb(n, args.dim)
            print(f"| {n} | {mb:.1f} | {mb * 2**20 / ((n // 2) ** 2 * 4):.1f} |")
        return
    torch.manual_seed(0)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, d = {args.dim}, k = 5, mu = 0.67, "
          f"median of {args.repeat}")
    for device in devices:
        print("\n| device | n (src+tgt) | classes x m | ILALoss fwd+bwd ms | loop oracle fwd+bwd ms | speed-up "
              "| row-wise loop fwd+bwd ms | speed-up |")
        print("|---|---|---|---|---|---|---|---|")
        for n in args.sizes:
            f_s, y_s, f_t, m = batch(n, args.dim, device)
            ila = ILALoss(k=5, mu=0.67)
            fast = time_ms(lambda: ila(f_s, y_s, f_t).backward(), args.repeat, device)
            if n <= args.oracle_max and device.type == "cpu":   # plain Python: CPU only
                lists = f_s.tolist(), y_s.tolist(), f_t.tolist()
                oracle = time_ms(lambda: ila_oracle_gradient(*lists, 5, 0.67, m), 3, device)
                ref_loss, ref_s, ref_t = ila_oracle_gradient(*lists, 5, 0.67, m)
                grads = torch.autograd.grad(ila(f_s, y_s, f_t), (f_s, f_t))
                assert abs(ref_loss - ila(f_s, y_s, f_t).item()) < 1e-4, n
                for ours, ref in zip(grads, (ref_s, ref_t)):
                    torch.testing.assert_close(ours.cpu(), torch.tensor(ref, dtype=ours.dtype), rtol=1e-3, atol=1e-6)
                oracle_text, oracle_speedup = f"{oracle:.0f}", f"{oracle / fast:.0f}x"
            else:
                oracle_text, oracle_speedup = "-", "-"
            if n <= args.loop_max:
                slow = time_ms(lambda: loop_ila_loss(f_s, y_s, f_t, 5, 0.67, m).backward(),
                               max(1, args.repeat // 10 if n > 512 else args.repeat // 2), device)
                ref = loop_ila_loss(f_s, y_s, f_t, 5, 0.67, m).item()
                assert abs(ref - ila(f_s, y_s, f_t).item()) < 1e-4, (ref, n)
                loop_text, speedup = f"{slow:.2f}", f"{slow / fast:.0f}x"
            else:
                loop_text, speedup = "-", "-"
            print(f"| {device.type} | {n} | {len(torch.unique(y_s))} x {m} | {fast:.3f} | {oracle_text} | {oracle_speedup} "
                  f"| {loop_text} | {speedup} |")


if __name__ == "__main__":
    main()
