"""Multi-process training: let the ILA loss see the *global* batch of all data-parallel processes.

ILA-DA's decisions are batch-level: the kNN pseudo-labels, the ratio test and the μ filter all rank a
target against the other samples of the batch. With ``N`` processes each holding ``1/N`` of the batch,
a per-process loss would mine affinities inside a smaller batch than a single-process run — a
different method. :class:`DistributedILALoss` gathers the features of every process, so each process
computes the same loss on the global batch, and hands back gradients that make
``DistributedDataParallel`` reproduce the single-process parameter gradients.

The helpers degrade gracefully: without an initialised process group (or with one process) they act
as the single-process identity, so the same training script runs with or without ``torchrun``.
"""
from typing import List, Optional, Tuple, Union

import torch
import torch.distributed as dist
import torch.nn as nn

from .ila import ILALoss

__all__ = ["is_distributed", "world_size", "rank", "is_main_process", "all_gather_no_grad",
           "gather_with_grad", "reduce_sum", "reduce_mean", "DistributedILALoss"]


def is_distributed() -> bool:
    """True when a default process group is initialised and holds more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    """Number of processes in the default group (1 without one)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    """This process's rank in the default group (0 without one)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main_process() -> bool:
    """True on rank 0 (and in a single process): the one that logs and saves checkpoints."""
    return rank() == 0


def _comm_device(tensor: Optional[torch.Tensor] = None) -> torch.device:
    # NCCL only moves CUDA tensors; gloo handles CPU (and CUDA) tensors.
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return tensor.device if tensor is not None else torch.device("cpu")


def _check_same_shape(tensor: torch.Tensor, name: str):
    """Raise ``ValueError`` on every rank when the ranks' tensors differ in shape.

    ``all_gather`` needs equal shapes and would otherwise hang or fail with an obscure message. Every
    rank learns all shapes, so every rank raises together and none is left waiting in a collective.
    """
    max_dims = 8
    if tensor.dim() > max_dims:
        raise ValueError(f"{name}: at most {max_dims} dimensions are supported, got {tensor.dim()}")
    code = torch.full((max_dims + 1,), -1, dtype=torch.long)
    code[0] = tensor.dim()
    code[1:tensor.dim() + 1] = torch.tensor(tensor.shape, dtype=torch.long)
    code = code.to(_comm_device(tensor))
    codes = [torch.empty_like(code) for _ in range(dist.get_world_size())]
    dist.all_gather(codes, code)
    shapes = [tuple(c[1:int(c[0]) + 1].tolist()) for c in codes]
    if any(s != shapes[0] for s in shapes):
        raise ValueError(f"{name}: all_gather needs the same shape on every rank, got {shapes} (rank order). "
                         f"Give every process an equal slice: ClassBalancedSampler(num_replicas, rank) for "
                         f"the source and drop_last=True for the target loader.")


def _gather_parts(tensor: torch.Tensor, name: str) -> List[torch.Tensor]:
    """Every rank's copy of ``tensor`` (detached), in rank order."""
    if tensor.dim() == 0:
        raise ValueError(f"{name}: cannot concatenate 0-dim tensors; give at least one dimension")
    _check_same_shape(tensor, name)
    device = tensor.device
    local = tensor.detach().contiguous().to(_comm_device(tensor))
    parts = [torch.empty_like(local) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, local)
    return [p.to(device) for p in parts]


def all_gather_no_grad(tensor: torch.Tensor) -> torch.Tensor:
    r"""Concatenate ``tensor`` over the ranks along dim 0, in rank order, without gradient.

    For labels, logits used only for decisions, and evaluation outputs. Single process: ``tensor``.

    Shape:
        - Input: :math:`(n, *)`, the same on every rank (checked)
        - Output: :math:`(N \cdot n, *)`
    """
    if not is_distributed():
        return tensor.detach()
    return torch.cat(_gather_parts(tensor, "all_gather_no_grad"))


def gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    r"""Concatenate ``tensor`` over the ranks along dim 0, in rank order, keeping the local autograd graph.

    The slice at this rank's rows *is* the input tensor (not a copy), so a loss :math:`L` computed from
    the result sends :math:`\partial L / \partial x_r` back into this rank's graph. The other ranks'
    slices are constants here: their gradients are computed by their own ranks, each of which evaluates
    the same :math:`L`. No communication happens in backward.

    Consequence for parameter gradients: rank ``r`` obtains the part of :math:`dL/d\theta` that flows
    through its own samples, and these parts *sum* over the ranks to the single-process gradient.
    ``DistributedDataParallel`` *averages* over ranks, so multiply the gradient by the world size before
    it reaches DDP (:class:`DistributedILALoss` does this with ``ddp_average=True``).

    Shape:
        - Input: :math:`(n, *)`, the same on every rank (checked)
        - Output: :math:`(N \cdot n, *)`
    """
    if not is_distributed():
        return tensor
    parts = _gather_parts(tensor, "gather_with_grad")
    parts[dist.get_rank()] = tensor
    return torch.cat(parts)


