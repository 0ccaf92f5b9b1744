"""Adversarial alignment losses: DANN's domain adversarial loss and CDAN's conditional one."""
import math
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from .grl import WarmStartGradientReverseLayer
from .meter import accuracy, binary_accuracy

__all__ = ["DomainAdversarialLoss", "ConditionalDomainAdversarialLoss", "MultiLinearMap",
           "RandomizedMultiLinearMap", "entropy"]


def _default_grl() -> WarmStartGradientReverseLayer:
    return WarmStartGradientReverseLayer(alpha=1., lo=0., hi=1., max_iters=1000, auto_step=True)


def _reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError("reduction must be 'mean', 'sum' or 'none', got {!r}".format(reduction))


def entropy(predictions: torch.Tensor, reduction: str = "none") -> torch.Tensor:
    r"""Entropy of each row of a probability matrix, :math:`H(p) = -\sum_c p_c \log(p_c + \epsilon)`.

    :math:`\epsilon = 10^{-5}` keeps zero probabilities finite.

    Args:
        predictions (tensor): probabilities, :math:`(N, C)`, rows summing to one
        reduction (str, optional): ``'none'`` (per row) or ``'mean'``. Default: ``'none'``

    Shape:
        - Output: :math:`(N,)`, or a scalar with ``reduction='mean'``.
    """
    h = -(predictions * torch.log(predictions + 1e-5)).sum(dim=1)
    return h.mean() if reduction == "mean" else h


class DomainAdversarialLoss(nn.Module):
    r"""DANN's domain adversarial loss (Ganin et al., ICML 2015)

    With discriminator :math:`D` (probability of *source*) and gradient reversal :math:`R`,

    .. math::
        \mathcal{L} = \tfrac{1}{2}\Big(\mathrm{BCE}\big(D(R(f^s)), 1\big) + \mathrm{BCE}\big(D(R(f^t)), 0\big)\Big),

    each BCE optionally weighted per sample by :math:`w^s`, :math:`w^t`. Minimising it trains
    :math:`D`; :math:`R` makes the same backward pass push the features to confuse :math:`D`.

    Args:
        domain_discriminator (torch.nn.Module): maps :math:`(N, F)` features to :math:`(N, 1)`
            probabilities, or to :math:`(N, 2)` logits when ``sigmoid=False``
        reduction (str, optional): ``'none'`` | ``'mean'`` | ``'sum'``. Default: ``'mean'``
        grl (torch.nn.Module, optional): gradient reversal layer. Default:
            ``WarmStartGradientReverseLayer(alpha=1., lo=0., hi=1., max_iters=1000, auto_step=True)``
        sigmoid (bool, optional): discriminator ends in a sigmoid (BCE); else two logits
            (cross entropy, domain 1 = source). Default: True

    Attributes:
        domain_discriminator_accuracy (tensor): accuracy of :math:`D` on the last call, in %
            (the mean of the source and target accuracies in the sigmoid case).

    Inputs:
        - f_s (tensor): source features :math:`f^s`
        - f_t (tensor): target features :math:`f^t`
        - w_s (tensor, optional): per-sample weights of the source samples. Default: ones
        - w_t (tensor, optional): per-sample weights of the target samples. Default: ones

    Shape:
        - f_s, f_t: :math:`(N, F)`
        - w_s, w_t: :math:`(N,)`
        - Output: scalar; with ``reduction='none'`` the per-sample loss, :math:`(N, 1)` in the
          sigmoid case (source and target paired, so equal batch sizes) and :math:`(2N,)` otherwise.
    """

    def __init__(self, domain_discriminator: nn.Module, reduction: Optional[str] = "mean",
                 grl: Optional[nn.Module] = None, sigmoid: bool = True):
        super().__init__()
        self.grl = _default_grl() if grl is None else grl
        self.domain_discriminator = domain_discriminator
        self.reduction = reduction
        self.sigmoid = sigmoid
        self.domain_discriminator_accuracy = None

    def forward(self, f_s: torch.Tensor, f_t: torch.Tensor,
                w_s: Optional[torch.Tensor] = None, w_t: Optional[torch.Tensor] = None) -> torch.Tensor:
        n_s, n_t = f_s.size(0), f_t.size(0)
        # One discriminator pass over both domains, so BatchNorm sees the joint batch.
        d = self.domain_discriminator(self.grl(torch.cat((f_s, f_t), dim=0)))
        if w_s is None:
            w_s = torch.ones(n_s, device=d.device, dtype=d.dtype)
        if w_t is None:
            w_t = torch.ones(n_t, device=d.device, dtype=d.dtype)

        if self.sigmoid:
            d_s, d_t = d[:n_s], d[n_s:]
            y_s, y_t = torch.ones_like(d_s), torch.zeros_like(d_t)
            self.domain_discriminator_accuracy = 0.5 * (binary_accuracy(d_s, y_s) + binary_accuracy(d_t, y_t))
            loss_s = F.binary_cross_entropy(d_s, y_s, weight=w_s.view_as(d_s), reduction=self.reduction)
            loss_t = F.binary_cross_entropy(d_t, y_t, weight=w_t.view_as(d_t), reduction=self.reduction)
            return 0.5 * (loss_s + loss_t)

        label = torch.cat((torch.ones(n_s, dtype=torch.long), torch.zeros(n_t, dtype=torch.long))).to(d.device)
        self.domain_discriminator_accuracy = accuracy(d, label)[0]
        loss = F.cross_entropy(d, label, reduction="none") * torch.cat((w_s.view(-1), w_t.view(-1)))
        return _reduce(loss, self.reduction)


