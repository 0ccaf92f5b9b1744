"""The paper's ILA loss in one autograd node: Eq. 4-7 with the paper's parts, forward and backward by hand.

:class:`~ila_tllib.ila.ILALoss` runs this path when its parts are the paper's (see :func:`fused_settings`):
the same decisions, loss and gradients as the composable path (similarity → miner → metric loss), from a
few large tensor operations instead of a chain of small ones. On a GPU every small operation is a kernel
launch, and at training batch sizes the launches, not the arithmetic, are the cost.

Precision. Distances come from :math:`\\lVert a\\rVert^2 + \\lVert b\\rVert^2 - 2 a^\\top b`, one matrix
product; in float32 that loses most digits of short distances (relative error ~ :math:`\\epsilon
\\lVert a\\rVert^2 / d^2`), and the backward's :math:`\\sum_j w_{ij} (a_i - b_j)` cancels the same way.
The fused path therefore computes in float64 whatever the input dtype and rounds once at the end: the
loss comes back in the input dtype or float32, whichever is wider (half precision holds about three
digits; the composable path's similarity also works in at least float32), the gradients in the input
dtype. Its decisions are those of a float64
computation on the given features. The price is three float64 matrix products (two in backward):
small next to the launches at training batch sizes, and on CPUs and data-centre GPUs; on GPUs with slow
float64 (most consumer cards) and batches of thousands, ``ILALoss(fused=False)`` is faster.

Ties. Pseudo-labels: a tied vote goes to the smallest label. Which of several sources tied in φ at the
k-th place enters the vote, and which of several targets tied in Γ at the μ cut is kept, is what
``torch.topk`` picks (not specified by PyTorch); the counts are always exactly ``k`` and
``round(μ N_t)``.
"""
import functools
import inspect
from typing import Optional

import torch
import torch.nn as nn

from .autograd import first_order_only
from .affinity import AffinityMiner, affinity_matrix, kept_count
from .losses import MultiSampleContrastiveLoss
from .pseudo_labels import KNNPseudoLabeller, check_k, check_label_range
from .similarity import InverseEuclideanSimilarity

__all__ = ["fused_settings", "fused_ila_loss", "FusedDecisions", "COMPUTE_DTYPE"]

#: the dtype every fused computation runs in (see the module docstring)
COMPUTE_DTYPE = torch.float64


#: the paper's parts, each with the settings the fused path reads from it; every other setting of a part must
#: keep its constructor's default (Eq. 7's ``ratio_terms='top-m'``, ``reduction='mean'``), so that a setting
#: added to a part later sends the loss down the composable path instead of being ignored by the fused one
FUSED_PARTS = {InverseEuclideanSimilarity: set(), AffinityMiner: {"pseudo_labeller", "mu"},
               KNNPseudoLabeller: {"k", "m"}, MultiSampleContrastiveLoss: {"temperature"}}


def _as_the_fused_path_computes(part: nn.Module) -> bool:
    """Whether ``part`` is one of :data:`FUSED_PARTS` (not a subclass, which may compute otherwise) whose
    settings the fused path does not read are all at their defaults."""
    reads = FUSED_PARTS.get(type(part))
    if reads is None:
        return False
    return all(name in reads or getattr(part, name, inspect.Parameter.empty) == default
               for name, default in _settings(type(part).__init__))


@functools.lru_cache(maxsize=None)
def _settings(constructor) -> tuple:
    """(name, default) of each named setting a part's ``__init__`` takes, ``self`` aside (a part without its own
    ``__init__`` has nn.Module's ``*args, **kwargs``: none); read once per constructor, the loss asks each call."""
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return tuple((name, given.default) for name, given in list(inspect.signature(constructor).parameters.items())[1:]
                 if given.kind in named)


def fused_settings(similarity: nn.Module, miner: nn.Module, metric_loss: nn.Module) -> Optional[dict]:
    """The settings of the fused path when the parts are exactly the paper's, else ``None``.

    The paper's parts are :class:`~ila_tllib.similarity.InverseEuclideanSimilarity`, an
    :class:`~ila_tllib.affinity.AffinityMiner` over :class:`~ila_tllib.pseudo_labels.KNNPseudoLabeller`
    and :class:`~ila_tllib.losses.MultiSampleContrastiveLoss`, with every setting but those the fused path
    reads (:data:`FUSED_PARTS`) at its default. Subclasses do not count: they may change what a part computes.
    """
    parts = (similarity, miner, getattr(miner, "pseudo_labeller", None), metric_loss)
    if (not all(map(_as_the_fused_path_computes, parts))
            # φ lies in (0, 1], so the logits φ/τ of a source spread over at most 1/τ: beyond about 700 a
            # positive's softmax share can underflow to 0 even in float64 and drop a real anchor; the
            # composable path works in log space
            or metric_loss.temperature < 1 / 700):
        return None
    return dict(k=miner.pseudo_labeller.k, m=miner.pseudo_labeller.m, mu=miner.mu,
                temperature=metric_loss.temperature)


