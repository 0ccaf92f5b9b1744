"""Pseudo-labellers: give every target sample a label and a score that ranks how trustworthy it is.

Three interchangeable parts (the paper's Table 4 (b) ablation swaps the first two):

* :class:`KNNPseudoLabeller` — ILA-DA's choice: majority vote of the k most similar source
  samples, scored by the similarity ratio Γ (Eq. 7).
* :class:`ClassifierPseudoLabeller` — the classifier's argmax, scored by its softmax confidence.
* :class:`ConsensusPseudoLabeller` — the kNN vote and Γ, for the targets whose vote the classifier shares.

All run without gradient: they only decide which pairs the loss contrasts.
"""
import operator
from typing import NamedTuple, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from .parts import build_part

__all__ = ["DEFAULT_K", "PseudoLabels", "check_k", "check_label_range", "knn_vote", "similarity_ratio",
           "KNNPseudoLabeller", "ClassifierPseudoLabeller", "ConsensusPseudoLabeller", "get_pseudo_labeller",
           "PSEUDO_LABELLERS", "RATIO_TERMS"]

#: the neighbours of the kNN vote by default: the paper's Office-31 setting
DEFAULT_K = 5

#: --ila-ratio-terms: how many sources of each group Γ sums. ``top-m``: up to m of each (Eq. 7); ``matched``: as
#: many unlike as there are like ones (at most m), so that a class with fewer rows in the source batch
#: than the others is not ranked down for it. On a class-balanced batch the two are the same.
RATIO_TERMS = ("top-m", "matched")


class PseudoLabels(NamedTuple):
    r"""Labels of shape :math:`(N_t,)` and a score of shape :math:`(N_t,)`; higher score = kept first, and a
    score of :math:`-\infty` = never kept."""
    labels: torch.Tensor
    score: torch.Tensor


def _num_classes(y_s: torch.Tensor, num_classes: Optional[int]) -> int:
    return int(num_classes) if num_classes is not None else int(y_s.max().item()) + 1


def check_label_range(low: int, top: int, num_classes: Optional[int]):
    """Source labels span ``[low, top]``: raise where that leaves ``[0, num_classes)``."""
    if low < 0 or (num_classes is not None and top >= num_classes):
        upper = "num_classes - 1" if num_classes is None else num_classes - 1
        raise ValueError(f"y_s holds labels in [{low}, {top}], outside [0, {upper}] (num_classes={num_classes})")


def _whole(value, name: str) -> int:
    """``value`` as an int when it is a whole number (an int, a NumPy integer, a 0-d integer tensor), else a
    ValueError: 2.5 neighbours would fail at the first batch, and True would run as 1."""
    try:
        if isinstance(value, bool):
            raise TypeError
        return operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be a whole number, got {value!r}") from None


def check_k(k: int, n_s: int):
    """A ValueError naming the problem unless ``1 <= k <= n_s`` (a vote of ``k`` among ``n_s`` sources)."""
    if n_s == 0:
        raise ValueError("the source batch is empty: the kNN vote needs at least k sources")
    if not 1 <= k <= n_s:
        raise ValueError(f"k={k} must lie in [1, {n_s}] (the source batch holds {n_s} samples); "
                         f"lower --k or enlarge the source batch")


@torch.no_grad()
def knn_vote(similarity_ts: torch.Tensor, y_s: torch.Tensor, k: int,
             num_classes: Optional[int] = None) -> torch.Tensor:
    r"""Majority label among the ``k`` most similar source samples of each target.

    Ties between labels go to the smallest label (what ``torch.mode`` returns in the authors' code).

    Inputs:
        - similarity_ts (tensor): :math:`\phi(f_j, f_i)`, shape :math:`(N_t, N_s)`
        - y_s (tensor): source labels, shape :math:`(N_s,)`
        - k (int): number of neighbours, :math:`1 \le k \le N_s`
        - num_classes (int, optional): number of classes (else ``y_s.max() + 1``)

    Shape:
        - Output: :math:`(N_t,)` long tensor of pseudo-labels.
    """
    check_k(k, similarity_ts.shape[1])
    y_s = y_s.long()                   # int8 to int32 labels index as int64 ones do
    c = _num_classes(y_s, num_classes)
    neighbours = similarity_ts.topk(k, dim=1).indices                 # (N_t, k)
    votes = torch.zeros(similarity_ts.shape[0], c, device=y_s.device)
    votes.scatter_add_(1, y_s[neighbours], torch.ones_like(neighbours, dtype=votes.dtype))
    return votes.argmax(dim=1)                                         # first maximum = smallest label


