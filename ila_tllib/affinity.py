"""The affinity miner: pseudo-labels + the μ filter → the instance affinity matrix A (Algorithm 1).

:math:`A_{ij} = +1` when source ``i`` and kept target ``j`` share a label, :math:`-1` when they do
not, and :math:`0` for targets the filter rejected. The miner is pure bookkeeping: it runs under
``no_grad`` and its output only selects which similarities the metric loss contrasts.
"""
import math
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn as nn

__all__ = ["DEFAULT_MU", "kept_count", "keep_top_fraction", "affinity_matrix", "MinedAffinity", "AffinityMiner"]

#: the fraction of targets kept by default: the paper's Office-31 setting
DEFAULT_MU = 0.67


def kept_count(mu: float, n: int) -> int:
    r""":math:`\mathrm{round}(\mu n)`, half up, for :math:`\mu` as written: 0.29 of 50 keeps 15, although
    ``0.29 * 50`` is 14.4999… in binary floating point."""
    return math.floor(round(mu * n, 9) + 0.5)


def keep_top_fraction(score: torch.Tensor, mu: float) -> torch.Tensor:
    r"""Boolean mask keeping the :math:`\mathrm{round}(\mu N)` highest scores (half rounds up, see :func:`kept_count`);
    a NaN score ranks last (``topk`` would rank it first).

    Inputs:
        - score (tensor): shape :math:`(N,)`
        - mu (float): fraction in :math:`(0, 1]`

    Shape:
        - Output: :math:`(N,)` bool
    """
    if not 0.0 < mu <= 1.0:
        raise ValueError(f"mu={mu} must lie in (0, 1]: it is the fraction of target samples kept")
    n = score.shape[0]
    n_keep = min(n, kept_count(mu, n))
    if n_keep == n:
        return torch.ones(n, dtype=torch.bool, device=score.device)
    kept = torch.zeros(n, dtype=torch.bool, device=score.device)
    ranked = torch.where(score.isnan(), float("-inf"), score)
    return kept.index_fill_(0, ranked.topk(n_keep).indices, True)


def affinity_matrix(y_s: torch.Tensor, labels_t: torch.Tensor, kept: torch.Tensor) -> torch.Tensor:
    r"""Instance affinity :math:`A` of shape :math:`(N_s, N_t)` with entries +1 / −1 / 0 (float)."""
    return torch.where(y_s[:, None] == labels_t[None, :], 1.0, -1.0) * kept


@dataclass
class MinedAffinity:
    """What the miner decided for one batch; kept for logging and figures."""
    pseudo_labels: torch.Tensor   # (N_t,) long
    score: torch.Tensor           # (N_t,) the ratio Γ (kNN) or the confidence (classifier)
    kept: torch.Tensor            # (N_t,) bool
    affinity: torch.Tensor        # (N_s, N_t) float in {+1, -1, 0}


class AffinityMiner(nn.Module):
    r"""Builds :math:`A` from a pseudo-labeller and the μ filter: the :math:`\mathrm{round}(\mu N_t)` targets
    with the highest scores are kept, except those scored :math:`-\infty`.

    Args:
        pseudo_labeller (nn.Module): one of :data:`~ila_tllib.pseudo_labels.PSEUDO_LABELLERS`
            (:class:`~ila_tllib.pseudo_labels.KNNPseudoLabeller` is the paper's), or a module of one's own
            called as they are.
        mu (float): fraction of targets kept, ranked by the pseudo-labeller's score. Default: 0.67

    Inputs:
        - similarity_ts (tensor): :math:`(N_t, N_s)`, detached inside
        - y_s (tensor): :math:`(N_s,)`
        - logits_t (tensor, optional): :math:`(N_t, C)`, for the classifier pseudo-labeller
    """

    def __init__(self, pseudo_labeller: nn.Module, mu: float = DEFAULT_MU):
        super().__init__()
        keep_top_fraction(torch.zeros(1), mu)  # validates mu now, not at the first batch
        self.pseudo_labeller, self.mu = pseudo_labeller, mu

    @torch.no_grad()
    def forward(self, similarity_ts: torch.Tensor, y_s: torch.Tensor,
                logits_t: Optional[torch.Tensor] = None,
                num_classes: Optional[int] = None) -> MinedAffinity:
        if similarity_ts.dim() != 2 or y_s.shape != (similarity_ts.shape[1],):
            raise ValueError(f"the miner takes similarity_ts of shape (N_t, N_s), targets by rows, with one label "
                             f"of y_s per column; got {tuple(similarity_ts.shape)} and y_s of shape "
                             f"{tuple(y_s.shape)} (a similarity of sources by rows, as the losses take, is "
                             f"passed here transposed: similarity_st.t())")
        labels, score = self.pseudo_labeller(similarity_ts.detach(), y_s, logits_t, num_classes)
        kept = keep_top_fraction(score, self.mu) & (score > float("-inf"))   # -inf: the labeller vetoed it
        return MinedAffinity(labels, score, kept, affinity_matrix(y_s, labels, kept))

    def extra_repr(self):
        return f"mu={self.mu}"
