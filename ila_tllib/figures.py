"""ILA-DA's Fig. 5: the affinity matrix of one batch, grouped by class."""
import torch

from .affinity import affinity_matrix
from .atomic import save_figure_atomic

__all__ = ["plot_affinity"]


def plot_affinity(y_s: torch.Tensor, y_t: torch.Tensor, pseudo_labels: torch.Tensor, kept: torch.Tensor,
                  filename: str):
    """Save three panels — the affinity as computed from kNN pseudo-labels, after the ratio filter, and
    the ground truth from the (held-out) target labels — with sources and targets sorted by true class.

    +1 is drawn red, −1 blue, 0 (filtered out) white.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s_order, t_order = torch.argsort(y_s, stable=True), torch.argsort(y_t, stable=True)
    everything = torch.ones_like(kept)
    panels = [("computed", affinity_matrix(y_s, pseudo_labels, everything)),
              ("after filtering", affinity_matrix(y_s, pseudo_labels, kept)),
              ("ground truth", affinity_matrix(y_s, y_t, everything))]
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.5))
    for ax, (title, a) in zip(axes, panels):
        ax.imshow(a[s_order][:, t_order].numpy(), cmap="bwr", vmin=-1, vmax=1, interpolation="nearest")
        ax.set_title(title)
        ax.set_xlabel("target (sorted by true class)")
        ax.set_ylabel("source (sorted by class)")
    fig.tight_layout()
    save_figure_atomic(fig, filename, dpi=120)
    plt.close(fig)