def reduce_sum(value: Union[torch.Tensor, float, int]) -> torch.Tensor:
    """Sum of ``value`` over the ranks, as a new tensor on ``value``'s device (the input is untouched).

    For sharded evaluation: ``reduce_sum(correct) / reduce_sum(count)`` is the global accuracy even when
    the shards differ in size. Single process: ``value`` as a tensor.
    """
    t = value.detach().clone() if torch.is_tensor(value) else torch.as_tensor(value)
    if not is_distributed():
        return t
    device = t.device
    t = t.to(_comm_device(t))
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.to(device)


def reduce_mean(value: Union[torch.Tensor, float, int]) -> torch.Tensor:
    """Mean of ``value`` over the ranks (floating point), e.g. to log a loss averaged over processes."""
    t = reduce_sum(value)
    return (t if t.is_floating_point() else t.double()) / world_size()


class _ScaleGradient(torch.autograd.Function):
    """Identity in forward, gradient times ``factor`` in backward: the logged value stays the true loss."""

    @staticmethod
    def forward(ctx, x, factor):
        ctx.factor = factor
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.factor, None


class DistributedILALoss(nn.Module):
    r"""Runs an :class:`~ila_tllib.ila.ILALoss` on the global batch of all data-parallel processes.

    Every rank gathers the source features and labels, the target features and (if given) the target
    logits of all ranks, and evaluates the wrapped loss on the concatenation. Every rank therefore mines
    the same affinities and gets the same loss value as one process holding the whole batch.

    Gradient convention. Features are gathered with :func:`gather_with_grad`, so rank ``r`` back-propagates
    :math:`\partial L / \partial f^{(r)}` — exactly the single-process gradient of its own rows — and its
    parameter gradient is the share of :math:`dL/d\theta` flowing through its rows; the shares sum over
    ranks to :math:`dL/d\theta`. ``DistributedDataParallel`` averages (divides the sum by :math:`N`), so
    with ``ddp_average=True`` the gradient leaving this module is multiplied by :math:`N` (the world
    size); the returned *value* is left unscaled, so it logs as the global loss. A per-rank loss on local
    data such as the cross-entropy needs no such factor: DDP's average of equal-size local means is the
    global mean. Use ``ddp_average=False`` when the parameter gradients are *summed* over ranks (or to
    inspect the per-row gradients): then the output is the plain global loss.

    Labels and logits are gathered without gradient: the labels are integers and the logits only feed
    the (gradient-free) pseudo-labeller.

    Without an initialised process group, or with a single process, this is exactly the wrapped loss.

    Args:
        ila_loss (ILALoss): the loss to run on the global batch.
        ddp_average (bool): scale the gradient by the world size to undo DDP's averaging. Default: ``True``

    Inputs:
        - f_s (tensor): this rank's source features :math:`(n_s, D)`, the same :math:`n_s` on every rank
        - y_s (tensor): this rank's source labels :math:`(n_s,)`
        - f_t (tensor): this rank's target features :math:`(n_t, D)`, the same :math:`n_t` on every rank
        - logits_t (tensor, optional): this rank's target logits :math:`(n_t, C)`
        - num_classes (int, optional): number of classes, passed on
        - mining_features (pair of tensors, optional): this rank's rows of the features that decide the
          affinities, gathered without gradient

    Shape:
        - Output: scalar, the loss of the global batch (:math:`N n_s` sources, :math:`N n_t` targets).

    The decisions ``pseudo_labels``, ``ratio``, ``kept``, ``affinity`` and ``num_anchors`` refer to the
    global batch: target ``j`` of rank ``r`` is global row :math:`r n_t + j` (likewise for sources).
    """

    def __init__(self, ila_loss: ILALoss, ddp_average: bool = True):
        super().__init__()
        self.ila_loss = ila_loss
        self.ddp_average = ddp_average

    def forward(self, f_s: torch.Tensor, y_s: torch.Tensor, f_t: torch.Tensor,
                logits_t: Optional[torch.Tensor] = None, num_classes: Optional[int] = None,
                mining_features: Optional[Tuple[torch.Tensor, torch.Tensor]] = None) -> torch.Tensor:
        if not is_distributed():
            return self.ila_loss(f_s, y_s, f_t, logits_t, num_classes, mining_features)
        if mining_features is not None:
            mining_features = tuple(all_gather_no_grad(g) for g in mining_features)
        loss = self.ila_loss(gather_with_grad(f_s), all_gather_no_grad(y_s), gather_with_grad(f_t),
                             None if logits_t is None else all_gather_no_grad(logits_t), num_classes,
                             mining_features)
        if self.ddp_average:
            loss = _ScaleGradient.apply(loss, float(dist.get_world_size()))
        return loss

    @property
    def pseudo_labels(self):
        return self.ila_loss.pseudo_labels

    @property
    def ratio(self):
        return self.ila_loss.ratio

    @property
    def kept(self):
        return self.ila_loss.kept

    @property
    def affinity(self):
        return self.ila_loss.affinity

    @property
    def num_anchors(self) -> int:
        return self.ila_loss.num_anchors

    def extra_repr(self):
        return f"ddp_average={self.ddp_average}"
