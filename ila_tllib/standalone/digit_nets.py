"""Small backbones for the digit benchmarks: LeNet (28×28 grey) and DTN (32×32 RGB).

Both return feature vectors already, so use them with ``pool_layer=nn.Identity()``
(the scripts' ``--no-pool``). Layer order, and so ``state_dict`` keys, follow tllib's.
"""
import torch.nn as nn

__all__ = ["LeNet", "DTN", "lenet", "dtn"]


class LeNet(nn.Sequential):
    r"""LeNet feature extractor for 28×28 single-channel digits.

    ``Conv(1→20, 5) → MaxPool(2) → ReLU → Conv(20→50, 5) → Dropout2d(0.5) → MaxPool(2) → ReLU
    → Flatten → Linear(800→500) → ReLU → Dropout(0.5)``

    Args:
        num_classes (int, optional): classes of the default head :meth:`copy_head`. Default: 10

    Shape:
        - Inputs: :math:`(N, 1, 28, 28)`
        - Outputs: :math:`(N, 500)` (``out_features``)
    """

    def __init__(self, num_classes: int = 10):
        super().__init__(
            nn.Conv2d(1, 20, kernel_size=5),
            nn.MaxPool2d(2),
            nn.ReLU(),
            nn.Conv2d(20, 50, kernel_size=5),
            nn.Dropout2d(p=0.5),
            nn.MaxPool2d(2),
            nn.ReLU(),
            nn.Flatten(start_dim=1),
            nn.Linear(50 * 4 * 4, 500),
            nn.ReLU(),
            nn.Dropout(p=0.5),
        )
        self.num_classes = num_classes
        self.out_features = 500

    def copy_head(self) -> nn.Module:
        """A fresh linear head over the 500 features."""
        return nn.Linear(self.out_features, self.num_classes)


class DTN(nn.Sequential):
    r"""DTN feature extractor for 32×32 RGB digits (SVHN → MNIST).

    Three ``Conv(k=5, stride 2, pad 2) → BatchNorm2d → Dropout2d → ReLU`` blocks
    (64, 128, 256 channels; dropout 0.1, 0.3, 0.5) halve 32 → 4, then
    ``Flatten → Linear(4096→512) → BatchNorm1d → ReLU → Dropout(0.5)``.

    Args:
        num_classes (int, optional): classes of the default head :meth:`copy_head`. Default: 10

    Shape:
        - Inputs: :math:`(N, 3, 32, 32)`
        - Outputs: :math:`(N, 512)` (``out_features``)
    """

    def __init__(self, num_classes: int = 10):
        layers = []
        for c_in, c_out, p in ((3, 64, 0.1), (64, 128, 0.3), (128, 256, 0.5)):
            layers += [nn.Conv2d(c_in, c_out, kernel_size=5, stride=2, padding=2),
                       nn.BatchNorm2d(c_out), nn.Dropout2d(p), nn.ReLU()]
        layers += [nn.Flatten(start_dim=1), nn.Linear(256 * 4 * 4, 512), nn.BatchNorm1d(512),
                   nn.ReLU(), nn.Dropout()]
        super().__init__(*layers)
        self.num_classes = num_classes
        self.out_features = 512

    def copy_head(self) -> nn.Module:
        """A fresh linear head over the 512 features."""
        return nn.Linear(self.out_features, self.num_classes)


def lenet(pretrained: bool = False, **kwargs) -> LeNet:
    """LeNet backbone (``pretrained`` is accepted for the common interface; there are no weights)."""
    return LeNet(**kwargs)


def dtn(pretrained: bool = False, **kwargs) -> DTN:
    """DTN backbone (``pretrained`` is accepted for the common interface; there are no weights)."""
    return DTN(**kwargs)
