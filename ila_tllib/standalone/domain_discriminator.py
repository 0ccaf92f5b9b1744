"""A small MLP that tells source features from target features."""
from typing import Dict, List

import torch.nn as nn

__all__ = ["DomainDiscriminator"]


class DomainDiscriminator(nn.Sequential):
    r"""Domain discriminator :math:`D` of DANN: a three-layer MLP, source label 1, target label 0.

    With ``batch_norm=True`` the layers are
    ``Linear(in, h) → BN → ReLU → Linear(h, h) → BN → ReLU → out``; without, each BN
    is dropped and a ``Dropout(0.5)`` follows each ReLU. ``out`` is
    ``Linear(h, 1) → Sigmoid`` (the probability of *source*) when ``sigmoid=True``
    and ``Linear(h, 2)`` (two domain logits) otherwise.

    The module layout (and so ``state_dict`` keys, e.g. ``6.0.weight``) matches tllib's,
    so checkpoints move between the two backends.

    Args:
        in_feature (int): dimension of the input features
        hidden_size (int): dimension of the two hidden layers
        batch_norm (bool, optional): use :class:`~torch.nn.BatchNorm1d` (else dropout). Default: True
        sigmoid (bool, optional): one sigmoid output (else two logits). Default: True

    Shape:
        - Inputs: :math:`(N, \text{in\_feature})`
        - Outputs: :math:`(N, 1)` if ``sigmoid`` else :math:`(N, 2)`
    """

    def __init__(self, in_feature: int, hidden_size: int, batch_norm: bool = True, sigmoid: bool = True):
        if sigmoid:
            out = nn.Sequential(nn.Linear(hidden_size, 1), nn.Sigmoid())
        else:
            out = nn.Linear(hidden_size, 2)

        def block(n_in):
            if batch_norm:
                return [nn.Linear(n_in, hidden_size), nn.BatchNorm1d(hidden_size), nn.ReLU()]
            return [nn.Linear(n_in, hidden_size), nn.ReLU(inplace=True), nn.Dropout(0.5)]

        super().__init__(*block(in_feature), *block(hidden_size), out)

    def get_parameters(self) -> List[Dict]:
        """One parameter group at the base learning rate (``lr`` is a multiplier of it)."""
        return [{"params": self.parameters(), "lr": 1.}]
