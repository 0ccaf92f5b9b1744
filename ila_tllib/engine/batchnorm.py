"""BatchNorm statistics from a leading part of the batch.

ILA's extra class-balanced source batch goes through the network in the same forward pass as tllib's
source and target batches. Left alone, every BatchNorm layer in training mode would normalise with the
statistics of all three, so adding ILA would change the normalisation that CE and the adversary see
(more source rows, and class-balanced ones) and the running statistics evaluation uses.
:func:`batch_statistics_from` keeps those exactly tllib's: the statistics come from the first ``rows``
samples (tllib's source + target) and are applied to every row, the extra batch included, so that ILA
compares features normalised alike.
"""
import contextlib
import types
from typing import Optional

import torch
import torch.nn as nn

__all__ = ["batch_statistics_from"]


def _normalise_with_leading_rows(bn: nn.modules.batchnorm._BatchNorm, x: torch.Tensor, rows: int) -> torch.Tensor:
    """``bn``'s training-mode forward, with the batch statistics of ``x[:rows]`` applied to all of ``x``."""
    dims = [0] + list(range(2, x.dim()))
    shape = [1, -1] + [1] * (x.dim() - 2)
    dtype = torch.promote_types(x.dtype, torch.float32)      # bfloat16 under autocast: statistics in float32
    lead = x[:rows].to(dtype)
    count = lead.numel() // lead.shape[1]
    if count <= 1:
        raise ValueError(f"BatchNorm needs more than 1 value per channel in training, got {count} "
                         f"(the statistics come from the first {rows} rows)")
    var, mean = torch.var_mean(lead, dim=dims, unbiased=False)
    if bn.track_running_stats and bn.running_mean is not None:
        with torch.no_grad():
            bn.num_batches_tracked.add_(1)
            momentum = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
            bn.running_mean.lerp_(mean.to(bn.running_mean.dtype), momentum)     # as BatchNorm: the unbiased
            bn.running_var.lerp_((var * count / (count - 1)).to(bn.running_var.dtype), momentum)  # variance
    y = (x.to(dtype) - mean.view(shape)) * torch.rsqrt(var.view(shape) + bn.eps)
    if bn.affine:
        y = y * bn.weight.view(shape) + bn.bias.view(shape)
    return y.to(x.dtype)


@contextlib.contextmanager
def batch_statistics_from(module: nn.Module, rows: Optional[int]):
    """Within the block, every BatchNorm layer of ``module`` in training mode normalises its whole input with
    the mean and variance of the first ``rows`` samples and updates its running statistics from them alone
    (``rows`` None: every layer as it is). Layers in eval mode and :class:`~torch.nn.SyncBatchNorm` (whose
    statistics span processes) are left as they are. Dimension 0 must be the samples (a layer that folds
    other dimensions into it would see the wrong rows)."""
    patched = []
    if rows is None:          # a batch whose every row is tllib's: each layer as it is
        yield
        return
    for bn in module.modules():
        if isinstance(bn, nn.modules.batchnorm._BatchNorm) and not isinstance(bn, nn.SyncBatchNorm):
            original = bn.forward
            patched.append((bn, bn.__dict__.get('forward')))    # a forward set on the instance, if any

            def forward(self, x, _original=original):
                if not self.training or x.shape[0] <= rows:
                    return _original(x)
                return _normalise_with_leading_rows(self, x, rows)
            bn.forward = types.MethodType(forward, bn)
    try:
        yield
    finally:
        for bn, before in patched:
            if before is None:
                del bn.forward     # back to the class's forward
            else:
                bn.forward = before