@functools.lru_cache(maxsize=16)
def _class_ids(num_classes: int, device: torch.device) -> torch.Tensor:
    return torch.arange(num_classes, device=device)


class FusedDecisions:
    """What the fused path decided for one batch, with the fields of
    :class:`~ila_tllib.affinity.MinedAffinity`; ``kept`` and ``affinity`` are built when first read."""

    def __init__(self, y_s, labels, ratio, keep_mask, minus_anchors, dtype):
        self._y_s, self._labels, self._ratio, self._dtype = y_s, labels, ratio, dtype
        self._keep_mask, self._minus_anchors = keep_mask, minus_anchors
        self._kept = self._affinity = None

    @property
    def pseudo_labels(self) -> torch.Tensor:
        return self._labels.view(-1)

    @property
    def score(self) -> torch.Tensor:
        return self._ratio.view(-1).to(self._dtype)

    @property
    def kept(self) -> torch.Tensor:
        if self._kept is None:
            self._kept = self._keep_mask.view(-1) == 0
        return self._kept

    @property
    def affinity(self) -> torch.Tensor:
        if self._affinity is None:
            self._affinity = affinity_matrix(self._y_s, self.pseudo_labels, self.kept)
        return self._affinity

    @property
    def num_anchors(self) -> int:
        return -int(self._minus_anchors.sum().item())


def fused_ila_loss(f_s: torch.Tensor, y_s: torch.Tensor, f_t: torch.Tensor, k: int, mu: float,
                   m: Optional[int], temperature: float, num_classes: Optional[int] = None):
    """ILA-DA's loss with the paper's parts; returns ``(loss, FusedDecisions)``.

    Shapes as :class:`~ila_tllib.ila.ILALoss`; ``N_t`` must be at least 1.
    """
    n_s, n_t = f_s.shape[0], f_t.shape[0]
    check_k(k, n_s)
    # the label range and the largest class's count, read in one transfer
    low, top_label, largest_class = torch.stack(
        (y_s.min(), y_s.max(), torch.bincount(y_s.clamp(min=0)).max())).tolist()
    check_label_range(low, top_label, None if num_classes is None else int(num_classes))
    num_classes = top_label + 1 if num_classes is None else int(num_classes)
    m = largest_class if m is None else int(m)
    classes = _class_ids(num_classes, y_s.device)
    loss, labels, ratio, keep_mask, minus_anchors = _FusedILA.apply(
        f_s, f_t, y_s, classes, k, min(m, n_s), m < largest_class, kept_count(mu, n_t), 1.0 / temperature)
    return loss, FusedDecisions(y_s, labels, ratio, keep_mask, minus_anchors, loss.dtype)


