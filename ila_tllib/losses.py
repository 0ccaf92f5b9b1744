"""Metric losses over an affinity matrix: ILA-DA's multi-sample contrastive loss, its two one-sided
ablations and the triplet ablation.

Each takes the source–target similarity (with gradient) and the affinity :math:`A` (without), so any
can follow any miner. Each source sample is an anchor; it counts only when it has at least one positive
(:math:`A_{ij} = +1`) and one negative (:math:`A_{ij} = -1`). With no such anchor the loss is an exact 0
that still belongs to the graph (so ``backward`` works and nothing turns NaN).
"""
from typing import Optional

import torch
import torch.nn as nn

from .autograd import first_order_only
from .parts import build_part

__all__ = ["DEFAULT_TEMPERATURE", "MultiSampleContrastiveLoss", "PushOnlyMSCLoss", "PullOnlyMSCLoss",
           "AffinityTripletLoss", "get_metric_loss", "METRIC_LOSSES"]


def anchors(affinity: torch.Tensor) -> torch.Tensor:
    """Sources with at least one positive and one negative target."""
    return (affinity > 0).any(dim=1) & (affinity < 0).any(dim=1)


def _check_pair(similarity: torch.Tensor, affinity: torch.Tensor):
    """A ValueError unless both are (N_s, N_t) matrices of one shape."""
    if similarity.dim() != 2 or similarity.shape != affinity.shape:
        raise ValueError(f"similarity and affinity must both be (N_s, N_t), sources by rows; got "
                         f"{tuple(similarity.shape)} and {tuple(affinity.shape)}")


REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(reduction: str) -> str:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    return reduction


