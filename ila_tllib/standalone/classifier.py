"""Backbone → pool → bottleneck → head classifier used by the adaptation methods."""
from typing import Dict, List, Optional, Tuple, Union

import torch
import torch.nn as nn

__all__ = ["Classifier", "ImageClassifier"]


class Classifier(nn.Module):
    r"""A generic classifier for domain adaptation: ``head(bottleneck(pool(backbone(x))))``.

    The features the adaptation losses align are the bottleneck's output, the input of ``head``.

    Args:
        backbone (torch.nn.Module): feature extractor with an ``out_features`` attribute
        num_classes (int): number of classes
        bottleneck (torch.nn.Module, optional): layers between pooling and head. Default: identity
        bottleneck_dim (int, optional): output dimension of ``bottleneck`` (required, > 0, when
            ``bottleneck`` is given). Default: -1
        head (torch.nn.Module, optional): classifier head. Default: ``Linear(features_dim, num_classes)``
        finetune (bool, optional): if True the backbone is pre-trained and gets a 10× smaller
            learning rate in :meth:`get_parameters`. Default: True
        pool_layer (torch.nn.Module, optional): turns backbone output into vectors. Default:
            ``AdaptiveAvgPool2d((1, 1))`` then ``Flatten``; pass ``nn.Identity()`` for backbones
            that already return vectors (LeNet, DTN)

    Inputs:
        - x (tensor): input of ``backbone``

    Outputs:
        - in training mode ``(predictions, features)``; in eval mode ``predictions`` only.

    Shape:
        - predictions: :math:`(N, \text{num\_classes})`
        - features: :math:`(N, \text{features\_dim})`
    """

    def __init__(self, backbone: nn.Module, num_classes: int, bottleneck: Optional[nn.Module] = None,
                 bottleneck_dim: Optional[int] = -1, head: Optional[nn.Module] = None, finetune: bool = True,
                 pool_layer: Optional[nn.Module] = None):
        super().__init__()
        self.backbone = backbone
        self.num_classes = num_classes
        if pool_layer is None:
            pool_layer = nn.Sequential(nn.AdaptiveAvgPool2d(output_size=(1, 1)), nn.Flatten())
        self.pool_layer = pool_layer
        if bottleneck is None:
            self.bottleneck = nn.Identity()
            self._features_dim = backbone.out_features
        else:
            if not bottleneck_dim > 0:
                raise ValueError("a bottleneck needs bottleneck_dim > 0, got {}".format(bottleneck_dim))
            self.bottleneck = bottleneck
            self._features_dim = bottleneck_dim
        self.head = nn.Linear(self._features_dim, num_classes) if head is None else head
        self.finetune = finetune

    @property
    def features_dim(self) -> int:
        """Dimension of the features fed to ``head``."""
        return self._features_dim

    def forward(self, x: torch.Tensor) -> Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]:
        f = self.bottleneck(self.pool_layer(self.backbone(x)))
        predictions = self.head(f)
        if self.training:
            return predictions, f
        return predictions

    def get_parameters(self, base_lr: float = 1.0) -> List[Dict]:
        """Parameter groups with their learning rates: backbone ``0.1·base_lr`` when fine-tuning
        (else ``base_lr``), bottleneck and head ``base_lr``."""
        return [
            {"params": list(self.backbone.parameters()), "lr": (0.1 if self.finetune else 1.0) * base_lr},
            {"params": list(self.bottleneck.parameters()), "lr": 1.0 * base_lr},
            {"params": list(self.head.parameters()), "lr": 1.0 * base_lr},
        ]


class ImageClassifier(Classifier):
    r"""The :class:`Classifier` of DANN and CDAN: bottleneck
    ``Linear(backbone.out_features, bottleneck_dim) → BatchNorm1d → ReLU``.

    Args:
        backbone (torch.nn.Module): feature extractor with an ``out_features`` attribute
        num_classes (int): number of classes
        bottleneck_dim (int, optional): feature dimension after the bottleneck. Default: 256
        **kwargs: passed to :class:`Classifier` (``head``, ``finetune``, ``pool_layer``)
    """

    def __init__(self, backbone: nn.Module, num_classes: int, bottleneck_dim: Optional[int] = 256, **kwargs):
        bottleneck = nn.Sequential(
            nn.Linear(backbone.out_features, bottleneck_dim),
            nn.BatchNorm1d(bottleneck_dim),
            nn.ReLU(),
        )
        super().__init__(backbone, num_classes, bottleneck, bottleneck_dim, **kwargs)
