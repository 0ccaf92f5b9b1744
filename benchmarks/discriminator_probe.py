"""Does the domain discriminator know which targets' kNN pseudo-labels are right? An offline probe.

    python benchmarks/discriminator_probe.py RUN [RUN ...] [--data-root DIR] [--k 3 --mu 0.75] [--batches 100]

A RUN is a finished run folder of ``ila_dann.py`` or ``ila_cdan.py`` (``train-*.txt``, ``checkpoints/latest.pth``
and ``checkpoints/resume.pth``, which holds the discriminator). The probe rebuilds the network and the
discriminator from the log's flags and their weights after the last epoch, in evaluation mode, and draws
``--batches`` batches as ILA sees them (as ``knn_vote_probe.py`` does). Each target gets the discriminator's
source-likeness, needing no target label: its output on the target's features (DANN), or on the map of the
features and the classifier's softmax (CDAN), 1 = a source. Per run it prints, with the run's similarity:

- how often the kNN pseudo-label is right (%) over the targets the ratio test keeps (Γ, ILA's filter) and
  over the same number kept by source-likeness instead;
- the AUC with which Γ and source-likeness rank right pseudo-labels above wrong ones (0.5: no better than
  chance);
- the mean source-likeness of the targets, a reading of the whole shift.

Target labels are read here to score the pseudo-labels only.
"""
import argparse
import contextlib
import io
import os
import statistics
import sys
from collections import defaultdict

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from _argtypes import at_least, fraction  # noqa: E402
from knn_vote_probe import ProbeError, _features, ila_batches, load_finished_run  # noqa: E402
from ila_tllib.engine.ila_term import ratio_auc  # noqa: E402


def source_likeness(method_name, transfer, f_t, logits_t):
    """The discriminator's output on each target (1: a source), as its method feeds it."""
    with torch.no_grad():
        if method_name == "CDAN":
            return transfer.domain_discriminator(transfer.map(f_t, logits_t.softmax(dim=1))).flatten()
        return transfer.domain_discriminator(f_t).flatten()


def load_discriminator(run_dir, run, method, classifier, flags, source, test, data_root=None):
    """The run's adversarial loss module with its weights after the last epoch, in evaluation mode."""
    path = os.path.join(run_dir, "checkpoints", "resume.pth")
    if not os.path.isfile(path):
        raise ProbeError(f"{run_dir} holds no checkpoints/resume.pth (the discriminator's weights)")
    args = argparse.Namespace(**{**flags, "root": data_root or flags["root"]})
    num_classes = classifier.num_classes
    with contextlib.redirect_stdout(io.StringIO()):
        transfer = method.build_transfer(args, classifier, num_classes, len(source), len(test))
    from ila_tllib.engine.checkpoint import load_file
    from ila_tllib.engine.errors import UsageError
    try:
        state = load_file(path, run_dir, "give the folder of a finished run of the scripts (its --log)",
                          weights_only=False)
        transfer.load_state_dict(state["modules"]["transfer"])
    except UsageError as e:
        raise ProbeError(str(e)) from None
    except (KeyError, TypeError, RuntimeError) as e:    # another state, or another run's discriminator
        raise ProbeError(f"{path} holds no discriminator of this run ({type(e).__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else ''}); give the folder of a finished run") from None
    return transfer.eval()


def probe(run_dir, data_root, samples, batches, k, mu):
    run, method, classifier, flags, source, test = load_finished_run(run_dir, data_root)
    if run.base not in ("DANN", "CDAN"):
        raise ProbeError(f"{run_dir} is a {run.base} run; the probe reads DANN's and CDAN's discriminators")
    transfer = load_discriminator(run_dir, run, method, classifier, flags, source, test, data_root)
    generator = torch.Generator().manual_seed(0)
    f_s, y_s, _ = _features(method, classifier, source, samples, generator)
    f_t, y_t, logits_t = _features(method, classifier, test, samples, generator)
    likeness = source_likeness(run.base, transfer, f_t, logits_t)
    kept_by_ratio, kept_by_likeness, ratios, likenesses, rights = [], [], [], [], []
    for ila, _, cols in ila_batches(f_s, y_s, f_t, flags.get("similarity", "inverse_euclidean"), k, mu,
                                    max(1, flags.get("samples_per_class", 4)), flags["batch_size"], batches,
                                    torch.Generator().manual_seed(1)):
        right, n_kept = ila.pseudo_labels == y_t[cols], int(ila.kept.sum())
        if n_kept == 0:
            continue
        kept_by_ratio.append(right[ila.kept].float().mean().item())
        kept_by_likeness.append(right[likeness[cols].topk(n_kept).indices].float().mean().item())
        ratios.append(ila.ratio)
        likenesses.append(likeness[cols])
        rights.append(right)
    right = torch.cat(rights)
    return run, {"kept Γ %": 100 * statistics.mean(kept_by_ratio),
                 "kept likeness %": 100 * statistics.mean(kept_by_likeness),
                 "AUC Γ": ratio_auc(torch.cat(ratios), right), "AUC likeness": ratio_auc(torch.cat(likenesses), right),
                 "mean likeness": likeness.mean().item(),
                 "classifier %": 100 * (logits_t.argmax(1) == y_t).float().mean().item()}


COLUMNS = {"classifier %": "{:.1f}", "kept Γ %": "{:.1f}", "kept likeness %": "{:.1f}", "AUC Γ": "{:.2f}",
           "AUC likeness": "{:.2f}", "mean likeness": "{:.2f}"}


def cell(value, fmt):
    """A table cell; "–" where there is nothing to show (an AUC needs right and wrong pseudo-labels both)."""
    return "–" if value is None else fmt.format(value)


def mean_of(values):
    values = [v for v in values if v is not None]
    return statistics.mean(values) if values else None


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", metavar="RUN")
    parser.add_argument("--data-root", default=None, help="the data the runs read, if it moved since")
    parser.add_argument("--samples", type=at_least(2), default=2000,
                        help="source and target images read (default: 2000)")
    parser.add_argument("--batches", type=at_least(1), default=100, help="ILA batches drawn (default: 100)")
    parser.add_argument("--k", type=at_least(1), default=3, help="the kNN vote's k (default: 3, the paper's digits)")
    parser.add_argument("--mu", type=fraction, default=0.75,
                        help="the share of targets kept (default: 0.75, the paper's digits)")
    args = parser.parse_args()
    if args.k >= args.samples:
        parser.error(f"--k {args.k} needs more than {args.k} --samples (got {args.samples})")
    by_task = defaultdict(list)
    print("| method | task | seed | " + " | ".join(COLUMNS) + " |")
    print("|---|---|---|" + "---|" * len(COLUMNS))
    for run_dir in args.runs:
        try:
            run, result = probe(run_dir, args.data_root, args.samples, args.batches, args.k, args.mu)
        except ProbeError as e:
            parser.error(str(e))
        by_task[(run.method, run.task)].append(result)     # a baseline and ILA-DA on it: two rows
        print(f"| {run.method} | {run.task} | {run.args.get('seed')} | "
              + " | ".join(cell(result[c], fmt) for c, fmt in COLUMNS.items()) + " |")
    print()
    print("| method | task | runs | " + " | ".join(COLUMNS) + " |")
    print("|---|---|---|" + "---|" * len(COLUMNS))
    for (method, task), results in sorted(by_task.items()):
        print(f"| {method} | {task} | {len(results)} | "
              + " | ".join(cell(mean_of(r[c] for r in results), fmt) for c, fmt in COLUMNS.items()) + " |")


if __name__ == "__main__":
    main()
