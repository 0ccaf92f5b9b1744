"""How right ILA's kNN vote is on a finished run's features, with the Euclidean and the cosine similarity.

    python benchmarks/knn_vote_probe.py RUN [RUN ...] [--data-root DIR] [--batches 100] [--k K --mu MU]

A RUN is a run folder of the scripts (``train-*.txt`` and ``checkpoints/latest.pth``, the weights after the
last epoch). The probe rebuilds the network from the log's flags, loads those weights, and computes in
evaluation mode the bottleneck features of up to ``--samples`` source training images and target test
images. It then draws ``--batches`` batches as ILA sees them (``--samples-per-class`` sources of every
class, ``-b`` targets) and prints, per run: the classifier's target accuracy on those images, the mean
feature norm of each domain, and for each similarity the share of targets whose kNN pseudo-label is right,
over all targets and over the ones the ratio test keeps (the log's ``k`` and ``mu``, or ``--k`` and
``--mu``: a baseline's log holds the script's defaults, which ILA did not use). Target labels are
read here to score the vote only. With ``--label-free``, four readings that need no target label follow,
with the run's own similarity on the kept targets: how often the kNN pseudo-label is the classifier's
prediction, the mean similarity ratio Γ, the classifier's mean confidence, and how evenly the pseudo-labels
spread over the classes. With ``--mutual``, a filter that needs no target label either, on the same batches
and similarity: the share of targets it keeps and how often their kNN pseudo-label is right, where a
target is kept when one of its k nearest sources of its pseudo-label's class has it among its own k
nearest targets (mutual nearest neighbours). With ``--target-neighbours``, on the same batches and
similarity, how often a target's k nearest other targets of its batch share its class (read with target
labels: what a term pulling targets toward their nearest targets would pull together rightly), beside the
share expected by chance from the batch's class counts. With ``--propagated``, how often the vote is right
once smoothed over the targets' own neighbourhood graph (:func:`propagated_labels`, read with target
labels), in ILA's batch of targets and in a larger pool of them. The last lines average the runs of each
method and task.
"""
import argparse
import contextlib
import glob
import io
import os
import statistics
import sys
from collections import defaultdict

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "examples", "domain_adaptation"))
sys.path.insert(0, HERE)
from _argtypes import at_least, fraction  # noqa: E402
from offline_digits import METHODS, script_method  # noqa: E402
from ila_tllib import ILALoss  # noqa: E402
from ila_tllib.affinity import DEFAULT_MU  # noqa: E402
from ila_tllib.pseudo_labels import DEFAULT_K  # noqa: E402
from ila_tllib.similarity import get_similarity  # noqa: E402
from ila_tllib.run_logs import LogError, parse_namespace, read_run  # noqa: E402

SIMILARITIES = ("inverse_euclidean", "cosine")


class ProbeError(ValueError):
    pass


def ila_batches(f_s, y_s, f_t, similarity, k, mu, samples_per_class, targets, batches, generator):
    """ILA's decisions on ``batches`` random batches of ``samples_per_class`` sources of every class and
    ``targets`` targets: yields the loss (holding the batch's decisions) and the batch's source and target
    indices."""
    ila = ILALoss(k=k, mu=mu, similarity=similarity)
    by_class = [torch.nonzero(y_s == c).flatten() for c in torch.unique(y_s)]
    rows = sum(min(samples_per_class, len(idx)) for idx in by_class)
    if k > rows:
        raise ProbeError(f"--k {k} is more than ILA's source batch of {rows} ({samples_per_class} per class of "
                         f"{len(by_class)}); give --k {rows} or less")
    for _ in range(batches):
        rows = torch.cat([idx[torch.randperm(len(idx), generator=generator)[:samples_per_class]] for idx in by_class])
        cols = torch.randperm(len(f_t), generator=generator)[:targets]
        ila(f_s[rows], y_s[rows], f_t[cols])
        yield ila, rows, cols


