"""ILA-DA's term of the training loss and its diagnostics.

The term is :math:`\\lambda(t) \\cdot L_{ILA}` on the rows :class:`~.batches.BatchPlan` gives it; it
is active from ``--ila-start-iter`` on. The diagnostics compare ILA's decisions with the target labels,
which are read for the log only and never reach a loss.
"""
from typing import Optional

import torch
import torch.nn as nn

from .. import distributed as dist_utils
from .. import backend
from ..ila import ILALoss

__all__ = ["ILATerm", "ILAStats", "build_ila_loss", "ratio_auc"]


def build_ila_loss(args, k: Optional[int] = None) -> ILALoss:
    """The ILA loss the flags describe (``k`` overrides ``--k``, e.g. for a smaller figure batch)."""
    return ILALoss(k=args.k if k is None else k, mu=args.mu, temperature=args.ila_temperature,
                   similarity=args.similarity, pseudo_labeller=args.pseudo_label, metric_loss=args.metric_loss)


class ILATerm:
    """:math:`\\lambda \\cdot L_{ILA}` from iteration ``start_iter`` of adaptation on.

    Args:
        loss (nn.Module): :class:`~ila_tllib.ila.ILALoss` (or its distributed wrapper)
        trade_off (float): :math:`\\lambda`
        start_iter (int): the first adaptation iteration with the term
    """

    def __init__(self, loss: nn.Module, trade_off: float, start_iter: int = 0):
        self.loss, self.trade_off, self.start_iter = loss, trade_off, start_iter
        self.stats = ILAStats()

    def active(self, it: int) -> bool:
        return it >= self.start_iter

    def weight(self, it: int) -> float:
        return self.trade_off if self.active(it) else 0.0

    def __call__(self, f_s, y_s, f_t, logits_t, num_classes) -> torch.Tensor:
        return self.loss(f_s, y_s, f_t, logits_t=logits_t, num_classes=num_classes)

    def log(self, value: float, labels_t: torch.Tensor):
        """Record the last batch's decisions against the (gathered) target labels."""
        labels = dist_utils.all_gather_no_grad(labels_t) if dist_utils.is_distributed() else labels_t
        self.stats.update(self.loss, value, labels)


def ratio_auc(score: torch.Tensor, correct: torch.Tensor) -> Optional[float]:
    """How often a right pseudo-label scores above a wrong one (ties count half); None without both."""
    right, wrong = score[correct], score[~correct]
    if not (right.numel() and wrong.numel()):
        return None
    above = (right[:, None] > wrong[None, :]).float().mean() + 0.5 * (right[:, None] == wrong[None, :]).float().mean()
    return above.item()


class ILAStats:
    """Running ILA diagnostics, from target labels used for logging only (never for training):

    - ``PL Prec``: pseudo-label precision of the kept targets; ``PL All``: of all targets (the filter's gain
      is the difference);
    - ``Ratio AUC``: how well the score (Γ, or the confidence) ranks right pseudo-labels above wrong ones
      (0.5 = no better than chance);
    - ``Kept``: targets kept per batch; ``Wrong +1``: the share of +1 affinities that pair a source with
      a target of another class; batches where no source had both a positive and a negative.
    """

    def __init__(self):
        self.reset()

    def reset(self):
        self.loss = backend.AverageMeter('ILA Loss', ':5.4f')
        self.precision = backend.AverageMeter('PL Prec', ':3.1f')
        self.precision_all = backend.AverageMeter('PL All', ':3.1f')
        self.auc = backend.AverageMeter('Ratio AUC', ':4.2f')
        self.kept = backend.AverageMeter('Kept', ':3.0f')
        self.wrong_positive = backend.AverageMeter('Wrong +1', ':3.1f')
        self.empty_batches = self.batches = 0

    def meters(self):
        return [self.loss, self.precision, self.precision_all, self.auc, self.kept]

    def update(self, ila, loss_value: float, labels_t: torch.Tensor):
        kept, correct = ila.kept, ila.pseudo_labels == labels_t.to(ila.kept.device)
        self.loss.update(loss_value)
        self.kept.update(int(kept.sum()))
        self.precision_all.update(100.0 * correct.float().mean().item(), correct.numel())
        if kept.any():
            self.precision.update(100.0 * correct[kept].float().mean().item(), int(kept.sum()))
        positives = (ila.affinity > 0).sum(dim=0)          # +1 entries of each target's column
        if positives.sum() > 0:
            wrong = (positives * ~correct).sum()
            self.wrong_positive.update(100.0 * (wrong / positives.sum()).item(), int(positives.sum()))
        auc = ratio_auc(ila.ratio, correct)
        if auc is not None:
            self.auc.update(auc)
        self.batches += 1
        if ila.num_anchors == 0:
            self.empty_batches += 1

    def summary(self) -> str:
        return (f"ILA: {self.empty_batches} of {self.batches} batches had nothing to contrast; pseudo-label precision "
                f"{self.precision.avg:.1f}% kept / {self.precision_all.avg:.1f}% all, ratio AUC {self.auc.avg:.2f}, "
                f"kept {self.kept.avg:.1f} targets per batch, wrong +1 affinities {self.wrong_positive.avg:.1f}%")
