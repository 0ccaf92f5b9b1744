"""ILA-DA's term of the training loss and its diagnostics.

The term is :math:`\\lambda \\cdot s(p) \\cdot r \\cdot L_{ILA}` on the rows :class:`~.batches.BatchPlan`
gives it, from ``--ila-start-iter`` on: :math:`s` is the schedule (:data:`ILA_SCHEDULES`) over the progress
:math:`p \\in [0, 1]` of the remaining iterations, :math:`r` the reliability of the batch's affinities
(:data:`ILA_RELIABILITIES`), estimated without target labels. With ``--ila-spectral-penalty``, BSP's
penalty on the adversary's source and target features is added at every iteration, from the first (or on
the term's schedule, ``--ila-spectral-schedule``), in the form ``--ila-spectral-form`` names
(:data:`SPECTRAL_FORMS`), its gradient reaching the domains ``--ila-spectral-domains`` names.
The diagnostics compare ILA's decisions with the target labels, which are read for the log only and
never reach a loss.
"""
import math
from typing import Optional

import torch
import torch.nn as nn

from .. import distributed as dist_utils
from .. import backend
from ..ila import ILALoss
from ..logged_flags import ILA_SUMMARY
from ..losses import METRIC_LOSSES
from ..parts import takes
from ..pseudo_labels import PSEUDO_LABELLERS

__all__ = ["ILATerm", "ILAStats", "build_ila_loss", "ratio_auc", "ILA_SCHEDULES", "KEEP_SCHEDULES",
           "ILA_RELIABILITIES", "SPECTRAL_FORMS", "DEFAULT_SPECTRAL_FORM", "SPECTRAL_SCHEDULES", "SPECTRAL_DOMAINS",
           "no_shrink_spectral_penalty", "build_ila_term"]


def step_schedule(progress: float) -> float:
    """The paper's: full weight from the start iteration on."""
    return 1.0


def ramp_schedule(progress: float) -> float:
    """DANN's warm-up (Ganin et al., 2016), :math:`2 / (1 + e^{-10 p}) - 1`: 0 at the start, 0.46 after a
    tenth of the remaining iterations, 0.91 after three tenths."""
    return 2.0 / (1.0 + math.exp(-10.0 * progress)) - 1.0


def linear_schedule(progress: float) -> float:
    return progress


def ramp_anneal_schedule(progress: float) -> float:
    """The ramp, times a cosine that falls from 1 to 0 over the same iterations,
    :math:`(2 / (1 + e^{-10 p}) - 1) (1 + \\cos \\pi p) / 2`: 0.72 after a quarter, 0.49 at half, 0 at the end.
    An ablation: a network fits the right part of noisy labels first and the wrong part later, so where the
    pseudo-labels stay mostly wrong the term's late iterations might be the ones that cost (on the offline
    digits they were not: the README's results)."""
    return ramp_schedule(progress) * (1.0 + math.cos(math.pi * progress)) / 2.0


#: --ila-schedule: progress in [0, 1] -> factor of the ILA weight
ILA_SCHEDULES = {"step": step_schedule, "ramp": ramp_schedule, "linear": linear_schedule,
                 "ramp-anneal": ramp_anneal_schedule}
#: --ila-keep-schedule: progress -> factor of μ; the schedules that grow (one falling to 0 would keep nothing)
KEEP_SCHEDULES = {name: ILA_SCHEDULES[name] for name in ("step", "ramp", "linear")}


def no_reliability(decisions, logits_t) -> float:
    return 1.0


def agreement_reliability(decisions, logits_t) -> float:
    """The share of the batch's targets whose pseudo-label is also the classifier's argmax: two views of
    the features agreeing, an estimate of pseudo-label precision that needs no target label."""
    return (decisions.pseudo_labels == logits_t.argmax(dim=1)).float().mean().item()


#: --ila-reliability: the batch's decisions and target logits -> factor of the ILA weight
ILA_RELIABILITIES = {"none": no_reliability, "agreement": agreement_reliability}

#: --ila-spectral-domains: (f_s, f_t) -> the pair the penalty reads. Its value stays BSP's on both; a domain
#: left out is detached, so that the gradient reaches the other domain's features only
SPECTRAL_DOMAINS = {"both": lambda f_s, f_t: (f_s, f_t), "source": lambda f_s, f_t: (f_s, f_t.detach()),
                    "target": lambda f_s, f_t: (f_s.detach(), f_t)}

