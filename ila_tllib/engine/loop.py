"""tllib's training recipe: SGD (nesterov) with per-group learning rates, the schedule
lr · (1 + γ i)^(−decay) stepped every iteration, epochs of ``-i`` iterations, target evaluation."""
import time
from typing import Dict, NamedTuple, Optional

import torch
import torch.nn as nn
import torch.distributed as dist
import torch.nn.functional as F

from .. import distributed as dist_utils
from ..atomic import save_atomic
from .. import backend
from . import precision
from .batches import Batch, BatchPlan
from .batchnorm import batch_statistics_from
from .checkpoint import check_finite_state
from .errors import DivergenceError
from .flags import divergence_fix, resolve_derived_defaults
from .ila_term import ILATerm
from .method import Method
from .moving_average import MINING_AVERAGES

__all__ = ["make_optimizer", "Trainer", "StepLosses", "validate", "unwrap", "check_finite_loss"]


def unwrap(module: nn.Module) -> nn.Module:
    return module.module if isinstance(module, nn.parallel.DistributedDataParallel) else module


def make_optimizer(param_groups, args, lr: Optional[float] = None):
    """tllib's optimiser: SGD with nesterov; each group's lr factor (backbone 0.1, rest 1.0) times
    lr · (1 + γ·i)^(−decay), stepped every iteration."""
    lr = args.lr if lr is None else lr
    optimizer = torch.optim.SGD(param_groups, lr, momentum=args.momentum, weight_decay=args.weight_decay,
                                nesterov=True)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda x: lr * (1. + args.lr_gamma * float(x)) ** (-args.lr_decay))
    return optimizer, scheduler


def load_schedule(optimizer, scheduler, optimizer_state: dict, scheduler_state: dict):
    """Restore a saved optimiser and schedule, with the learning rates recomputed from this run's schedule at
    the saved step: a resumed run may give another --lr (as the divergence message suggests), which the
    saved rates predate."""
    optimizer.load_state_dict(optimizer_state)
    scheduler.load_state_dict(scheduler_state)
    for group, base, factor in zip(optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas):
        group['lr'] = base * factor(scheduler.last_epoch)
    scheduler._last_lr = [group['lr'] for group in optimizer.param_groups]   # what get_last_lr() reports


def check_finite_loss(value: torch.Tensor, name: str, it: int, fix: str) -> torch.Tensor:
    if not torch.isfinite(value):
        raise DivergenceError(f"the {name} loss became {value.item()} at iteration {it}; training stopped ({fix})")
    return value


class StepLosses(NamedTuple):
    loss: torch.Tensor
    cls_loss: torch.Tensor
    transfer_loss: torch.Tensor            # the weighted adaptation term
    ila_loss: Optional[torch.Tensor]       # unweighted; None when ILA did not run
    logits_s: torch.Tensor
    meters: Dict[str, float]               # the method's own meter values