def vote_accuracy(f_s, y_s, f_t, y_t, similarity, k, mu, samples_per_class, targets, batches, generator):
    """Mean share (%) of targets whose kNN pseudo-label is right, over all and over the kept ones, in
    ``batches`` random batches of ``samples_per_class`` sources of every class and ``targets`` targets."""
    every, kept = [], []
    for ila, _, cols in ila_batches(f_s, y_s, f_t, similarity, k, mu, samples_per_class, targets, batches, generator):
        right = ila.pseudo_labels == y_t[cols]
        every.append(right.float().mean().item())
        if ila.kept.any():
            kept.append(right[ila.kept].float().mean().item())
    return 100 * statistics.mean(every), 100 * statistics.mean(kept) if kept else float("nan")


#: --label-free: what ILA could read of its own vote without a target label, on the kept targets of a batch,
#: and how each column is printed
LABEL_FREE = {"agree %": "{:.1f}", "mean Γ": "{:.2f}", "confidence %": "{:.1f}", "label entropy": "{:.2f}"}


def label_free(f_s, y_s, f_t, logits_t, similarity, k, mu, samples_per_class, targets, batches, generator):
    """Means over the batches (as :func:`vote_accuracy` draws them) of, on the kept targets: the share (%)
    whose kNN pseudo-label is the classifier's prediction; their similarity ratio Γ; the classifier's
    largest softmax probability (%); and the entropy of their pseudo-labels' histogram divided by that of a
    uniform one (1: every class as often; 0: one class)."""
    num_classes = len(torch.unique(y_s))
    readings = []
    for ila, _, cols in ila_batches(f_s, y_s, f_t, similarity, k, mu, samples_per_class, targets, batches, generator):
        kept = ila.kept
        if not kept.any():
            continue
        labels, logits = ila.pseudo_labels[kept], logits_t[cols][kept]
        share = torch.bincount(labels, minlength=num_classes).double() / len(labels)
        entropy = -(share[share > 0] * share[share > 0].log()).sum() / torch.log(torch.tensor(float(num_classes)))
        readings.append((100 * (labels == logits.argmax(dim=1)).float().mean().item(), ila.ratio[kept].mean().item(),
                         100 * logits.softmax(dim=1).amax(dim=1).mean().item(), entropy.item()))
    return tuple(statistics.mean(r[i] for r in readings) if readings else float("nan") for i in range(len(LABEL_FREE)))


def mutual_kept(similarity_st, y_s, pseudo_labels, k):
    """Targets kept by mutual nearest neighbours: target t is kept when one of its ``k`` most similar
    sources has label ``pseudo_labels[t]`` and has t among its own ``k`` most similar targets.

    Shape:
        - similarity_st: :math:`(N_s, N_t)`; y_s: :math:`(N_s,)`; pseudo_labels: :math:`(N_t,)`
        - Output: :math:`(N_t,)`, bool
    """
    n_s, n_t = similarity_st.shape
    sources_of_t = similarity_st.topk(min(k, n_s), dim=0).indices             # (k, N_t)
    targets_of_s = similarity_st.topk(min(k, n_t), dim=1).indices             # (N_s, k)
    near_s = torch.zeros_like(similarity_st, dtype=torch.bool)
    near_s.scatter_(1, targets_of_s, True)                                     # [s, t]: t among s's nearest
    columns = torch.arange(n_t, device=similarity_st.device).expand_as(sources_of_t)
    mutual = near_s[sources_of_t, columns]                                    # (k, N_t)
    return (mutual & (y_s[sources_of_t] == pseudo_labels)).any(dim=0)


def mutual_vote(f_s, y_s, f_t, y_t, similarity, k, mu, samples_per_class, targets, batches, generator):
    """Means over the batches (as :func:`vote_accuracy` draws them) of the share (%) of targets
    :func:`mutual_kept` keeps and of the share of those whose kNN pseudo-label is right."""
    measure = get_similarity(similarity)
    shares, right = [], []
    for ila, rows, cols in ila_batches(f_s, y_s, f_t, similarity, k, mu, samples_per_class, targets, batches,
                                       generator):
        keep = mutual_kept(measure(f_s[rows], f_t[cols]), y_s[rows], ila.pseudo_labels, k)
        shares.append(keep.float().mean().item())
        if keep.any():
            right.append((ila.pseudo_labels[keep] == y_t[cols][keep]).float().mean().item())
    return 100 * statistics.mean(shares), 100 * statistics.mean(right) if right else float("nan")