#: --ila-spectral-schedule: (ILATerm, adaptation iteration) -> factor of the spectral penalty's β. constant: β
#: from the first iteration, whatever --ila-start-iter; term: the term's own schedule, 0 before its start
SPECTRAL_SCHEDULES = {"constant": lambda term, it: 1.0, "term": lambda term, it: term.schedule_factor(it)}


def no_shrink_spectral_penalty(f_s: torch.Tensor, f_t: torch.Tensor) -> torch.Tensor:
    r""":math:`\sigma_1(F)^2` of each domain's batch, with the part of its gradient that shrinks the whole
    batch removed: :math:`\sigma_1(F)^2 \cdot \mathrm{sg}(\lVert F \rVert_F^2) / \lVert F \rVert_F^2`,
    the same value as BSP's, whose gradient :math:`2 \sigma_1 u_1 v_1^\top - 2 (\sigma_1^2 / \lVert F
    \rVert_F^2) F` is orthogonal to :math:`F` (sg: no gradient). BSP's own gradient
    :math:`2 \sigma_1 u_1 v_1^\top` also scales every feature down; on a network that has not yet learnt
    its source classes, that can drive every feature to zero, where the ReLUs stay dead."""
    def one(f):
        energy = (f * f).sum()
        return torch.linalg.svdvals(f)[0] ** 2 * (energy.detach() / energy.clamp_min(torch.finfo(f.dtype).tiny))
    return one(f_s) + one(f_t)


#: --ila-spectral-form: a factory of the penalty (f_s, f_t) -> scalar, before its weight β
SPECTRAL_FORMS = {"bsp": lambda: backend.BatchSpectralPenalizationLoss(),
                  "no-shrink": lambda: no_shrink_spectral_penalty}
#: --ila-spectral-form when it is not given and the penalty runs: BSP's value without its shrinking gradient,
#: which killed most runs from the typeset digits and gained on the three digit shifts (benchmarks/RESULTS.md)
DEFAULT_SPECTRAL_FORM = "no-shrink"


def build_ila_loss(args, k: Optional[int] = None) -> ILALoss:
    """The ILA loss the flags describe (``k`` overrides ``--k``, e.g. for a smaller figure batch)."""
    # the flags name every part's settings; each part is given those it takes (ILALoss refuses the others)
    labeller = {name: value for name, value in (("k", args.k if k is None else k),
                                                ("ratio_terms", args.ila_ratio_terms))
                if takes(PSEUDO_LABELLERS, args.pseudo_label, name)}
    metric = {"temperature": args.ila_temperature} if takes(METRIC_LOSSES, args.metric_loss, "temperature") else {}
    return ILALoss(mu=args.mu, similarity=args.similarity, pseudo_labeller=args.pseudo_label,
                   metric_loss=args.metric_loss, source_bank=args.ila_source_bank, **labeller, **metric,
                   bank_anchors=args.ila_bank_anchors, detach_source=args.ila_detach_source,
                   mining_similarity=None if args.ila_mining_similarity == args.similarity else args.ila_mining_similarity)