@torch.no_grad()
def similarity_ratio(similarity_ts: torch.Tensor, y_s: torch.Tensor, labels_t: torch.Tensor,
                     m: int, matched: bool = False) -> torch.Tensor:
    r"""The similarity ratio Γ of every target (Eq. 7)

    .. math::
        \Gamma_j = \frac{\sum_{i \in \text{top-}m\ \text{like}(j)} \phi(f_j, f_i)}
                        {\sum_{i \in \text{top-}m\ \text{unlike}(j)} \phi(f_j, f_i)}

    "like" sources share the target's pseudo-label, "unlike" ones do not; fewer than ``m`` are
    summed when fewer exist. A target with no unlike source gets :math:`\Gamma = +\infty`.

    With ``matched``, both sums run over :math:`m_j = \min(m, n_j)` terms, :math:`n_j` being the
    number of like sources: on a source batch whose classes have unequal counts, a target whose
    pseudo-label has few rows is no longer ranked down for summing fewer like terms than unlike ones.
    On a class-balanced batch (:math:`n_j = m`) it is Eq. 7 exactly; a target with no like source gets 0.

    Inputs:
        - similarity_ts (tensor): shape :math:`(N_t, N_s)`
        - y_s (tensor): shape :math:`(N_s,)`
        - labels_t (tensor): pseudo-labels, shape :math:`(N_t,)`
        - m (int): per-group count, usually the samples per class of the source batch
        - matched (bool): as many unlike terms as like ones (see above). Default: ``False``

    Shape:
        - Output: :math:`(N_t,)`
    """
    m = min(int(m), similarity_ts.shape[1])
    like = labels_t[:, None] == y_s[None, :]
    # like and unlike in one (2, N_t, N_s) pass; non-members are -inf, so they are picked last
    outsiders = torch.stack((~like, like))
    top = similarity_ts.expand(2, -1, -1).masked_fill(outsiders, float("-inf")).topk(m, dim=2).values
    present = top > float("-inf")                          # fewer than m members: sum what exists
    has_unlike = present[1, :, 0]
    if matched:                                            # the first m_j of each group, m_j = like count
        present = present & (torch.arange(m, device=top.device) < present[0].sum(dim=1, keepdim=True))
    like_sum, unlike_sum = torch.where(present, top, 0.0).sum(dim=2)
    # the ratio assumes a positive φ (as Eq. 6); a target without unlike sources ranks first
    ratio = torch.where(has_unlike, like_sum / unlike_sum, float("inf"))
    return torch.where(present[0, :, 0], ratio, 0.0) if matched else ratio