def neighbour_purity(similarity_tt, y_t, k):
    """The share of each target's ``k`` most similar *other* targets that have its label, averaged over the
    targets, and the share expected when neighbours are drawn at random from the others.

    Shape:
        - similarity_tt: :math:`(N_t, N_t)`; y_t: :math:`(N_t,)`
        - Output: two floats in [0, 1]
    """
    n = len(y_t)
    others = similarity_tt.masked_fill(torch.eye(n, dtype=torch.bool, device=similarity_tt.device), float("-inf"))
    near = others.topk(min(k, n - 1), dim=1).indices                           # (N_t, k)
    purity = (y_t[near] == y_t[:, None]).float().mean().item()
    same = (y_t[:, None] == y_t[None, :]).float().sum(dim=1) - 1               # others of the target's class
    return purity, (same / (n - 1)).mean().item()


def target_neighbours(f_s, y_s, f_t, y_t, similarity, k, mu, samples_per_class, targets, batches, generator):
    """Means over the batches (as :func:`vote_accuracy` draws them) of :func:`neighbour_purity` (%) of the
    batch's targets, with ``k`` neighbours."""
    measure = get_similarity(similarity)
    readings = [neighbour_purity(measure(f_t[cols], f_t[cols]), y_t[cols], k)
                for _, _, cols in ila_batches(f_s, y_s, f_t, similarity, k, mu, samples_per_class, targets, batches,
                                              generator)]
    return tuple(100 * statistics.mean(r[i] for r in readings) for i in range(2))


def propagated_labels(similarity_ts, similarity_tt, y_s, k, num_classes, steps):
    """The kNN vote smoothed over the targets' own neighbourhood graph: a target's scores start as its vote
    counts (its ``k`` most similar sources' labels) and each of ``steps`` steps sets them to those counts plus
    the summed scores of its ``k`` most similar *other* targets (the neighbours outvote the target itself).
    The label is the highest score, ties going to the target's own vote. No target label is read.

    Shape:
        - similarity_ts: :math:`(N_t, N_s)`; similarity_tt: :math:`(N_t, N_t)`; y_s: :math:`(N_s,)`
        - Output: :math:`(N_t,)`, long
    """
    n_t = similarity_ts.shape[0]
    near_s = similarity_ts.topk(k, dim=1).indices                              # (N_t, k)
    votes = torch.zeros(n_t, num_classes).scatter_add_(1, y_s[near_s], torch.ones(near_s.shape))
    others = similarity_tt.masked_fill(torch.eye(n_t, dtype=torch.bool), float("-inf"))
    near_t = others.topk(min(k, n_t - 1), dim=1).indices                       # (N_t, k)
    scores = votes
    for _ in range(steps):                                                     # steps of the graph, not samples
        scores = votes + scores[near_t].sum(dim=1)
    own = torch.nn.functional.one_hot(votes.argmax(dim=1), num_classes)        # knn_vote's label, ties smallest
    return (scores + 1e-3 * own).argmax(dim=1)


#: --propagated: the graph's steps read, and the targets the graph holds beside ILA's batch
PROPAGATION_STEPS = (0, 1, 3)
POOL = 1000


def propagated_vote(f_s, y_s, f_t, y_t, similarity, k, mu, samples_per_class, targets, batches, generator):
    """Means over the batches (as :func:`vote_accuracy` draws them) of the share (%) of targets whose
    :func:`propagated_labels` are right, for each of :data:`PROPAGATION_STEPS` (0: the plain vote), on the
    batch's targets and on a pool of up to :data:`POOL` targets with the same sources."""
    measure = get_similarity(similarity)
    num_classes = len(torch.unique(y_s))
    readings = []
    for pool in (targets, min(POOL, len(f_t))):
        right = defaultdict(list)
        for _, rows, cols in ila_batches(f_s, y_s, f_t, similarity, k, mu, samples_per_class, pool, batches,
                                         generator):
            s_ts, s_tt = measure(f_t[cols], f_s[rows]), measure(f_t[cols], f_t[cols])
            for steps in PROPAGATION_STEPS:
                labels = propagated_labels(s_ts, s_tt, y_s[rows], k, num_classes, steps)
                right[steps].append((labels == y_t[cols]).float().mean().item())
        readings.append(tuple(100 * statistics.mean(right[s]) for s in PROPAGATION_STEPS))
    return readings


