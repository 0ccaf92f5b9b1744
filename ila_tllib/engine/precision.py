"""``--amp`` and ``--channels-last``: how the networks run, decided here and applied by the loop.

``--amp`` runs the networks — backbone, bottleneck, heads and the domain discriminator — under
``torch.autocast`` in bfloat16, and every loss in float32: the classifier's outputs are cast back to
float32 before CE, the adversarial loss and ILA-DA's term (whose mining and loss must not lose the short
distances), and the discriminator's output is float32 before the adversarial loss's binary cross-entropy
(which CUDA's autocast refuses to run in low precision). Parameters, gradients and the optimiser stay in
float32; bfloat16 has float32's range, so no loss scaling is needed.

``--channels-last`` stores the classifier's 4-D weights and the input images in NHWC order, the layout
GPU convolutions with tensor cores (and oneDNN on CPUs) prefer. Neither flag changes what is computed,
only how: results agree with the default run up to rounding.
"""
import contextlib
import functools

import torch
import torch.nn as nn

from .errors import UsageError
from .method import Outputs

__all__ = ["add_arguments", "check_device", "autocast", "network_inputs", "upcast", "in_float32", "prepare_modules"]

_LOW_PRECISION = (torch.bfloat16, torch.float16)


def add_arguments(parser):
    parser.add_argument('--amp', action='store_true',
                        help='bfloat16 autocast for the networks (backbone, bottleneck, heads, discriminator); '
                             'every loss, ILA-DA\'s mining included, in float32')
    parser.add_argument('--channels-last', action='store_true',
                        help='NHWC memory format for the classifier and its input images')


def check_device(args, device: torch.device):
    if getattr(args, 'amp', False) and device.type == 'cuda' and not torch.cuda.is_bf16_supported():
        raise UsageError(f"--amp computes in bfloat16, which {torch.cuda.get_device_name(device)} does not "
                         f"support; leave --amp out")


def autocast(args, device: torch.device):
    """bfloat16 autocast on ``device`` with ``--amp``, else nothing."""
    if not getattr(args, 'amp', False):
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def network_inputs(args, images: torch.Tensor) -> torch.Tensor:
    """The images in the memory format the classifier expects."""
    if getattr(args, 'channels_last', False) and images.dim() == 4:
        return images.contiguous(memory_format=torch.channels_last)
    return images


def upcast(tensor: torch.Tensor) -> torch.Tensor:
    """A bfloat16 or float16 tensor as float32; any other tensor unchanged."""
    return tensor.float() if tensor.dtype in _LOW_PRECISION else tensor


def in_float32(out: Outputs) -> Outputs:
    """The network's outputs, upcast where autocast made them bfloat16, for the losses."""
    return Outputs(upcast(out.logits), upcast(out.features), tuple(upcast(h) for h in out.heads))


def _autocast_forward(forward, device_type, *inputs, **kwargs):
    with torch.autocast(device_type, dtype=torch.bfloat16):
        out = forward(*inputs, **kwargs)
    return upcast(out)


def prepare_modules(args, classifier: nn.Module, transfer: nn.Module, device: torch.device):
    """Apply the flags to freshly built modules (before DistributedDataParallel wraps them).

    With ``--amp`` the domain discriminator (the transfer module's ``domain_discriminator``, if it has one)
    runs under autocast and returns float32: the adversarial loss around it runs outside autocast. The
    module itself is unchanged (same parameters, same state_dict keys); only its ``forward`` is wrapped.
    """
    check_device(args, device)
    if getattr(args, 'channels_last', False):
        classifier.to(memory_format=torch.channels_last)
    discriminator = getattr(transfer, 'domain_discriminator', None)
    if getattr(args, 'amp', False) and isinstance(discriminator, nn.Module):
        discriminator.forward = functools.partial(_autocast_forward, discriminator.forward, device.type)