class _FusedILA(torch.autograd.Function):
    r"""Forward: distances → φ → kNN labels → Γ → μ filter → MSC, and the backward by hand.

    Layout: every matrix is (N_t, N_s), one row per target, so the kNN vote and Γ reduce along rows.
    With :math:`p_{\cdot i}` the softmax of :math:`\phi_{\cdot i}/\tau` over the kept targets of source
    :math:`i` and :math:`q_i = \sum_{j \in P_i} p_{ji}`, the loss of an anchor is :math:`L_i = -\log q_i`
    (Eq. 5), and

    .. math::
        \frac{\partial L_i}{\partial \phi_{ji}} = \frac{1}{\tau}\Bigl(p_{ji} - \frac{[j \in P_i]\, p_{ji}}{q_i}\Bigr),
        \qquad \frac{\partial \phi_{ji}}{\partial b_j} = -\frac{\phi_{ji}^2}{d_{ji}} (b_j - a_i),

    so the feature gradients are :math:`\sum_i w_{ji} (b_j - a_i)` and :math:`\sum_j w_{ji} (a_i - b_j)` for one
    matrix :math:`w`, built in the forward pass up to the incoming scalar gradient (0 where :math:`d = 0`).
    """

    @staticmethod
    def forward(ctx, f_s, f_t, y_s, classes, k, m, like_top_m, n_keep, inv_tau):
        ctx.set_materialize_grads(False)     # the decisions get no gradient: no zero tensors for them
        dtype = COMPUTE_DTYPE
        a = f_s if f_s.dtype == dtype else f_s.to(dtype)
        b = f_t if f_t.dtype == dtype else f_t.to(dtype)
        n_t = b.shape[0]
        at = a.t()
        norm_a = torch.linalg.vector_norm(at, dim=0, keepdim=True)                 # (1, N_s)
        squared = torch.addmm(torch.addcmul((b * b).sum(1, keepdim=True), norm_a, norm_a), b, at, alpha=-2.0)
        distance = squared.clamp_min_(0.0).sqrt_()          # rounding can make d² slightly negative
        phi = distance.add(1.0).reciprocal_()                # Eq. 6, (N_t, N_s)
        # kNN vote; argmax takes the first maximum, i.e. the smallest label
        neighbour_labels = y_s.take(phi.topk(k, 1).indices)                        # (N_t, k)
        votes = (neighbour_labels.unsqueeze(2) == classes).sum(1, keepdim=True)     # (N_t, 1, C)
        labels = votes.argmax(2)                                                    # (N_t, 1)
        like = (labels == y_s).to(dtype)                                            # (N_t, N_s), 1 or 0
        # similarity ratio (Eq. 7): φ > 0, so zeroed entries are picked last and add nothing
        phi_like = phi * like
        like_sum = (phi_like.topk(m, 1).values if like_top_m else phi_like).sum(1, keepdim=True)
        phi_unlike = torch.sub(phi, phi_like, out=phi_like)
        ratio = like_sum / phi_unlike.topk(m, 1).values.sum(1, keepdim=True)       # no unlike source: +inf
        del phi_like, phi_unlike
        # μ filter as an additive mask over targets: 0 kept, -inf rejected
        if n_keep == n_t:
            keep_mask = ratio.new_zeros(n_t, 1)
            logits = phi if inv_tau == 1.0 else phi * inv_tau
        else:
            keep_mask = ratio.new_full((n_t, 1), float("-inf"))
            if n_keep > 0:
                keep_mask.scatter_(0, ratio.topk(n_keep, 0).indices, 0.0)
            logits = torch.add(keep_mask, phi, alpha=inv_tau)
        ctx.dtypes = f_s.dtype, f_t.dtype
        out_dtype = torch.promote_types(torch.promote_types(f_s.dtype, f_t.dtype), torch.float32)
        if n_keep == 0:                                      # nothing to contrast: an exact 0
            ctx.inputs = (f_s.shape, f_s.dtype), (f_t.shape, f_t.dtype)
            anchors = phi.new_zeros(1, a.shape[0])
            ctx.mark_non_differentiable(labels, ratio, keep_mask, anchors)
            return f_s.new_zeros((), dtype=out_dtype), labels, ratio, keep_mask, anchors
        ctx.inputs = None
        p = logits.softmax(0)                                # each source: over the kept targets
        del logits
        p_pos = p * like                                     # positives' share
        p_neg = p.sub_(p_pos)                                # negatives' share (p itself is not needed again)
        q_pos = p_pos.sum(0, keepdim=True)                   # (1, N_s)
        # -1 where a source has a positive and a negative (an anchor), 0 elsewhere
        minus_anchors = (q_pos * p_neg.sum(0, keepdim=True)).sign_().neg_()
        weights = minus_anchors / minus_anchors.sum((0, 1), keepdim=True).clamp_max_(-1.0)   # 1 / (anchors)
        inv_q = q_pos.pow(minus_anchors)                     # 1 / q for anchors, 1 elsewhere (no 0/0)
        loss = torch.xlogy(weights, inv_q).sum()             # mean of -log q over the anchors
        ctx.mark_non_differentiable(labels, ratio, keep_mask, minus_anchors)
        if not any(ctx.needs_input_grad[:2]):
            return loss.to(out_dtype), labels, ratio, keep_mask, minus_anchors
        # w = (∂L/∂d) / d up to the incoming gradient, -φ²/d · ∂L/∂φ with ∂L/∂φ = weight · (p - p_pos / q):
        # weight · (p_pos (1/q - 1) - p_neg) · φ²/d, and 0 where d = 0 (duplicated features); in p_pos's storage
        w = p_pos.mul_(weights * (inv_q - 1.0)).addcmul_(p_neg, weights, value=-1.0)
        w.mul_(phi).mul_(phi).div_(distance).nan_to_num_(0.0, 0.0, 0.0)
        if inv_tau != 1.0:
            w.mul_(inv_tau)
        ctx.save_for_backward(a, b, w)
        return loss.to(out_dtype), labels, ratio, keep_mask, minus_anchors

    @staticmethod
    @first_order_only
    def backward(ctx, grad, *unused):
        if grad is None:
            return (None,) * 9
        if ctx.inputs is not None:
            return tuple(grad.new_zeros(shape, dtype=dtype) for shape, dtype in ctx.inputs) + (None,) * 7
        dtype_s, dtype_t = ctx.dtypes
        a, b, w = ctx.saved_tensors
        w = w * grad
        grad_s = grad_t = None
        if ctx.needs_input_grad[0]:
            wt = w.t()
            grad_s = torch.addmm(a * wt.sum(1, keepdim=True), wt, b, alpha=-1.0).to(dtype_s)
        if ctx.needs_input_grad[1]:
            grad_t = torch.addmm(b * w.sum(1, keepdim=True), w, a, alpha=-1.0).to(dtype_t)
        return grad_s, grad_t, None, None, None, None, None, None, None