def _features(method, classifier, dataset, samples, generator):
    loader = torch.utils.data.DataLoader(dataset, batch_size=256, shuffle=True, generator=generator)
    extractor = method.feature_extractor(classifier)
    features, labels, logits = [], [], []
    with torch.no_grad():
        for x, y in loader:
            features.append(extractor(x))
            logits.append(classifier(x))
            labels.append(y)
            if sum(len(f) for f in features) >= samples:
                break
    return torch.cat(features)[:samples], torch.cat(labels)[:samples], torch.cat(logits)[:samples]


def load_finished_run(run_dir, data_root=None):
    """A finished run of the scripts, rebuilt from its log's flags with the weights after its last epoch, in
    evaluation mode: (run, method, classifier, flags, source training set, target test set)."""
    from ila_tllib.datasets import DatasetError
    from ila_tllib.engine.checkpoint import load_weights
    from ila_tllib.engine.data import get_dataset
    from ila_tllib.engine.errors import UsageError
    from ila_tllib.engine.run import build_classifier
    from ila_tllib.models import BackboneError
    # the newest finished log: a later start that stopped early (a refused --resume) wrote a newer one
    logs = sorted(glob.glob(os.path.join(glob.escape(run_dir), "train-*.txt")))
    try:
        finished = [(path, run) for path in logs if (run := read_run(path)) is not None]
    except LogError as e:
        raise ProbeError(str(e)) from None
    log, run = finished[-1] if finished else (None, None)
    weights = os.path.join(run_dir, "checkpoints", "latest.pth")
    if run is None:
        raise ProbeError(f"{run_dir} holds no finished training log; give the folder of a finished run of the "
                         f"scripts (its --log)")
    if not os.path.isfile(weights):
        raise ProbeError(f"{run_dir} holds no checkpoints/latest.pth (a later run in the folder may have moved it "
                         f"to checkpoints/previous-*); give the folder of a finished run of the scripts (its --log)")
    # a later training that evaluated an epoch (" * Acc@1") saved its weights over the finished run's
    later = [path for path in logs[logs.index(log) + 1:] if _evaluated_an_epoch(path)]
    if later:
        raise ProbeError(f"{weights} holds the weights of a later, unfinished run in {run_dir} ({later[-1]}), "
                         f"not those of {log}; give the folder of a run whose last training finished")
    if run.base not in METHODS:
        raise ProbeError(f"{run_dir} is a {run.base} run; the probe reads runs of {', '.join(METHODS)}")
    method = script_method(METHODS[run.base][0])     # the script that ran it, as the benchmark runs it
    with open(log, encoding="utf-8", errors="replace") as f:
        line = next(line for line in f if line.startswith("Namespace("))
    flags = parse_namespace(line)   # as logged: read_run's args carry the tables' reading of the weights
    root = data_root or flags["root"]
    # a dataset class would download or export other data there, and the probe would read those
    exported = flags.get("data") != "OfflineDigits" or os.path.isfile(os.path.join(root, "offline_digits.json"))
    if not os.path.isdir(root) or not exported:
        raise ProbeError(f"the data the run read are not at {root}; give --data-root DIR where they lie")
    args = argparse.Namespace(**{**flags, "root": root, "cache_images": False})
    try:
        with contextlib.redirect_stdout(io.StringIO()):      # the transforms and the model the scripts print
            source, _, _, test, num_classes = get_dataset(args)[:5]
            classifier = build_classifier(args, method, num_classes, torch.device("cpu"))
        load_weights(classifier, weights, run_dir, "give the folder of a finished run of the scripts (its --log)")
    except (DatasetError, UsageError, BackboneError) as e:     # the data or the weights are not the run's
        raise ProbeError(str(e)) from None
    classifier.eval()
    return run, method, classifier, flags, source, test