class Trainer:
    """One run's training: the network, the method's adaptation loss, ILA's term and the batch plan.

    A loop of its own around :meth:`losses` calls :meth:`after_step` after every optimiser step: the moving
    average ILA mines on (the default) follows the network only there."""

    def __init__(self, args, method: Method, classifier: nn.Module, transfer: nn.Module, plan: BatchPlan,
                 ila: Optional[ILATerm], num_classes: int, device):
        self.args, self.method, self.classifier, self.transfer = args, method, classifier, transfer
        self.fix = divergence_fix(args)     # what a divergence tells the run to change
        self.plan, self.ila, self.num_classes, self.device = plan, ila, num_classes, device
        resolve_derived_defaults(args)
        if ila is not None and args.ila_mining_ema > 0:     # the copy ILA mines on, updated by after_step
            average = MINING_AVERAGES[args.ila_mining_average]
            ila.mining_network = average(unwrap(classifier), args.ila_mining_ema, method)

    def after_step(self):
        """What follows every optimiser step of adaptation: the moving average ILA mines on follows the network."""
        if self.ila is not None and self.ila.mining_network is not None:
            self.ila.mining_network.update(self.model)

    def ila_runs(self, it: int) -> bool:
        return self.ila is not None and self.ila.active(it)

    def losses(self, batch: Batch, it: int) -> StepLosses:
        """CE + the method's weighted adaptation term + λ · ILA, from one forward pass of every part."""
        with precision.autocast(self.args, self.device), \
                batch_statistics_from(self.classifier, batch.statistics_rows):   # --amp: the networks in bfloat16 ...
            out = self.method.forward(self.classifier, precision.network_inputs(self.args, batch.inputs))
        out = precision.in_float32(out)                     # ... every loss, ILA's included, in float32
        self.method.on_step(unwrap(self.classifier))
        source, target = out.rows(batch.source), out.rows(batch.target)
        # each term is checked as soon as it exists: a NaN network would otherwise crash inside the next one
        cls_loss = check_finite_loss(F.cross_entropy(source.logits, batch.labels_s), 'CE', it, self.fix)
        try:
            transfer_loss, meters = self.method.transfer_loss(self.args, self.transfer, source, target)
        except RuntimeError as e:
            # tllib's adversarial losses check their inputs: a discriminator gone non-finite fails binary cross
            # entropy's range check before its loss value could be checked
            self.check_finite_state(f"at iteration {it}")
            if "should be between 0 and 1" in str(e):
                raise DivergenceError(f"the transfer loss's domain discriminator gave non-finite outputs at "
                                      f"iteration {it}; training stopped ({self.fix})") from None
            raise
        check_finite_loss(transfer_loss, 'transfer', it, self.fix)   # tllib's name for a method's adaptation term
        loss = cls_loss + transfer_loss
        ila_loss = None
        if batch.ila is not None:
            ila_loss = self.ila(out.features[batch.ila], batch.labels_ila, target.features, target.logits,
                                self.num_classes, it, self.mining_features(batch))
            check_finite_loss(ila_loss, 'ILA', it, self.fix)
            loss = loss + self.ila.last_weight * ila_loss
        if self.ila is not None:
            penalty = self.ila.feature_penalty(source.features, target.features, it)
            if penalty is not None:
                loss = loss + check_finite_loss(penalty, 'spectral penalty', it, self.fix)
        return StepLosses(loss, cls_loss, transfer_loss, ila_loss, source.logits, meters)

    def check_finite_state(self, where: str, fix: Optional[str] = None):
        """Raise :class:`DivergenceError` when a weight or statistic of the network or of the method's
        adaptation loss is non-finite; ``fix`` (by default the run's) says what to change."""
        check_finite_state({'classifier': unwrap(self.classifier), 'transfer': unwrap(self.transfer)},
                           where, fix or self.fix)

    @torch.no_grad()
    def mining_features(self, batch: Batch):
        """With --ila-mining-ema: ILA's source and target rows through the moving average of the network, with
        the same BatchNorm statistics rule as the network's own pass; else None (ILA mines on its own)."""
        averaged = self.ila.mining_network
        if averaged is None:
            return None
        with precision.autocast(self.args, self.device), batch_statistics_from(averaged.model, batch.statistics_rows):
            inputs = precision.network_inputs(self.args, batch.inputs)
            g_s, g_t = averaged.features(self.method, inputs, (batch.ila, batch.target))
        return g_s.float(), g_t.float()

    def train_one_epoch(self, iters, optimizer, scheduler, epoch: int, state: dict):
        args = self.args
        meter = {name: backend.AverageMeter(name, fmt) for name, fmt in self.method.meters}
        meters = list(meter.values())
        # ILA's meters only in epochs where ILA runs: before --ila-start-iter they would read as zeros
        ila_this_epoch = self.ila_runs(state['iter'] + args.iters_per_epoch - 1)
        if ila_this_epoch:
            self.ila.stats.reset()
            meters += self.ila.stats.meters()
        progress = backend.ProgressMeter(args.iters_per_epoch, meters, prefix="Epoch: [{}]".format(epoch))
        self.classifier.train()
        self.transfer.train()
        end = time.time()
        for i in range(args.iters_per_epoch):
            it = state['iter']
            batch = self.plan.draw(iters, self.device, self.ila_runs(it))
            meter['Data'].update(time.time() - end)
            out = self.losses(batch, it)
            if out.ila_loss is not None:
                self.ila.log(out.ila_loss.item(), batch.labels_t)
            n_s = batch.source.stop - batch.source.start
            meter['Loss'].update(out.loss.item(), n_s)
            meter['Cls Acc'].update(backend.accuracy(out.logits_s, batch.labels_s)[0].item(), n_s)
            for name, value in out.meters.items():
                meter[name].update(value, n_s)
            optimizer.zero_grad()
            out.loss.backward()
            optimizer.step()
            scheduler.step()
            self.after_step()
            state['iter'] += 1
            meter['Time'].update(time.time() - end)
            end = time.time()
            if i % args.print_freq == 0:
                progress.display(i)
        if ila_this_epoch:
            print(self.ila.stats.summary())

    @property
    def model(self) -> nn.Module:
        """The classifier itself (not its DistributedDataParallel wrapper)."""
        return unwrap(self.classifier)

    def save(self, path: str):
        """The classifier's weights, written atomically by process 0; every process returns once the file is
        in place, so that any may read it next (BSP's pretrain.pth). An error of process 0's write reaches the
        others waiting here through the peer watch."""
        if dist_utils.is_main_process():
            save_atomic(self.model.state_dict(), path)
        if dist_utils.is_distributed():
            dist.barrier()

    def pretrain(self, source_iter, iterations: int, lr: float, epochs: int = 1, after_epoch=None,
                 prefix: Optional[str] = None, lr_flag: str = '--lr'):
        """Source-only training with its own optimiser and schedule (the same recipe, restarted), so the
        adaptation schedule is untouched: ``epochs`` of ``iterations``, ``after_epoch()`` after each. Printed
        as tllib's source-only epochs (bsp.py): an ``lr: [...]`` line, then ``Epoch: [e]`` lines with its
        meters; a ``prefix`` (``--pretrain-iters``, not in tllib) names the lines instead, without the lr.
        ``lr_flag`` is the flag that set ``lr``: only cross-entropy trains here, so a divergence names it alone."""
        args = self.args
        optimizer, scheduler = make_optimizer(self.model.get_parameters(), args, lr)
        for epoch in range(epochs):
            if prefix is None:
                print("lr:", scheduler.get_last_lr())
            batch_time, data_time = backend.AverageMeter('Time', ':3.1f'), backend.AverageMeter('Data', ':3.1f')
            losses, cls_accs = backend.AverageMeter('Loss', ':3.2f'), backend.AverageMeter('Cls Acc', ':3.1f')
            progress = backend.ProgressMeter(iterations, [batch_time, data_time, losses, cls_accs],
                                             prefix=prefix or f"Epoch: [{epoch}]")
            self.classifier.train()
            end = time.time()
            for i in range(iterations):
                x_s, labels_s = next(source_iter)[:2]
                x_s, labels_s = x_s.to(self.device), labels_s.to(self.device)
                data_time.update(time.time() - end)
                with precision.autocast(args, self.device):
                    y_s = self.method.forward(self.classifier, precision.network_inputs(args, x_s)).logits
                y_s = precision.upcast(y_s)
                loss = check_finite_loss(F.cross_entropy(y_s, labels_s), 'CE', i,
                                         f"in source-only pretraining: lower {lr_flag}")
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                scheduler.step()
                losses.update(loss.item(), x_s.size(0))
                cls_accs.update(backend.accuracy(y_s, labels_s)[0].item(), x_s.size(0))
                batch_time.update(time.time() - end)
                end = time.time()
                if i % args.print_freq == 0:
                    progress.display(i)
            # a non-finite loss stops above; weights or statistics can still become non-finite with a finite loss
            self.check_finite_state(f"in source-only pretraining epoch {epoch}", f"lower {lr_flag}; nothing was saved")
            if after_epoch is not None:
                after_epoch()


