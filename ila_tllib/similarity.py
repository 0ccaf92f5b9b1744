"""Similarity functions between feature sets (the paper's φ, Eq. 6).

A similarity maps two feature matrices to a dense similarity matrix. ILA-DA needs
two properties of it: larger means more alike, and no value is negative (the
similarity-ratio test, Eq. 7, divides sums of similarities: a negative φ can invert
its ranking and keep the least reliable targets; :class:`~ila_tllib.ILALoss`
refuses a similarity module of one's own that gives one). Every part downstream (kNN
pseudo-labels, the similarity-ratio test, the contrastive loss) reads this one
matrix, so swapping φ is a one-argument change.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from .autograd import first_order_only
from .parts import build_part

__all__ = ["InverseEuclideanSimilarity", "CosineSimilarity", "CenteredCosineSimilarity", "get_similarity",
           "is_builtin", "SIMILARITIES"]


class InverseEuclideanSimilarity(nn.Module):
    r"""The paper's similarity (Eq. 6), one over one plus the (unsquared) Euclidean distance

    .. math::
        \phi(a, b) = \frac{1}{1 + \lVert a - b \rVert_2}

    Its range is :math:`(0, 1]`, with 1 for identical features. It is computed in at least float32, whatever
    the inputs' precision or autocast (the output has that type), from one matrix product
    (:math:`d^2 = \lVert a\rVert^2 + \lVert b\rVert^2 - 2 a^\top b`): in float32 a distance below about
    :math:`10^{-3}` of the features' norm is rounding noise (identical features of norm 32 may give 0.98,
    not 1); pass float64 features where such near-duplicates matter.

    Inputs:
        - a (tensor): features of shape :math:`(N, D)`
        - b (tensor): features of shape :math:`(M, D)`

    Shape:
        - Output: :math:`(N, M)`, entry ``[i, j]`` is :math:`\phi(a_i, b_j)`.
    """

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        # d² = ‖a‖² + ‖b‖² − 2aᵀb overflows half precision (65504) and cancels in it
        with torch.autocast(a.device.type, enabled=False):
            return _InverseEuclidean.apply(*_at_least_float32(a, b))


def _at_least_float32(a: torch.Tensor, b: torch.Tensor):
    """``a`` and ``b`` in their common dtype or float32, whichever is wider: the similarities decide the kNN
    vote and Γ, which half precision's three digits would blur. Callers run outside autocast, which would
    cast a matrix product back down."""
    dtype = torch.promote_types(torch.promote_types(a.dtype, b.dtype), torch.float32)
    return a.to(dtype), b.to(dtype)


class _InverseEuclidean(torch.autograd.Function):
    r""":math:`\phi = 1 / (1 + d)` with :math:`d^2 = \lVert a\rVert^2 + \lVert b\rVert^2 - 2 a^\top b` from one
    matrix product, and a hand-written backward.

    Autograd through ``torch.cdist`` records a dozen small nodes; on small batches their overhead
    outweighs the arithmetic. The gradient is
    :math:`\partial\phi_{ij}/\partial a_i = -\phi_{ij}^2 (a_i - b_j) / d_{ij}`, taken as 0 where two
    features coincide (:math:`d = 0`), so duplicated features stay finite.
    """

    @staticmethod
    def forward(ctx, a, b):
        squared = torch.addmm((a * a).sum(1, keepdim=True) + (b * b).sum(1), a, b.t(), alpha=-2.0)
        distance = squared.clamp_min_(0.0).sqrt_()   # rounding can make d² slightly negative
        phi = distance.add(1.0).reciprocal_()
        ctx.save_for_backward(a, b, distance, phi)
        return phi

    @staticmethod
    @first_order_only
    def backward(ctx, grad):
        a, b, distance, phi = ctx.saved_tensors
        # w_ij = dL/dd_ij / d_ij; then dL/da_i = sum_j w_ij (a_i - b_j), dL/db_j = sum_i w_ij (b_j - a_i)
        w = torch.where(distance > 0, grad * phi * phi / distance, 0.0).neg_()
        grad_a = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_a = w.sum(1, keepdim=True) * a - w @ b
        if ctx.needs_input_grad[1]:
            grad_b = w.sum(0).unsqueeze(1) * b - w.t() @ a
        return grad_a, grad_b


class CosineSimilarity(nn.Module):
    r"""Cosine similarity rescaled to :math:`[0, 1]`:
    :math:`\phi(a, b) = \tfrac{1}{2}\bigl(1 + a^\top b / (\lVert a\rVert \lVert b\rVert)\bigr)`.

    The rescaling keeps φ non-negative, as the similarity-ratio test (Eq. 7) assumes: a raw cosine can
    make the sums of like and unlike similarities change sign and invert the ranking. A zero feature
    has similarity 1/2 to everything. In the MSC loss the halved range acts as a doubled temperature.
    Computed in at least float32, whatever the inputs' precision or autocast, as
    :class:`InverseEuclideanSimilarity`.

    Inputs and shape as :class:`InverseEuclideanSimilarity`.
    """

    def __init__(self, eps: float = 1e-8):
        super().__init__()
        self.eps = eps

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        with torch.autocast(a.device.type, enabled=False):
            return self._phi(*_at_least_float32(a, b))

    def _phi(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return 0.5 * (1.0 + F.normalize(a, dim=1, eps=self.eps) @ F.normalize(b, dim=1, eps=self.eps).t())


class CenteredCosineSimilarity(CosineSimilarity):
    r""":class:`CosineSimilarity` of each set's features taken about that set's own mean:

    .. math::
        \phi(a_i, b_j) = \tfrac{1}{2}\Bigl(1 + \frac{(a_i - \bar a)^\top (b_j - \bar b)}
        {\lVert a_i - \bar a\rVert \, \lVert b_j - \bar b\rVert}\Bigr),
        \quad \bar a = \tfrac{1}{N} \textstyle\sum_i a_i, \ \bar b = \tfrac{1}{M} \textstyle\sum_j b_j

    Features after a ReLU are non-negative: their common direction lifts every plain cosine and weighs in
    every kNN vote and Γ (BSP's spectral penalty counters dominant directions by changing the features).
    Taking each domain's batch about its own mean removes that direction, and the difference of the two
    domains' means with it, without changing what the network learns. Unlike the other similarities
    it depends on the whole batch: one row's similarities move with the others' mean. A set of one row
    centres to zero, whose similarity to everything is 1/2.

    Inputs and shape as :class:`InverseEuclideanSimilarity`.
    """

    def _phi(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return super()._phi(a - a.mean(0, keepdim=True), b - b.mean(0, keepdim=True))


SIMILARITIES = {
    "inverse_euclidean": InverseEuclideanSimilarity,
    "cosine": CosineSimilarity,
    "centered_cosine": CenteredCosineSimilarity,
}


#: the similarities this module defines, each non-negative by construction (a class added to the table later
#: is one of one's own, checked as any other)
_BUILT_IN = tuple(SIMILARITIES.values())


def is_builtin(similarity: nn.Module) -> bool:
    """Whether ``similarity`` is one of the similarities defined here (each non-negative by construction)."""
    return type(similarity) in _BUILT_IN


def get_similarity(name) -> nn.Module:
    """A similarity of :data:`SIMILARITIES` by name; a module passes through."""
    return build_part(SIMILARITIES, name, "similarity")