def _evaluated_an_epoch(path: str) -> bool:
    with open(path, encoding="utf-8", errors="replace") as f:
        return any(line.startswith(" * Acc@1") for line in f)


def target_outputs(run_dir, data_root=None):
    """A finished run's softmax outputs on every target test image, in the set's order, and those images'
    labels: (run, outputs, labels)."""
    run, _, classifier, _, _, test = load_finished_run(run_dir, data_root)
    loader = torch.utils.data.DataLoader(test, batch_size=500, shuffle=False)
    outputs, labels = [], []
    with torch.no_grad():
        for x, y in loader:
            outputs.append(classifier(x).softmax(dim=1))
            labels.append(y)
    return run, torch.cat(outputs), torch.cat(labels)


def probe(run_dir, data_root, samples, batches, with_label_free=False, with_mutual=False, k=None, mu=None,
          with_neighbours=False, with_propagated=False):
    run, method, classifier, flags, source, test = load_finished_run(run_dir, data_root)
    generator = torch.Generator().manual_seed(0)
    f_s, y_s, _ = _features(method, classifier, source, samples, generator)
    f_t, y_t, logits_t = _features(method, classifier, test, samples, generator)
    result = {"classifier": 100 * (logits_t.argmax(dim=1) == y_t).float().mean().item(),
              "norm_s": f_s.norm(dim=1).mean().item(), "norm_t": f_t.norm(dim=1).mean().item()}
    settings = dict(k=k or flags.get("k", DEFAULT_K), mu=mu or flags.get("mu", DEFAULT_MU),
                    samples_per_class=max(1, flags.get("samples_per_class", 4)), targets=flags["batch_size"],
                    batches=batches)
    for similarity in SIMILARITIES:
        result[similarity] = vote_accuracy(f_s, y_s, f_t, y_t, similarity, generator=torch.Generator().manual_seed(1),
                                           **settings)
    if with_label_free:   # with the run's own similarity, on the same batches
        result["label_free"] = label_free(f_s, y_s, f_t, logits_t, flags.get("similarity", "inverse_euclidean"),
                                          generator=torch.Generator().manual_seed(1), **settings)
    if with_mutual:
        result["mutual"] = mutual_vote(f_s, y_s, f_t, y_t, flags.get("similarity", "inverse_euclidean"),
                                       generator=torch.Generator().manual_seed(1), **settings)
    if with_neighbours:
        result["neighbours"] = target_neighbours(f_s, y_s, f_t, y_t, flags.get("similarity", "inverse_euclidean"),
                                                 generator=torch.Generator().manual_seed(1), **settings)
    if with_propagated:
        result["propagated"] = propagated_vote(f_s, y_s, f_t, y_t, flags.get("similarity", "inverse_euclidean"),
                                               generator=torch.Generator().manual_seed(1), **settings)
    return run, result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="run folders (each a --log of a finished run)")
    parser.add_argument("--data-root", default=None, help="the dataset root, if not the one in the logs")
    parser.add_argument("--samples", type=at_least(2), default=2000, help="images per domain (default: 2000)")
    parser.add_argument("--batches", type=at_least(1), default=100, help="ILA batches drawn (default: 100)")
    parser.add_argument("--label-free", action="store_true",
                        help="also what ILA could read of its vote without target labels, with the run's own "
                             "similarity, on the kept targets: " + ", ".join(LABEL_FREE).replace("%", "%%"))
    parser.add_argument("--k", type=at_least(1), default=None,
                        help="the vote's k instead of the log's (a baseline's log holds the defaults ILA did not use)")
    parser.add_argument("--mu", type=fraction, default=None, help="the ratio test's mu instead of the log's")
    parser.add_argument("--mutual", action="store_true",
                        help="also the mutual-nearest-neighbour filter, with the run's own similarity: the share of "
                             "targets it keeps and how often their kNN pseudo-label is right")
    parser.add_argument("--target-neighbours", action="store_true",
                        help="also, with the run's own similarity, how often a target's k nearest other targets of "
                             "its batch share its class (read with target labels), and the chance share")
    parser.add_argument("--propagated", action="store_true",
                        help="also, with the run's own similarity, how often the kNN vote smoothed over the targets' "
                             "own k-nearest-neighbour graph is right (read with target labels), after "
                             + ", ".join(map(str, PROPAGATION_STEPS)) + " steps of the graph, in ILA's batch of "
                             f"targets and in a pool of {POOL}")
    args = parser.parse_args()      # the types refuse --samples, --batches, --k and --mu out of range
    extra = tuple(LABEL_FREE) if args.label_free else ()
    columns = ["classifier", "norm s / t"] + [f"{s} all / kept" for s in SIMILARITIES] + list(extra) + \
        (["mutual kept % / right %"] if args.mutual else []) + \
        (["target neighbours same class % / chance %"] if args.target_neighbours else []) + \
        ([f"propagated right % ({'/'.join(map(str, PROPAGATION_STEPS))} steps), {where}"
          for where in ("batch", f"pool of {POOL}")] if args.propagated else [])
    print("| run | " + " | ".join(columns) + " |\n" + "|---" * (1 + len(columns)) + "|")
    groups = defaultdict(list)
    for run_dir in args.runs:
        try:
            run, r = probe(run_dir, args.data_root, args.samples, args.batches, args.label_free, args.mutual,
                           args.k, args.mu, args.target_neighbours, args.propagated)
        except ProbeError as e:
            parser.error(str(e))
        groups[(run.method, run.task)].append(r)
        votes = " | ".join("{:.1f} / {:.1f}".format(*r[s]) for s in SIMILARITIES)
        print(f"| {os.path.normpath(run_dir)} | {r['classifier']:.1f} | {r['norm_s']:.2f} / {r['norm_t']:.2f} | "
              f"{votes} |" + _label_free_cells(r, extra) + _pair_cell(r, "mutual") + _pair_cell(r, "neighbours") +
              _propagated_cells(r), flush=True)
    print("\n| method | task | runs | " + " | ".join(columns) + " |\n" + "|---" * (3 + len(columns)) + "|")
    for (method, task), rs in sorted(groups.items()):
        def m(key, i=None):
            return statistics.mean(r[key] if i is None else r[key][i] for r in rs)
        votes = " | ".join(f"{m(s, 0):.1f} / {m(s, 1):.1f}" for s in SIMILARITIES)
        mean_readings = {"label_free": [m("label_free", i) for i in range(len(extra))]}
        if args.mutual:
            mean_readings["mutual"] = (m("mutual", 0), m("mutual", 1))
        if args.target_neighbours:
            mean_readings["neighbours"] = (m("neighbours", 0), m("neighbours", 1))
        if args.propagated:
            mean_readings["propagated"] = [[statistics.mean(r["propagated"][w][i] for r in rs)
                                            for i in range(len(PROPAGATION_STEPS))] for w in range(2)]
        print(f"| {method} | {task} | {len(rs)} | {m('classifier'):.1f} | {m('norm_s'):.2f} / {m('norm_t'):.2f} | "
              f"{votes} |" + _label_free_cells(mean_readings, extra) + _pair_cell(mean_readings, "mutual") +
              _pair_cell(mean_readings, "neighbours") + _propagated_cells(mean_readings))


def _label_free_cells(result, columns):
    return "".join(" " + LABEL_FREE[name].format(v) + " |" for name, v in zip(columns, result.get("label_free", ())))


def _propagated_cells(result):
    return "".join(" " + " / ".join(f"{v:.1f}" for v in where) + " |" for where in result.get("propagated", ()))


def _pair_cell(result, key):
    return " {:.1f} / {:.1f} |".format(*result[key]) if key in result else ""


if __name__ == "__main__":
    main()
