"""t-SNE picture of source and target features."""
import numpy as np
import torch

from ..atomic import save_figure_atomic

__all__ = ["visualize"]


def visualize(source_feature: torch.Tensor, target_feature: torch.Tensor, filename: str,
              source_color: str = "r", target_color: str = "b"):
    r"""Embed source and target features jointly in 2-D with t-SNE and save a scatter plot.

    Args:
        source_feature (tensor): :math:`(N_s, F)`
        target_feature (tensor): :math:`(N_t, F)`
        filename (str): output image path; the extension picks the format (``.pdf``, ``.png``…)
        source_color (str, optional): colour of source points. Default: ``'r'``
        target_color (str, optional): colour of target points. Default: ``'b'``
    """
    import matplotlib
    matplotlib.use("Agg")  # headless: never needs a display
    import matplotlib.pyplot as plt
    from sklearn.manifold import TSNE

    source = source_feature.detach().cpu().numpy()
    target = target_feature.detach().cpu().numpy()
    features = np.concatenate([source, target], axis=0)
    n = features.shape[0]
    # t-SNE needs perplexity < n; the usual 30 for real runs, less for tiny inputs
    perplexity = min(30.0, max(1.0, (n - 1) / 3.0))
    embedded = TSNE(n_components=2, perplexity=perplexity, random_state=33).fit_transform(features)

    fig, ax = plt.subplots(figsize=(10, 10))
    ax.scatter(embedded[:len(source), 0], embedded[:len(source), 1], c=source_color, s=20, label="source")
    ax.scatter(embedded[len(source):, 0], embedded[len(source):, 1], c=target_color, s=20, label="target")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    save_figure_atomic(fig, filename, bbox_inches="tight")
    plt.close(fig)