def _reduce(per_anchor: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "none":
        return per_anchor
    if per_anchor.numel() == 0:
        return per_anchor.sum()   # an exact 0 that is still part of the graph
    return per_anchor.mean() if reduction == "mean" else per_anchor.sum()


#: MSC's temperature τ (the paper's Eq. 4-5 have none: τ = 1)
DEFAULT_TEMPERATURE = 1.0


class MultiSampleContrastiveLoss(nn.Module):
    r"""The multi-sample contrastive (MSC) loss of ILA-DA (Eq. 4–5)

    .. math::
        L_i = -\log \frac{\sum_{j \in P_i} \exp(\phi_{ij} / \tau)}
                         {\sum_{j \in P_i \cup N_i} \exp(\phi_{ij} / \tau)}, \qquad
        L_{MSC} = \frac{1}{|\mathcal{I}|} \sum_{i \in \mathcal{I}} L_i

    where :math:`P_i = \{j : A_{ij} = +1\}`, :math:`N_i = \{j : A_{ij} = -1\}` and :math:`\mathcal{I}` are
    the sources with both. The paper has no temperature (:math:`\tau = 1`).

    Args:
        temperature (float): :math:`\tau`. Default: 1.0
        reduction (str): ``'mean'`` | ``'sum'`` | ``'none'`` (per-anchor losses). Default: ``'mean'``

    Inputs:
        - similarity (tensor): :math:`\phi_{ij}`, shape :math:`(N_s, N_t)`, gradient flows into both features
        - affinity (tensor): :math:`A`, shape :math:`(N_s, N_t)`, entries +1 / −1 / 0

    Shape:
        - Output: scalar (``'none'``: :math:`(|\mathcal{I}|,)`)
    """

    def __init__(self, temperature: float = DEFAULT_TEMPERATURE, reduction: str = "mean"):
        super().__init__()
        if not 0 < temperature < float("inf"):      # NaN too: the fused path would return 0, this one NaN
            raise ValueError(f"temperature must be a finite number > 0, got {temperature}")
        self.temperature, self.reduction = temperature, _check_reduction(reduction)

    #: the affinity (+1 or −1) whose pairs the loss does not move (its similarities enter detached); None: both move
    _held = None

    def forward(self, similarity: torch.Tensor, affinity: torch.Tensor) -> torch.Tensor:
        _check_pair(similarity, affinity)
        rows = anchors(affinity)
        if self._held is not None:
            similarity = torch.where(affinity == self._held, similarity.detach(), similarity)
        if similarity.shape[1] == 0:   # no target at all: nothing to contrast
            per_source = similarity.sum(dim=1)
        else:
            excluded = torch.stack((affinity == 0, affinity <= 0))    # outside P ∪ N, outside P
            per_source = _PerSourceMSC.apply(similarity, excluded, rows, self.temperature)
        if self.reduction == "none":
            return per_source[rows]
        total = per_source.sum()     # an exact 0, still in the graph, when no source is an anchor
        return total / rows.sum().clamp_min(1) if self.reduction == "mean" else total

    def extra_repr(self):
        return f"temperature={self.temperature}, reduction={self.reduction!r}"


class PushOnlyMSCLoss(MultiSampleContrastiveLoss):
    r"""The MSC loss with its positives held: the same value, but only the negatives move.

    :math:`\phi_{ij}` of :math:`j \in P_i` enters :math:`L_i` detached, so the gradient is MSC's on
    :math:`N_i` (:math:`p^{P \cup N}_{ij} / \tau`, pushing the pair apart) and 0 on :math:`P_i`. A wrong
    pseudo-label makes every +1 pair of its target wrong, but a −1 pair only when the source's class is the
    target's true one. Settings, inputs and shape as :class:`MultiSampleContrastiveLoss`.
    """
    _held = 1


class PullOnlyMSCLoss(MultiSampleContrastiveLoss):
    r"""The MSC loss with its negatives held: the same value, but only the positives move (MSC's gradient
    :math:`(p^{P \cup N}_{ij} - p^{P}_{ij}) / \tau` on :math:`P_i`, 0 on :math:`N_i`). Settings, inputs and
    shape as :class:`MultiSampleContrastiveLoss`.
    """
    _held = -1


class _PerSourceMSC(torch.autograd.Function):
    r"""Per-source MSC loss :math:`L_i` over whole rows (0 for non-anchors), with a hand-written backward.

    :math:`\partial L_i / \partial \phi_{ij} = (p^{P \cup N}_{ij} - p^{P}_{ij}) / \tau`, where :math:`p^S_i` is
    the softmax of row :math:`i` restricted to :math:`S`. Writing it by hand records one node instead of
    a dozen (their overhead dominates on small batches) and lets rows with nothing to contrast (an
    empty softmax, NaN) be zeroed explicitly.
    """

    @staticmethod
    def forward(ctx, similarity, excluded, rows, temperature):
        logits = similarity if temperature == 1.0 else similarity / temperature
        masked = logits.expand(2, -1, -1).masked_fill(excluded, float("-inf"))
        # a log-sum-exp shifted by the row maximum; rows with nothing to contrast turn NaN here
        # and are replaced by 0 below (forward) and in backward
        shift = masked.amax(dim=2, keepdim=True)
        e = masked.sub_(shift).exp_()
        sums = e.sum(dim=2)
        log_all, log_pos = sums.log() + shift.squeeze(2)
        ctx.save_for_backward(e, sums, rows)
        ctx.temperature = temperature
        return torch.where(rows, log_all - log_pos, 0.0)

    @staticmethod
    @first_order_only
    def backward(ctx, grad):
        e, sums, rows = ctx.saved_tensors
        softmax_all, softmax_pos = e / sums.unsqueeze(2)
        grad = torch.where(rows.unsqueeze(1), softmax_all - softmax_pos, 0.0) * grad.unsqueeze(1)
        return (grad if ctx.temperature == 1.0 else grad / ctx.temperature), None, None, None


class AffinityTripletLoss(nn.Module):
    r"""Triplet loss on the same affinity, with the hardest pair per anchor (Table 4 (a))

    .. math::
        L_i = \max\bigl(0,\ \max_{j \in N_i} \phi_{ij} - \min_{j \in P_i} \phi_{ij} + \text{margin}\bigr)

    Args:
        margin (float): required similarity gap. Default: 0.1 (the paper does not state one)
        reduction (str): ``'mean'`` | ``'sum'`` | ``'none'``. Default: ``'mean'``

    Inputs and shape as :class:`MultiSampleContrastiveLoss`.
    """

    def __init__(self, margin: float = 0.1, reduction: str = "mean"):
        super().__init__()
        self.margin, self.reduction = margin, _check_reduction(reduction)

    def forward(self, similarity: torch.Tensor, affinity: torch.Tensor) -> torch.Tensor:
        _check_pair(similarity, affinity)
        rows = anchors(affinity)
        if similarity.shape[1] == 0:   # no target at all: nothing to contrast (no hardest pair to take)
            return _reduce(similarity.sum(dim=1)[rows], self.reduction)
        s, a = similarity[rows], affinity[rows]
        hardest_positive = s.masked_fill(a <= 0, float("inf")).min(dim=1).values
        hardest_negative = s.masked_fill(a >= 0, float("-inf")).max(dim=1).values
        per_anchor = (hardest_negative - hardest_positive + self.margin).clamp_min(0.0)
        return _reduce(per_anchor, self.reduction)

    def extra_repr(self):
        return f"margin={self.margin}, reduction={self.reduction!r}"


METRIC_LOSSES = {
    "msc": MultiSampleContrastiveLoss,
    "msc-push": PushOnlyMSCLoss,
    "msc-pull": PullOnlyMSCLoss,
    "triplet": AffinityTripletLoss,
}


def get_metric_loss(name: str, temperature: Optional[float] = None) -> nn.Module:
    """A metric loss of :data:`METRIC_LOSSES` by name with the settings given (the MSC losses take temperature,
    ``triplet`` none): left None it keeps its default; given to a loss that does not take it, it is refused."""
    return build_part(METRIC_LOSSES, name, "metric loss", temperature=temperature)