def sync_buffers(model: nn.Module):
    """Give every process rank 0's BatchNorm statistics: the model it saves is the model all evaluate."""
    if dist_utils.is_distributed():
        for buffer in model.buffers():
            if buffer.numel():   # an empty one (a source bank not filled yet) may still be on the CPU, which
                torch.distributed.broadcast(buffer.data, 0)   # NCCL cannot broadcast; it is empty everywhere


def validate(val_loader, model, args, device, class_names=None) -> float:
    batch_time, losses = backend.AverageMeter('Time', ':6.3f'), backend.AverageMeter('Loss', ':.4e')
    top1 = backend.AverageMeter('Acc@1', ':6.2f')
    progress = backend.ProgressMeter(len(val_loader), [batch_time, losses, top1], prefix='Test: ')
    confmat = backend.ConfusionMatrix(len(class_names)) if (args.per_class_eval and class_names) else None
    model = unwrap(model)  # no DDP collectives in evaluation: shards may differ in size
    sync_buffers(model)
    model.eval()
    with torch.no_grad():
        end = time.time()
        for i, batch in enumerate(val_loader):   # (images, labels) or, from tllib's joined domains, with domain ids
            images, target = batch[0].to(device), batch[1].to(device)
            with precision.autocast(args, device):
                output = precision.upcast(model(precision.network_inputs(args, images)))
            loss = F.cross_entropy(output, target)
            if confmat is not None:
                confmat.update(target, output.argmax(1))
            top1.update(backend.accuracy(output, target)[0].item(), images.size(0))
            losses.update(loss.item(), images.size(0))
            batch_time.update(time.time() - end)
            end = time.time()
            if i % args.print_freq == 0:
                progress.display(i)
    if dist_utils.is_distributed():  # exact global accuracy from every shard's sums
        correct = dist_utils.reduce_sum(torch.tensor(top1.sum, dtype=torch.float64))
        count = dist_utils.reduce_sum(torch.tensor(top1.count, dtype=torch.float64))
        top1.avg = (correct / count).item()
        if confmat is not None:   # the per-class counts of every shard, not of process 0 alone
            n = len(class_names)
            local = confmat.mat if confmat.mat is not None else torch.zeros((n, n), dtype=torch.int64, device=device)
            confmat.mat = dist_utils.reduce_sum(local)
    print(' * Acc@1 {top1.avg:.3f}'.format(top1=top1))
    if confmat is not None:
        print(confmat.format(class_names))
    return top1.avg