class ILATerm:
    """:math:`\\lambda \\cdot s(p) \\cdot r \\cdot L_{ILA}` from iteration ``start_iter`` of adaptation on.

    Args:
        loss (nn.Module): :class:`~ila_tllib.ila.ILALoss` (or its distributed wrapper)
        trade_off (float): :math:`\\lambda`
        start_iter (int): the first adaptation iteration with the term
        total_iters (int): adaptation iterations of the run; the schedule's progress is
            ``(it - start_iter) / (total_iters - start_iter)``
        schedule (str): a key of :data:`ILA_SCHEDULES`
        reliability (str): a key of :data:`ILA_RELIABILITIES`
        keep_schedule (str): a key of :data:`KEEP_SCHEDULES` for the kept fraction μ ("step": fixed)
        spectral_penalty (float): β of :meth:`feature_penalty`; 0 = none
        spectral_form (str): a key of :data:`SPECTRAL_FORMS`
        spectral_schedule (str): a key of :data:`SPECTRAL_SCHEDULES`: when the penalty runs
        spectral_domains (str): a key of :data:`SPECTRAL_DOMAINS`: whose features its gradient reaches
    """

    def __init__(self, loss: nn.Module, trade_off: float, start_iter: int = 0, total_iters: int = 1,
                 schedule: str = "step", reliability: str = "none", keep_schedule: str = "step",
                 spectral_penalty: float = 0.0, spectral_form: str = DEFAULT_SPECTRAL_FORM,
                 spectral_schedule: str = "constant", spectral_domains: str = "both"):
        self.loss, self.trade_off, self.start_iter, self.total_iters = loss, trade_off, start_iter, total_iters
        self.spectral_domains = SPECTRAL_DOMAINS[spectral_domains]
        self.spectral_penalty, self.spectral_schedule = spectral_penalty, SPECTRAL_SCHEDULES[spectral_schedule]
        self.spectrum = SPECTRAL_FORMS[spectral_form]() if spectral_penalty > 0 else None
        self.schedule, self.reliability = ILA_SCHEDULES[schedule], ILA_RELIABILITIES[reliability]
        self.keep_schedule = None if keep_schedule == "step" else KEEP_SCHEDULES[keep_schedule]
        self.ila_loss = getattr(loss, "ila_loss", loss)   # the ILALoss itself, also under a distributed wrapper
        self.miner = getattr(self.ila_loss, "miner", None)
        if self.keep_schedule is not None and self.miner is None:
            raise ValueError("a keep schedule needs an ILA loss with a miner (ILALoss)")
        self.mu = getattr(self.miner, "mu", None)
        self.stats = ILAStats()
        self.last_weight = 0.0
        self.mining_network = None   # a MovingAverageNetwork with --ila-mining-ema, set by the Trainer

    def distribute(self):
        """Run the loss on the global batch of all data-parallel processes (:class:`DistributedILALoss`)."""
        self.loss = dist_utils.DistributedILALoss(self.ila_loss)

    def active(self, it: int) -> bool:
        return it >= self.start_iter

    def progress(self, it: int) -> float:
        return min(1.0, max(0.0, (it - self.start_iter) / max(1, self.total_iters - self.start_iter)))

    def schedule_factor(self, it: int) -> float:
        """:math:`s(p)` at adaptation iteration ``it`` (0 before the start)."""
        return self.schedule(self.progress(it)) if self.active(it) else 0.0

    def scheduled_weight(self, it: int) -> float:
        """:math:`\\lambda s(p)` at adaptation iteration ``it`` (0 before the start)."""
        return self.trade_off * self.schedule_factor(it)

    def __call__(self, f_s, y_s, f_t, logits_t, num_classes, it: int, mining_features=None) -> torch.Tensor:
        """The unweighted ILA loss of this batch; ``last_weight`` keeps its weight, :math:`\\lambda s(p) r`
        (the schedule times the reliability), which the trainer multiplies it by."""
        if self.keep_schedule is not None:   # round(μ n) may be 0 early on: nothing kept, the term is 0
            self.miner.mu = max(self.mu * self.keep_schedule(self.progress(it)), 1e-9)
        loss = self.loss(f_s, y_s, f_t, logits_t=logits_t, num_classes=num_classes, mining_features=mining_features)
        self.last_weight = self.scheduled_weight(it) * self.reliability(self.loss, _gathered(logits_t))
        return loss

    def feature_penalty(self, f_s: torch.Tensor, f_t: torch.Tensor, it: int) -> Optional[torch.Tensor]:
        r""":math:`\beta\, c(it) (\sigma_1(F_s)^2 + \sigma_1(F_t)^2)`, BSP's penalty (Chen et al., 2019) on the
        adversary's source and target features at adaptation iteration ``it``, :math:`c` the factor of
        ``spectral_schedule``; None with ``--ila-spectral-penalty 0`` or where :math:`c(it) = 0` (no SVD is
        computed then); its gradient reaches the features ``spectral_domains`` names. A few dominant
        directions of the features otherwise decide the Euclidean distances, and with them the kNN vote and Γ."""
        factor = 0.0 if self.spectrum is None else self.spectral_schedule(self, it)
        if factor == 0.0:
            return None
        return self.spectral_penalty * factor * self.spectrum(*self.spectral_domains(f_s, f_t))

    def log(self, value: float, labels_t: torch.Tensor):
        """Record the last batch's decisions against the (gathered) target labels."""
        self.stats.update(self.loss, value, _gathered(labels_t), self.last_weight)


def _gathered(tensor: torch.Tensor) -> torch.Tensor:
    # the decisions cover the global batch under torchrun; so must what they are compared with
    return dist_utils.all_gather_no_grad(tensor) if dist_utils.is_distributed() else tensor


