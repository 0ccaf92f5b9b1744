"""BSP (Chen et al., ICML 2019, "Transferability vs. Discriminability: Batch Spectral Penalization")."""
import torch
import torch.nn as nn

__all__ = ["BatchSpectralPenalizationLoss"]


class BatchSpectralPenalizationLoss(nn.Module):
    r"""The squared largest singular value of each domain's feature batch

    .. math::
        L_{BSP} = \sigma_1(F_s)^2 + \sigma_1(F_t)^2

    (tllib's ``BatchSpectralPenalizationLoss``, :math:`k = 1`).

    Inputs:
        - f_s (tensor): source features :math:`(N_s, D)`
        - f_t (tensor): target features :math:`(N_t, D)`

    Shape:
        - Output: scalar.
    """

    def forward(self, f_s: torch.Tensor, f_t: torch.Tensor) -> torch.Tensor:
        return torch.linalg.svdvals(f_s)[0] ** 2 + torch.linalg.svdvals(f_t)[0] ** 2
