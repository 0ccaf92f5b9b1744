"""``--phase analysis``: tllib's t-SNE and A-distance, plus ILA-DA's Fig. 5 (the affinity of one batch)."""
import os

import torch
from torch.utils.data import DataLoader

from .. import backend
from ..atomic import write_named_atomic
from ..datasets import read_labels
from ..figures import plot_affinity
from ..sampler import ClassBalancedSampler
from .data import Loader, own_generator, with_transform
from .errors import UsageError
from .ila_term import build_ila_loss

__all__ = ["analyse", "batch_affinity"]


def batch_affinity(classifier, method, args, x_s, y_s, x_t, num_classes):
    """The ILA loss module after it mined one source and one target batch through the trained network in
    evaluation mode (no dropout: a head with its own, as MDD's, would otherwise perturb the classifier's
    pseudo-labels); its ``pseudo_labels``, ``ratio`` and ``kept`` say what it decided."""
    classifier.eval()
    features = method.feature_extractor(classifier)
    with torch.no_grad():
        f_s, f_t = features(x_s), features(x_t)
        ila = build_ila_loss(args, k=min(args.k, f_s.shape[0]))
        ila(f_s, y_s, f_t, logits_t=classifier.head(f_t), num_classes=num_classes)
    return ila


def analyse(classifier, method, data, args, device, log_dir):
    features = method.feature_extractor(classifier).to(device)
    # as tllib: every full batch of both training sets, shuffled, with the training transform, so that
    # t-SNE and the A-distance compare with its published analysis
    source_feature, target_feature = (
        backend.collect_feature(Loader(dataset, batch_size=args.batch_size, shuffle=True,
                                       drop_last=len(dataset) >= args.batch_size,   # a small set still gives one batch
                                       num_workers=args.workers, generator=own_generator(args.seed or 0)),
                        features, device)
        for dataset in (data.train_source, data.train_target))
    tsne_file = os.path.join(log_dir, 'visualize', 'TSNE.pdf')
    # tllib's visualize saves straight to its file name: a failed write would leave half a figure
    tsne = backend.for_samples("tsne", len(source_feature) + len(target_feature))
    write_named_atomic(tsne_file, lambda name: tsne.visualize(source_feature, target_feature, name))
    print("Saving t-SNE to", tsne_file)
    A_distance = backend.a_distance.calculate(source_feature, target_feature, device)
    print("A-distance =", A_distance)

    # Fig. 5: one class-balanced source batch and one target batch, through the trained features
    source = with_transform(data.train_source, data.val_transform)
    # with ILA on tllib's random rows, about as many sources as a training batch holds, grouped by class
    m = args.samples_per_class or -(-args.batch_size // data.num_classes)
    try:
        sampler = ClassBalancedSampler(read_labels(source), m, args.classes_per_batch, seed=args.seed or 0)
    except (TypeError, ValueError) as e:
        raise UsageError(f"cannot draw a class-balanced batch for the affinity figure: {e}") from None
    x_s, y_s = next(iter(DataLoader(source, batch_sampler=sampler)))[:2]
    n_t = min(len(data.val), max(x_s.shape[0], 2))
    # its own generator: the A-distance before it drew from the global one, and tllib's draws other numbers
    # than ours, so the figure would depend on the backend
    x_t, y_t = next(iter(DataLoader(data.val, batch_size=n_t, shuffle=True,
                                    generator=own_generator(args.seed or 0))))[:2]
    ila = batch_affinity(classifier, method, args, x_s.to(device), y_s.to(device), x_t.to(device), data.num_classes)
    figure = os.path.join(log_dir, 'visualize', 'affinity.png')
    plot_affinity(y_s, y_t, ila.pseudo_labels.cpu(), ila.kept.cpu(), figure)
    precision = (ila.pseudo_labels.cpu() == y_t)[ila.kept.cpu()].float().mean().item() * 100 if ila.kept.any() else 0.0
    print(f"Saving the affinity matrix (computed / filtered / ground truth) to {figure}; "
          f"kept {int(ila.kept.sum())} of {n_t} targets, pseudo-label precision {precision:.1f}%")