def build_ila_term(args, total_iters: int) -> ILATerm:
    return ILATerm(build_ila_loss(args), args.ila_trade_off, args.ila_start_iter, total_iters, args.ila_schedule,
                   args.ila_reliability, args.ila_keep_schedule, args.ila_spectral_penalty, args.ila_spectral_form,
                   args.ila_spectral_schedule, args.ila_spectral_domains)


def ratio_auc(score: torch.Tensor, correct: torch.Tensor) -> Optional[float]:
    """How often a right pseudo-label scores above a wrong one (ties count half); None without both."""
    right, wrong = score[correct], score[~correct]
    if not (right.numel() and wrong.numel()):
        return None
    above = (right[:, None] > wrong[None, :]).float().mean() + 0.5 * (right[:, None] == wrong[None, :]).float().mean()
    return above.item()


class MeterOfWhatABatchMayLack:
    """An average meter (tllib's when installed) for a value a batch may not have (no kept target, an AUC
    without both right and wrong pseudo-labels): such a batch shows ``n/a`` in the progress line instead
    of the last batch's value, and the average is over the batches that had one."""

    def __init__(self, name: str, fmt: str):
        self.meter, self.missing = backend.AverageMeter(name, fmt), True

    def update(self, value: Optional[float], n: int = 1):
        self.missing = value is None
        if value is not None:
            self.meter.update(value, n)

    @property
    def avg(self):
        return self.meter.avg

    @property
    def count(self):
        return self.meter.count

    def __str__(self):
        width = self.meter.fmt.lstrip(":").split(".")[0]     # "n/a" as wide as a number, the columns kept
        val = f"{'n/a':>{width}}" if self.missing else f"{self.meter.val:{self.meter.fmt[1:]}}"
        avg = f"{'n/a':>{width}}" if not self.meter.count else f"{self.meter.avg:{self.meter.fmt[1:]}}"
        return f"{self.meter.name} {val} ({avg})"


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
        self.precision = MeterOfWhatABatchMayLack('PL Prec', ':3.1f')
        self.precision_all = backend.AverageMeter('PL All', ':3.1f')
        self.auc = MeterOfWhatABatchMayLack('Ratio AUC', ':4.2f')
        self.kept = backend.AverageMeter('Kept', ':3.0f')
        self.wrong_positive = MeterOfWhatABatchMayLack('Wrong +1', ':3.1f')
        self.weight = backend.AverageMeter('ILA Weight', ':4.2f')
        self.empty_batches = self.batches = 0

    def meters(self):
        return [self.loss, self.precision, self.precision_all, self.auc, self.kept]

    def update(self, ila, loss_value: float, labels_t: torch.Tensor, weight: float = 0.0):
        kept, correct = ila.kept, ila.pseudo_labels == labels_t.to(ila.kept.device)
        self.loss.update(loss_value)
        self.weight.update(weight)
        kept_count = int(kept.sum())
        self.kept.update(kept_count)
        self.precision_all.update(100.0 * correct.float().mean().item(), correct.numel())
        self.precision.update(100.0 * correct[kept].float().mean().item() if kept_count else None, kept_count)
        positives = (ila.affinity > 0).sum(dim=0)          # +1 entries of each target's column
        pairs = int(positives.sum())
        self.wrong_positive.update(100.0 * (positives * ~correct).sum().item() / pairs if pairs else None, pairs)
        self.auc.update(ratio_auc(ila.ratio, correct))
        self.batches += 1
        if ila.num_anchors == 0:
            self.empty_batches += 1

    def summary(self) -> str:
        return ILA_SUMMARY.format(
            empty=self.empty_batches, batches=self.batches, precision_kept=_mean(self.precision, '.1f', '%'),
            precision_all=_mean(self.precision_all, '.1f', '%'), auc=_mean(self.auc, '.2f'),
            kept=f"{self.kept.avg:.1f}", wrong_positive=_mean(self.wrong_positive, '.1f', '%'),
            weight=f"{self.weight.avg:.3f}")


def _mean(meter, spec: str, unit: str = "") -> str:
    """A meter's mean, or n/a when no batch gave it a value (no kept target, no +1 pair, a ratio AUC that
    needs right and wrong pseudo-labels): a 0 there would read as the worst value."""
    return f"{meter.avg:{spec}}{unit}" if meter.count else "n/a"