class KNNPseudoLabeller(nn.Module):
    """kNN pseudo-labels scored by the similarity ratio — ILA-DA's affinity construction (Sec. 3.3).

    Args:
        k (int): neighbours in the vote. Default: 5
        m (int, optional): top-m like/unlike in the ratio; ``None`` = the largest per-class count
            of the source batch (its samples per class when it is class-balanced).
        ratio_terms (str): a name of :data:`RATIO_TERMS`. Default: ``'top-m'`` (Eq. 7)
    """

    def __init__(self, k: int = DEFAULT_K, m: Optional[int] = None, ratio_terms: str = "top-m"):
        super().__init__()
        k, m = _whole(k, "k"), None if m is None else _whole(m, "m")
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if m is not None and m < 1:
            raise ValueError(f"m must be >= 1 or None, got {m}")
        if ratio_terms not in RATIO_TERMS:
            raise ValueError(f"unknown ratio terms {ratio_terms!r}; choose one of {list(RATIO_TERMS)}")
        self.k, self.m, self.ratio_terms = k, m, ratio_terms

    @torch.no_grad()
    def forward(self, similarity_ts, y_s, logits_t=None, num_classes=None) -> PseudoLabels:
        try:
            counts = torch.bincount(y_s, minlength=num_classes or 0)
        except RuntimeError:            # a negative label: named as ILALoss names it (no check on the good path)
            check_label_range(int(y_s.min()), int(y_s.max()), num_classes)
            raise
        if num_classes is not None and len(counts) > num_classes:     # bincount grew past the classes named
            check_label_range(int(y_s.min()), len(counts) - 1, num_classes)
        labels = knn_vote(similarity_ts, y_s, self.k, len(counts))
        m = self.m if self.m is not None else int(counts.max().item())
        return PseudoLabels(labels, similarity_ratio(similarity_ts, y_s, labels, m, self.ratio_terms == "matched"))

    def extra_repr(self):
        return f"k={self.k}, m={self.m}, ratio_terms={self.ratio_terms}"


class ClassifierPseudoLabeller(nn.Module):
    """The classifier's argmax as pseudo-label, its softmax probability as score (Table 4 (b))."""

    @torch.no_grad()
    def forward(self, similarity_ts, y_s, logits_t=None, num_classes=None) -> PseudoLabels:
        if logits_t is None:
            raise ValueError("ClassifierPseudoLabeller needs the target logits: call the loss as "
                             "loss(f_s, y_s, f_t, logits_t=...)")
        confidence, labels = F.softmax(logits_t.detach(), dim=1).max(dim=1)
        return PseudoLabels(labels, confidence)


class ConsensusPseudoLabeller(KNNPseudoLabeller):
    r"""kNN pseudo-labels scored by Γ, as :class:`KNNPseudoLabeller`, for the targets whose kNN label is also
    the classifier's argmax; the others get the score :math:`-\infty`, which the miner never keeps. The μ
    filter then keeps up to :math:`\mathrm{round}(\mu N_t)` of the agreeing targets, highest Γ first.

    Two views of the same features must agree before a target pair is pulled together: early in training,
    when the kNN labels of a hard shift are mostly wrong, the classifier rarely agrees with them, so few
    targets are contrasted; as both improve, more pass.

    Args: as :class:`KNNPseudoLabeller`. Needs the target logits.
    """

    @torch.no_grad()
    def forward(self, similarity_ts, y_s, logits_t=None, num_classes=None) -> PseudoLabels:
        if logits_t is None:
            raise ValueError("ConsensusPseudoLabeller needs the target logits: call the loss as "
                             "loss(f_s, y_s, f_t, logits_t=...)")
        labels, score = super().forward(similarity_ts, y_s, logits_t, num_classes)
        agree = labels == logits_t.argmax(dim=1)
        return PseudoLabels(labels, torch.where(agree, score, float("-inf")))


PSEUDO_LABELLERS = {
    "knn": KNNPseudoLabeller,
    "classifier": ClassifierPseudoLabeller,
    "consensus": ConsensusPseudoLabeller,
}


def get_pseudo_labeller(name: str, k: Optional[int] = None, m: Optional[int] = None,
                        ratio_terms: Optional[str] = None) -> nn.Module:
    """A pseudo-labeller of :data:`PSEUDO_LABELLERS` by name with the settings given (``knn`` takes k, m and
    ratio_terms; ``classifier`` none): one left None keeps its default, one the labeller does not take is
    refused."""
    return build_part(PSEUDO_LABELLERS, name, "pseudo-labeller", k=k, m=m, ratio_terms=ratio_terms)
