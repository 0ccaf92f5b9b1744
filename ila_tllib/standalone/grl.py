"""Gradient reversal: identity on the way forward, a negated (scaled) gradient on the way back.

Adversarial alignment trains the feature extractor to *maximise* the domain
discriminator's loss while the discriminator minimises it; putting a gradient
reversal layer between them lets one ordinary ``loss.backward()`` do both.
"""
import math
from typing import Any, Optional, Tuple

import torch
import torch.nn as nn
from torch.autograd import Function

__all__ = ["GradientReverseFunction", "GradientReverseLayer", "WarmStartGradientReverseLayer"]


class GradientReverseFunction(Function):
    r"""Autograd function :math:`R_\lambda` with :math:`R_\lambda(x) = x` and
    :math:`\partial R_\lambda / \partial x = -\lambda I`.

    Inputs:
        - input (tensor): any tensor
        - coeff (float, optional): :math:`\lambda`. Default: 1.0

    Shape:
        - Output: same as ``input``.
    """

    @staticmethod
    def forward(ctx: Any, input: torch.Tensor, coeff: Optional[float] = 1.0) -> torch.Tensor:
        ctx.coeff = float(coeff)
        # A fresh tensor (not a view of ``input``), so later in-place ops on the
        # output are legal and cannot reach back into the caller's tensor.
        return input.clone()

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> Tuple[torch.Tensor, None]:
        return grad_output.neg() * ctx.coeff, None


class GradientReverseLayer(nn.Module):
    r"""Module form of :class:`GradientReverseFunction`.

    Args:
        coeff (float, optional): default :math:`\lambda`, the scale of the reversed gradient. Default: 1.0

    Inputs:
        - input (tensor): any tensor
        - coeff (float, optional): overrides the layer's ``coeff`` for this call

    Shape:
        - Output: same as ``input``.
    """

    def __init__(self, coeff: float = 1.0):
        super().__init__()
        self.coeff = coeff

    def forward(self, input: torch.Tensor, coeff: Optional[float] = None) -> torch.Tensor:
        return GradientReverseFunction.apply(input, self.coeff if coeff is None else coeff)


class WarmStartGradientReverseLayer(nn.Module):
    r"""Gradient reversal whose coefficient grows smoothly from ``lo`` to ``hi`` (DANN's warm start)

    At iteration :math:`i` the coefficient is

    .. math::
        \lambda_i = \frac{2 (hi - lo)}{1 + \exp(-\alpha \, i / N)} - (hi - lo) + lo,

    where :math:`N` is ``max_iters``. So :math:`\lambda_0 = lo` and :math:`\lambda_i \to hi`.
    Starting near zero keeps the noisy early discriminator from wrecking the features.

    Args:
        alpha (float, optional): :math:`\alpha`, steepness of the schedule. Default: 1.0
        lo (float, optional): initial coefficient. Default: 0.0
        hi (float, optional): limit of the coefficient. Default: 1.0
        max_iters (int, optional): :math:`N`, the iteration scale. Default: 1000
        auto_step (bool, optional): if True, every forward call advances the iteration
            counter (after the coefficient for that call is computed). Otherwise call
            :meth:`step` yourself. Default: True

    Attributes:
        iter_num (int): the iteration counter :math:`i`; save and restore it to resume the schedule.

    Inputs:
        - input (tensor): any tensor

    Shape:
        - Output: same as ``input``.
    """

    def __init__(self, alpha: Optional[float] = 1.0, lo: Optional[float] = 0.0, hi: Optional[float] = 1.0,
                 max_iters: Optional[int] = 1000, auto_step: Optional[bool] = True):
        super().__init__()
        self.alpha = alpha
        self.lo = lo
        self.hi = hi
        self.max_iters = max_iters
        self.auto_step = auto_step
        self.iter_num = 0

    @property
    def coeff(self) -> float:
        """The coefficient :math:`\\lambda_i` at the current ``iter_num``."""
        span = self.hi - self.lo
        return 2.0 * span / (1.0 + math.exp(-self.alpha * self.iter_num / self.max_iters)) - span + self.lo

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        coeff = self.coeff
        if self.auto_step:
            self.step()
        return GradientReverseFunction.apply(input, coeff)

    def step(self):
        """Advance the iteration counter by one."""
        self.iter_num += 1

    def extra_repr(self) -> str:
        return "alpha={}, lo={}, hi={}, max_iters={}, auto_step={}, iter_num={}".format(
            self.alpha, self.lo, self.hi, self.max_iters, self.auto_step, self.iter_num)