class MultiLinearMap(nn.Module):
    r"""Multilinear map :math:`T_\otimes(f, g) = g \otimes f`, flattened per sample

    Entry :math:`c \cdot F + k` of row :math:`i` is :math:`g_{ic} f_{ik}` (class index outer,
    feature index inner).

    Inputs:
        - f (tensor): features, :math:`(N, F)`
        - g (tensor): class probabilities, :math:`(N, C)`

    Shape:
        - Output: :math:`(N, C \cdot F)`
    """

    def forward(self, f: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        return torch.bmm(g.unsqueeze(2), f.unsqueeze(1)).view(f.size(0), -1)


class RandomizedMultiLinearMap(nn.Module):
    r"""Randomized multilinear map :math:`T_\odot(f, g) = \frac{1}{\sqrt{d}} (f R_f) \odot (g R_g)`

    An unbiased low-dimensional stand-in for :class:`MultiLinearMap` when :math:`C \cdot F` is
    too large. :math:`R_f` and :math:`R_g` are standard Gaussian, drawn once at construction
    and never trained; they are buffers, so they follow ``.to(device)`` and are saved in
    ``state_dict`` (a resumed run keeps the same map).

    Args:
        features_dim (int): :math:`F`
        num_classes (int): :math:`C`
        output_dim (int, optional): :math:`d`. Default: 1024

    Inputs:
        - f (tensor): features, :math:`(N, F)`
        - g (tensor): class probabilities, :math:`(N, C)`

    Shape:
        - Output: :math:`(N, d)`
    """

    def __init__(self, features_dim: int, num_classes: int, output_dim: Optional[int] = 1024):
        super().__init__()
        self.register_buffer("Rf", torch.randn(features_dim, output_dim))
        self.register_buffer("Rg", torch.randn(num_classes, output_dim))
        self.output_dim = output_dim

    def forward(self, f: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        return (f @ self.Rf.to(f.device)) * (g @ self.Rg.to(g.device)) / math.sqrt(float(self.output_dim))


class ConditionalDomainAdversarialLoss(nn.Module):
    r"""CDAN's conditional domain adversarial loss (Long et al., NeurIPS 2018)

    The discriminator sees the features conditioned on the (detached) predictions,
    :math:`h = T(f, g)` with :math:`g = \mathrm{softmax}(\text{logits})`, and :math:`T` a
    :class:`MultiLinearMap` or :class:`RandomizedMultiLinearMap`:

    .. math::
        \mathcal{L} = \frac{1}{N} \sum_{i} w_i \, \mathrm{BCE}\big(D(R(h_i)), y_i\big),
        \qquad y_i = 1 \text{ (source)}, \; 0 \text{ (target)},

    over the :math:`N` source and target samples together. Without entropy conditioning
    :math:`w_i = 1`; with it (CDAN+E) :math:`w_i \propto 1 + e^{-H(g_i)}`, normalised so that
    :math:`\sum_i w_i = N`, which favours confident samples.

    Args:
        domain_discriminator (torch.nn.Module): maps :math:`(N, \dim h)` to :math:`(N, 1)`
            probabilities, or to :math:`(N, 2)` logits when ``sigmoid=False``
        entropy_conditioning (bool, optional): weight samples by prediction certainty. Default: False
        randomized (bool, optional): use :class:`RandomizedMultiLinearMap`. Default: False
        num_classes (int, optional): :math:`C`, needed only if ``randomized``. Default: -1
        features_dim (int, optional): :math:`F`, needed only if ``randomized``. Default: -1
        randomized_dim (int, optional): :math:`d` of the randomized map. Default: 1024
        reduction (str, optional): ``'none'`` | ``'mean'`` | ``'sum'``. Default: ``'mean'``
        sigmoid (bool, optional): discriminator ends in a sigmoid (BCE); else two logits
            (cross entropy, domain 1 = source). Default: True
        grl (torch.nn.Module, optional): gradient reversal layer. Default:
            ``WarmStartGradientReverseLayer(alpha=1., lo=0., hi=1., max_iters=1000, auto_step=True)``

    Attributes:
        domain_discriminator_accuracy (tensor): accuracy of :math:`D` on the last call, in %.

    Inputs:
        - g_s (tensor): source logits (unnormalised)
        - f_s (tensor): source features
        - g_t (tensor): target logits (unnormalised)
        - f_t (tensor): target features

    Shape:
        - g_s, g_t: :math:`(N, C)`
        - f_s, f_t: :math:`(N, F)`
        - Output: scalar; per-sample with ``reduction='none'``.
    """

    def __init__(self, domain_discriminator: nn.Module, entropy_conditioning: Optional[bool] = False,
                 randomized: Optional[bool] = False, num_classes: Optional[int] = -1,
                 features_dim: Optional[int] = -1, randomized_dim: Optional[int] = 1024,
                 reduction: Optional[str] = "mean", sigmoid: bool = True, grl: Optional[nn.Module] = None):
        super().__init__()
        self.domain_discriminator = domain_discriminator
        self.grl = _default_grl() if grl is None else grl
        self.entropy_conditioning = entropy_conditioning
        self.reduction = reduction
        self.sigmoid = sigmoid
        if randomized:
            if not (num_classes > 0 and features_dim > 0 and randomized_dim > 0):
                raise ValueError("randomized CDAN needs positive num_classes, features_dim and randomized_dim")
            self.map = RandomizedMultiLinearMap(features_dim, num_classes, randomized_dim)
        else:
            self.map = MultiLinearMap()
        self.domain_discriminator_accuracy = None

    def forward(self, g_s: torch.Tensor, f_s: torch.Tensor, g_t: torch.Tensor, f_t: torch.Tensor) -> torch.Tensor:
        n_s, n_t = g_s.size(0), g_t.size(0)
        f = torch.cat((f_s, f_t), dim=0)
        # The predictions only condition the discriminator; no gradient flows into them.
        g = F.softmax(torch.cat((g_s, g_t), dim=0), dim=1).detach()
        d = self.domain_discriminator(self.grl(self.map(f, g)))

        weight = None
        if self.entropy_conditioning:
            weight = 1.0 + torch.exp(-entropy(g))
            weight = weight / weight.sum() * f.size(0)

        if self.sigmoid:
            label = torch.cat((torch.ones(n_s, 1), torch.zeros(n_t, 1))).to(device=d.device, dtype=d.dtype)
            self.domain_discriminator_accuracy = binary_accuracy(d, label)
            w = None if weight is None else weight.view_as(d)
            return F.binary_cross_entropy(d, label, weight=w, reduction=self.reduction)

        label = torch.cat((torch.ones(n_s, dtype=torch.long), torch.zeros(n_t, dtype=torch.long))).to(d.device)
        self.domain_discriminator_accuracy = accuracy(d, label)[0]
        loss = F.cross_entropy(d, label, reduction="none")
        if weight is not None:
            loss = loss * weight
        return _reduce(loss, self.reduction)
