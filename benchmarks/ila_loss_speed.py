"""Forward + backward time of ILALoss (fused and composable paths) against the tests' loop oracle and a
row-wise autograd loop, and the number of leaf aten calls one forward + backward makes.

    python benchmarks/ila_loss_speed.py [--sizes 32 124 248 512 2048] [--repeat 100]
    python benchmarks/ila_loss_speed.py --memory [1024 2048 4096 8192]
    python benchmarks/ila_loss_speed.py --compile [--sizes 124 248]

n counts source + target samples (half each); d = 256; the source batch is class-balanced. Prints one
markdown table per device (CPU, and CUDA when present). Columns:

* "fused": ``ILALoss`` as it runs by default with the paper's parts (one autograd node, ila_tllib/fused.py);
* "composable": ``ILALoss(fused=False)``, similarity → miner → metric loss;
* "oracle": the tests' plain-Python loop oracle (tests/ila_oracle.py, lists of floats): Eq. 4-7 forward and
  their analytic gradient, loops over samples and feature dimensions (CPU, n <= --oracle-max);
* "row-wise": Eq. 4-7 with a Python loop over targets and sources where each step is a row-wise tensor op
  and autograd gives the backward, a much stronger baseline than the oracle (n <= --loop-max).

Every reference is checked to agree with ILALoss before it is timed. The two ILALoss paths are timed
alternately, call by call, so that drift in machine load hits both alike. "leaf aten calls" counts the aten
operators ``torch.profiler`` records that call no other aten operator, for one forward + backward at
n = 62 + 62 (--count-n): the same count as before the fused path existed, views and allocations included.
``--compile`` adds ``torch.compile(ILALoss(...))`` (compiled once per size, not timed): its count covers the
aten calls left outside inductor's generated kernels, which the profiler does not list, so it is a lower
bound on its kernel launches.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _argtypes import at_least  # noqa: E402
from ila_tllib import ILALoss  # noqa: E402
from ila_tllib.affinity import kept_count  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))
from ila_oracle import ila_oracle_gradient  # noqa: E402

K, MU = 5, 0.67


def loop_ila_loss(f_s, y_s, f_t, k, mu, m):
    """Eq. 4-7 with a Python loop over targets and over sources (row-wise tensor ops, autograd intact)."""
    n_t = f_t.shape[0]
    rows = [1.0 / (1.0 + (f_s - f_t[j]).norm(dim=1)) for j in range(n_t)]    # phi(f_j, every source)
    labels, gammas = [], []
    for j in range(n_t):
        s = rows[j].detach()
        votes = torch.bincount(y_s[s.topk(k).indices], minlength=int(y_s.max()) + 1)
        label = int(votes.argmax())
        like, unlike = s[y_s == label], s[y_s != label]
        gammas.append(float(like.topk(min(m, len(like))).values.sum() / unlike.topk(min(m, len(unlike))).values.sum()))
        labels.append(label)
    kept = sorted(range(n_t), key=lambda j: -gammas[j])[:kept_count(mu, n_t)]
    sim = torch.stack([rows[j] for j in kept], dim=1)                        # (n_s, n_keep)
    kept_labels = torch.tensor([labels[j] for j in kept], device=y_s.device)
    losses = []
    for i in range(f_s.shape[0]):
        pos = kept_labels == y_s[i]
        if pos.any() and (~pos).any():
            losses.append(torch.logsumexp(sim[i], 0) - torch.logsumexp(sim[i][pos], 0))
    return torch.stack(losses).mean() if losses else sim.sum() * 0


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_ms(fns, repeat, device):
    """Median milliseconds of each function, calling them in turn ``repeat`` times after one warm-up each."""
    for fn in fns:
        fn()
    synchronize(device)
    times = [[] for _ in fns]
    for _ in range(repeat):
        for fn, bucket in zip(fns, times):
            t0 = time.perf_counter()
            fn()
            synchronize(device)
            bucket.append((time.perf_counter() - t0) * 1e3)
    return [statistics.median(t) for t in times]


#: leaf operators that only make views or allocate, or check conj/neg bits: no kernel runs for them
NO_KERNEL = {"aten::" + name for name in ("as_strided", "view", "_reshape_alias", "empty", "empty_strided",
                                          "resolve_conj", "resolve_neg", "detach", "promote_types")}


def leaf_aten_calls(fn):
    """(leaf, of which NO_KERNEL, all) aten operators the profiler records for one call of ``fn``, after a
    warm-up call."""
    fn()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    aten = [e for e in prof.events() if e.name.startswith("aten::")]
    leaves = [e for e in aten if not any(child.name.startswith("aten::") for child in e.cpu_children)]
    return len(leaves), sum(e.name in NO_KERNEL for e in leaves), len(aten)


def batch(n, d, device, seed=0):
    g = torch.Generator().manual_seed(seed)
    n_s = n_t = n // 2
    n_classes = min(31, n_s // 2)
    m = n_s // n_classes
    y_s = torch.arange(n_classes).repeat(m)
    centers = torch.randn(n_classes, d, generator=g)
    f_s = centers[y_s] + torch.randn(len(y_s), d, generator=g)
    f_t = centers[torch.randint(0, n_classes, (n_t,), generator=g)] + torch.randn(n_t, d, generator=g)
    return f_s.to(device).requires_grad_(), y_s.to(device), f_t.to(device).requires_grad_(), n_classes, m


def fwd_bwd(ila, f_s, y_s, f_t, num_classes):
    def step():
        f_s.grad = f_t.grad = None
        ila(f_s, y_s, f_t, num_classes=num_classes).backward()
    return step


def peak_rss_growth_mb(n, d):
    """Peak resident memory added by one forward + backward at size n, measured in a fresh process."""
    code = (f"import resource, sys, torch; sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r}); "
            f"from ila_loss_speed import batch; from ila_tllib import ILALoss; "
            f"f_s, y_s, f_t, c, m = batch({n}, {d}, torch.device('cpu')); ila = ILALoss(k={K}, mu={MU}); "
            f"before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss; ila(f_s, y_s, f_t).backward(); "
            f"print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)")
    return float(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout)


def check_agreement(f_s, y_s, f_t, num_classes, fused, composable):
    """The fused and composable paths agree (float32 rounding of different summation orders aside)."""
    values = []
    for ila in (fused, composable):
        loss = ila(f_s, y_s, f_t, num_classes=num_classes)
        values.append((loss.detach(),) + torch.autograd.grad(loss, (f_s, f_t)))
    for ours, theirs in zip(*values):
        torch.testing.assert_close(ours, theirs, rtol=1e-3, atol=1e-6)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=at_least(2 * K + 2), nargs="+", default=[32, 124, 248, 512, 2048],
                        help="sources + targets of the batches timed (default: 32 124 248 512 2048)")
    parser.add_argument("--dim", type=at_least(1), default=256, help="feature dimension (default: 256)")
    parser.add_argument("--repeat", type=at_least(1), default=100, help="calls timed per size; the median is "
                                                                         "printed (default: 100)")
    parser.add_argument("--count-n", type=at_least(2 * K + 2), default=124,
                        help="n at which leaf aten calls are counted")
    parser.add_argument("--loop-max", type=int, default=2048, help="largest n for which the row-wise loop is timed")
    parser.add_argument("--oracle-max", type=int, default=512, help="largest n for which the loop oracle is timed")
    parser.add_argument("--memory", type=at_least(2 * K + 2), nargs="*", default=None, metavar="N",
                        help="only print the peak memory one forward + backward adds, for these n "
                             "(default 1024 2048 4096 8192)")
    parser.add_argument("--compile", action="store_true",
                        help="also count and time the fused path under torch.compile")
    args = parser.parse_args()
    if args.memory is not None:
        sizes = args.memory or [1024, 2048, 4096, 8192]
        print(f"CPU, d = {args.dim}: peak resident memory added by one ILALoss forward + backward "
              f"(fresh process per n)\n\n| n (src+tgt) | MB | MB / (n_s n_t x 4 bytes) |\n|---|---|---|")
        for n in sizes:
            mb = peak_rss_growth_mb(n, args.dim)
            print(f"| {n} | {mb:.1f} | {mb * 2**20 / ((n // 2) ** 2 * 4):.1f} |")
        return
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, d = {args.dim}, k = {K}, mu = {MU}, "
          f"median of {args.repeat} (ILALoss), float32 features")
    for device in devices:
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
        f_s, y_s, f_t, c, _ = batch(args.count_n, args.dim, device)
        variants = {"fused": ILALoss(k=K, mu=MU), "composable": ILALoss(k=K, mu=MU, fused=False)}
        if args.compile:
            variants["compiled fused"] = torch.compile(ILALoss(k=K, mu=MU))
        counts = {label: leaf_aten_calls(fwd_bwd(ila, f_s, y_s, f_t, c)) for label, ila in variants.items()}
        print(f"\n{name}: leaf aten calls per forward + backward at n = {args.count_n // 2} + {args.count_n // 2}: "
              + ", ".join(f"{label} {leaf} (of which {views} views, allocations or conj/neg checks; {total} "
                          f"with composites)" for label, (leaf, views, total) in counts.items()))
        compiled_head = ("| compiled fused ms ", "---|") if args.compile else ("", "")
        print("\n| device | n (src+tgt) | classes x m | fused ms | composable ms | fused speed-up "
              + compiled_head[0] + "| loop oracle ms | vs fused | row-wise loop ms | vs fused |")
        print("|---|---|---|---|---|---|" + compiled_head[1] + "---|---|---|---|")
        for n in args.sizes:
            f_s, y_s, f_t, c, m = batch(n, args.dim, device)
            fused, composable = ILALoss(k=K, mu=MU), ILALoss(k=K, mu=MU, fused=False)
            check_agreement(f_s, y_s, f_t, c, fused, composable)
            steps = [fwd_bwd(fused, f_s, y_s, f_t, c), fwd_bwd(composable, f_s, y_s, f_t, c)]
            if args.compile:
                compiled = torch.compile(ILALoss(k=K, mu=MU))
                check_agreement(f_s, y_s, f_t, c, compiled, fused)    # compiles for this size, outside the timing
                steps.append(fwd_bwd(compiled, f_s, y_s, f_t, c))
            fast, plain, *rest = time_ms(steps, args.repeat, device)
            compiled_text = f"| {rest[0]:.3f} " if args.compile else ""
            oracle_text = oracle_speedup = loop_text = loop_speedup = "-"
            if n <= args.oracle_max and device.type == "cpu":   # plain Python: CPU only
                lists = f_s.tolist(), y_s.tolist(), f_t.tolist()
                ref_loss, ref_s, ref_t = ila_oracle_gradient(*lists, K, MU, m)
                grads = torch.autograd.grad(fused(f_s, y_s, f_t), (f_s, f_t))
                assert abs(ref_loss - fused(f_s, y_s, f_t).item()) < 1e-5, n
                for ours, ref in zip(grads, (ref_s, ref_t)):
                    torch.testing.assert_close(ours, torch.tensor(ref, dtype=ours.dtype), rtol=1e-5, atol=1e-8)
                oracle = time_ms([lambda: ila_oracle_gradient(*lists, K, MU, m)], 3, device)[0]
                oracle_text, oracle_speedup = f"{oracle:.0f}", f"{oracle / fast:.0f}x"
            if n <= args.loop_max:
                ref = loop_ila_loss(f_s, y_s, f_t, K, MU, m).item()
                assert abs(ref - fused(f_s, y_s, f_t).item()) < 1e-4, (ref, n)
                slow = time_ms([lambda: loop_ila_loss(f_s, y_s, f_t, K, MU, m).backward()],
                               max(1, args.repeat // 10 if n > 512 else args.repeat // 2), device)[0]
                loop_text, loop_speedup = f"{slow:.2f}", f"{slow / fast:.0f}x"
            print(f"| {device.type} | {n} | {c} x {m} | {fast:.3f} | {plain:.3f} | {plain / fast:.1f}x "
                  f"{compiled_text}| {oracle_text} | {oracle_speedup} | {loop_text} | {loop_speedup} |")


if __name__ == "__main__":
    main()
