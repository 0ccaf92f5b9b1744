"""MDD (Zhang et al., ICML 2019, "Bridging Theory and Algorithm for Domain Adaptation") as tllib 0.4
has it: the classifier with a main and an adversarial head, and the classification margin disparity
discrepancy."""
from typing import Dict, List, Optional, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from .grl import WarmStartGradientReverseLayer

__all__ = ["MarginDisparityDiscrepancy", "MDDClassifier", "shift_log"]


def shift_log(x: torch.Tensor, offset: float = 1e-6) -> torch.Tensor:
    r""":math:`\log(\min(x + \epsilon, 1))`: a log that stays finite for probabilities near 0."""
    return torch.log(torch.clamp(x + offset, max=1.))


class MarginDisparityDiscrepancy(nn.Module):
    r"""The classification margin disparity discrepancy

    .. math::
        \mathcal{D}_\gamma = \frac{1}{N}\sum_{i}\Big(
            -\gamma\,\mathrm{CE}\big(y^s_{adv,i}, h(y^s_i)\big)
            + \log\big(1 - \sigma(y^t_{adv,i})_{h(y^t_i)}\big)\Big)

    where :math:`h(y)` is the main head's predicted class and :math:`\sigma` the softmax; the log is
    :func:`shift_log`. (tllib's ``ClassificationMarginDisparityDiscrepancy``; its scripts minimise
    :math:`-\mathcal{D}_\gamma`, the adversarial head maximising it through a gradient reversal layer.)

    Args:
        margin (float): :math:`\gamma`. Default: 4
        reduction (str): ``'mean'`` | ``'sum'`` | ``'none'``. Default: ``'mean'``

    Inputs:
        - y_s, y_s_adv: main and adversarial logits of the source, :math:`(N_s, C)`
        - y_t, y_t_adv: main and adversarial logits of the target, :math:`(N_t, C)`

    Shape:
        - Output: scalar (``'none'``: :math:`(N,)`, which needs :math:`N_s = N_t`). With ``'mean'`` the
          source and target means are added, so the batches may differ in size (tllib's needs them equal).
    """

    def __init__(self, margin: float = 4., reduction: str = 'mean'):
        super().__init__()
        self.margin, self.reduction = margin, reduction

    def forward(self, y_s, y_s_adv, y_t, y_t_adv) -> torch.Tensor:
        source = -self.margin * F.cross_entropy(y_s_adv, y_s.argmax(dim=1), reduction='none')
        target = shift_log(1. - F.softmax(y_t_adv, dim=1)).gather(1, y_t.argmax(dim=1, keepdim=True)).squeeze(1)
        if self.reduction == 'mean':   # each domain's mean: source and target batches may differ in size
            return source.mean() + target.mean()
        if self.reduction == 'sum':
            return source.sum() + target.sum()
        return source + target


class MDDClassifier(nn.Module):
    r"""MDD's classifier (tllib's ``tllib.alignment.mdd.ImageClassifier``, same ``state_dict`` layout)

    ``bottleneck`` = pool → Linear(out_features, bottleneck_dim) → BatchNorm1d → ReLU → Dropout(0.5);
    ``head`` and ``adv_head`` = Linear(bottleneck_dim, width) → ReLU → Dropout(0.5) → Linear(width, C);
    the adversarial head reads the features through a warm-start gradient reversal layer
    (:math:`\alpha = 1`, hi 0.1, 1000 iterations, stepped by :meth:`step`).

    Inputs:
        - x (tensor): images

    Outputs:
        - training: ``(logits, adversarial logits)``; eval: ``logits``.
    """

    def __init__(self, backbone: nn.Module, num_classes: int, bottleneck_dim: int = 1024, width: int = 1024,
                 grl: Optional[nn.Module] = None, finetune: bool = True, pool_layer: Optional[nn.Module] = None):
        super().__init__()
        if pool_layer is None:
            pool_layer = nn.Sequential(nn.AdaptiveAvgPool2d(output_size=(1, 1)), nn.Flatten())
        self.backbone, self.num_classes, self.finetune = backbone, num_classes, finetune
        self.bottleneck = nn.Sequential(pool_layer, nn.Linear(backbone.out_features, bottleneck_dim),
                                        nn.BatchNorm1d(bottleneck_dim), nn.ReLU(), nn.Dropout(0.5))
        self.bottleneck[1].weight.data.normal_(0, 0.005)
        self.bottleneck[1].bias.data.fill_(0.1)
        self.head, self.adv_head = (nn.Sequential(nn.Linear(bottleneck_dim, width), nn.ReLU(), nn.Dropout(0.5),
                                                  nn.Linear(width, num_classes)) for _ in range(2))
        for depth in (0, 3):   # tllib's order of draws, so that a seed gives its weights
            for head in (self.head, self.adv_head):
                head[depth].weight.data.normal_(0, 0.01)
                head[depth].bias.data.fill_(0.0)
        self.grl_layer = grl if grl is not None else WarmStartGradientReverseLayer(
            alpha=1.0, lo=0.0, hi=0.1, max_iters=1000, auto_step=False)

    def forward(self, x: torch.Tensor) -> Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]:
        features = self.bottleneck(self.backbone(x))
        outputs = self.head(features)
        if not self.training:
            return outputs
        return outputs, self.adv_head(self.grl_layer(features))

    def step(self):
        """Advance the reversal layer's warm-start schedule (once per training iteration)."""
        self.grl_layer.step()

    def get_parameters(self, base_lr: float = 1.0) -> List[Dict]:
        return [{"params": self.backbone.parameters(), "lr": 0.1 * base_lr if self.finetune else base_lr},
                {"params": self.bottleneck.parameters(), "lr": base_lr},
                {"params": self.head.parameters(), "lr": base_lr},
                {"params": self.adv_head.parameters(), "lr": base_lr}]
