"""Running averages, progress lines and classification metrics."""
from typing import List, Optional, Sequence, Tuple

import torch

__all__ = ["AverageMeter", "ProgressMeter", "accuracy", "binary_accuracy", "ConfusionMatrix"]


class AverageMeter:
    r"""Keeps the latest value and the running (count-weighted) average of a quantity.

    Args:
        name (str): label printed before the numbers
        fmt (str, optional): format spec of both numbers, e.g. ``':6.2f'``. Default: ``':f'``

    ``str(meter)`` is ``'{name} {val} ({avg})'`` with both numbers formatted by ``fmt``.
    """

    def __init__(self, name: str, fmt: Optional[str] = ":f"):
        self.name = name
        self.fmt = fmt
        self.reset()

    def reset(self):
        self.val = 0
        self.avg = 0
        self.sum = 0
        self.count = 0

    def update(self, val, n: int = 1):
        """Record ``val`` as the mean over ``n`` samples."""
        self.val = val
        self.sum += val * n
        self.count += n
        if self.count > 0:
            self.avg = self.sum / self.count

    def __str__(self) -> str:
        template = "{name} {val" + self.fmt + "} ({avg" + self.fmt + "})"
        return template.format(name=self.name, val=self.val, avg=self.avg)


class ProgressMeter:
    r"""Prints one tab-separated line per call: ``prefix[batch/num_batches]`` then every meter.

    The batch number is right-aligned to the width of ``num_batches``, e.g.
    ``Epoch: [1][ 900/1000]\tTime  0.60 ( 0.69)\tLoss   0.74 (  0.85)``.

    Args:
        num_batches (int): batches per epoch
        meters (list): the meters (anything with ``__str__``) to print
        prefix (str, optional): text before the counter. Default: ``""``
    """

    def __init__(self, num_batches: int, meters: Sequence, prefix: str = ""):
        width = len(str(num_batches))
        self.batch_fmtstr = "[{:" + str(width) + "d}/" + str(num_batches) + "]"
        self.meters = meters
        self.prefix = prefix

    def line(self, batch: int) -> str:
        """The text :meth:`display` prints."""
        return "\t".join([self.prefix + self.batch_fmtstr.format(batch)] + [str(m) for m in self.meters])

    def display(self, batch: int):
        print(self.line(batch))


def accuracy(output: torch.Tensor, target: torch.Tensor, topk: Sequence[int] = (1,)) -> List[torch.Tensor]:
    r"""Top-k accuracies in percent.

    Args:
        output (tensor): scores, :math:`(N, C)`
        target (tensor): labels in :math:`[0, C)`, :math:`(N,)`
        topk (sequence of int, optional): the :math:`k` values. Default: ``(1,)``

    Returns:
        list of one-element (0-d, float32) tensors, one per :math:`k`.
    """
    with torch.no_grad():
        maxk = max(topk)
        # (N, maxk) -> does the target appear among the first k predictions?
        hit = output.topk(maxk, dim=1, largest=True, sorted=True)[1].eq(target.view(-1, 1))
        n = target.size(0)
        return [hit[:, :k].sum(dtype=torch.float32) * (100.0 / n) for k in topk]


def binary_accuracy(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    r"""Accuracy in percent of probabilities ``output`` (predict 1 where ``>= 0.5``) against 0/1 ``target``.

    Shape:
        - output, target: :math:`(N, 1)` or :math:`(N,)`
        - Output: 0-d tensor.
    """
    with torch.no_grad():
        pred = (output.reshape(-1) >= 0.5).float()
        return pred.eq(target.reshape(-1).float()).float().sum() * (100.0 / target.size(0))


def bordered_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """``rows`` under ``header`` in prettytable's default layout (the one tllib prints): every cell centred
    as ``str.center`` centres, one space each side, ``+---+`` rules above and below the header and below
    the last row."""
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows)]
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def line(cells):
        return "|" + "|".join(" " + cell.center(w) + " " for cell, w in zip(cells, widths)) + "|"
    return "\n".join([rule, line(header), rule] + [line(row) for row in rows] + [rule])


class ConfusionMatrix:
    r"""Accumulates a :math:`C \times C` confusion matrix; rows are true classes, columns predictions.

    Args:
        num_classes (int): :math:`C`

    Use ``update(target, output)`` per batch (``output`` as predicted labels :math:`(N,)` or as
    scores :math:`(N, C)`, which are arg-maxed), then :meth:`compute` or :meth:`format`.
    """

    def __init__(self, num_classes: int):
        self.num_classes = num_classes
        self.mat = None

    def update(self, target: torch.Tensor, output: torch.Tensor):
        n = self.num_classes
        if output.dim() == 2:
            output = output.argmax(dim=1)
        if self.mat is None:
            self.mat = torch.zeros((n, n), dtype=torch.int64, device=target.device)
        with torch.no_grad():
            valid = (target >= 0) & (target < n)
            cells = n * target[valid].long() + output[valid].long().to(target.device)
            self.mat += torch.bincount(cells, minlength=n * n).view(n, n)

    def reset(self):
        if self.mat is not None:
            self.mat.zero_()

    def compute(self) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Global accuracy, per-class accuracy (recall) and per-class IoU, as fractions, as tllib's but that
        a ratio over nothing (a class absent from the targets, for its accuracy) is 0 where tllib's is NaN."""
        h = self.mat.float()
        diag = torch.diag(h)

        def ratio(part, whole):
            return torch.where(whole > 0, part / whole.clamp(min=1), torch.zeros_like(part))
        return ratio(diag.sum(), h.sum()), ratio(diag, h.sum(1)), ratio(diag, h.sum(1) + h.sum(0) - diag)

    def format(self, classes: Sequence[str]) -> str:
        """Summary lines and a per-class table of accuracy and IoU (percent), laid out as tllib's (its
        prettytable table, the values unrounded)."""
        acc_global, acc, iou = self.compute()
        rows = [[str(name), str(a), str(u)] for name, a, u in zip(classes, (acc * 100).tolist(), (iou * 100).tolist())]
        return "global correct: {:.1f}\nmean correct:{:.1f}\nmean IoU: {:.1f}\n{}".format(
            acc_global.item() * 100, acc.mean().item() * 100, iou.mean().item() * 100,
            bordered_table(["class", "acc", "iou"], rows))

    def __str__(self) -> str:
        acc_global, acc, iou = self.compute()
        return "global correct: {:.1f}\nper-class correct: {}\nmean IoU: {:.1f}".format(
            acc_global.item() * 100, ["{:.1f}".format(a) for a in (acc * 100).tolist()], iou.mean().item() * 100)
