"""Label-free scores of a network's outputs on the target, for choosing between finished weights.

Each score reads the softmax outputs of one set of weights on unlabelled target images and returns one
number. :data:`SCORES` names them and says which way is better, so that a choice between two runs (say
a baseline and ILA-DA on the same seed) needs no target label.
"""
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

__all__ = ["soft_neighbourhood_density", "mean_entropy", "information_maximisation", "Score", "SCORES",
           "better_of"]


def soft_neighbourhood_density(probabilities: torch.Tensor, temperature: float = 0.05,
                               rows_per_chunk: int = 1024) -> float:
    r"""Soft neighbourhood density (Saito et al., ICCV 2021): how spread the soft neighbourhood of every target is

    With :math:`\hat p_i = p_i / \lVert p_i \rVert` the L2-normalised softmax output of target :math:`i`,

    .. math::
        P_{ij} = \frac{\exp(\hat p_i^\top \hat p_j / \tau)}{\sum_{l \ne i} \exp(\hat p_i^\top \hat p_l / \tau)}
        \quad (j \ne i), \qquad
        \mathrm{SND} = \frac{1}{N} \sum_i -\sum_{j \ne i} P_{ij} \log P_{ij}

    Higher is better: a target whose output has many close neighbours has a high entropy row.

    Inputs:
        - probabilities (tensor): softmax outputs of shape :math:`(N, C)`, :math:`N \ge 2`
        - temperature (float): :math:`\tau`. Default: 0.05 (the paper's)
        - rows_per_chunk (int): rows of :math:`P` held at once (memory only; the value does not change)

    Shape:
        - Output: a Python float.
    """
    n = len(probabilities)
    if n < 2:
        raise ValueError("soft_neighbourhood_density needs at least two outputs")
    unit = F.normalize(probabilities.double(), dim=1)
    total = 0.0
    for start in range(0, n, rows_per_chunk):   # chunks of rows, not samples: each chunk is one matrix product
        logits = unit[start:start + rows_per_chunk] @ unit.t() / temperature
        rows = torch.arange(len(logits))
        logits[rows, rows + start] = float("-inf")      # no target is its own neighbour
        total += torch.special.entr(logits.softmax(dim=1)).sum().item()
    return total / n


def mean_entropy(probabilities: torch.Tensor) -> float:
    r"""Mean prediction entropy :math:`\frac{1}{N}\sum_i -\sum_c p_{ic} \log p_{ic}`; lower is more confident.

    Inputs:
        - probabilities (tensor): softmax outputs of shape :math:`(N, C)`

    Shape:
        - Output: a Python float.
    """
    return torch.special.entr(probabilities.double()).sum(dim=1).mean().item()


def information_maximisation(probabilities: torch.Tensor) -> float:
    r"""Information maximisation, :math:`H(\bar p) - \frac{1}{N}\sum_i H(p_i)` with :math:`\bar p` the mean
    output: confident outputs that still spread over the classes score high.

    Inputs:
        - probabilities (tensor): softmax outputs of shape :math:`(N, C)`

    Shape:
        - Output: a Python float.
    """
    mean_output = probabilities.double().mean(dim=0)
    return torch.special.entr(mean_output).sum().item() - mean_entropy(probabilities)


@dataclass(frozen=True)
class Score:
    function: Callable[[torch.Tensor], float]
    higher_is_better: bool


#: name -> a label-free score of target softmax outputs, and which way is better
SCORES = {
    "snd": Score(soft_neighbourhood_density, True),
    "entropy": Score(mean_entropy, False),
    "im": Score(information_maximisation, True),
}


def better_of(score: str, first: float, second: float) -> int:
    """0 when ``first`` is at least as good as ``second`` under :data:`SCORES` ``[score]``, else 1 (ties keep the
    first, e.g. the baseline)."""
    higher = SCORES[score].higher_is_better
    return 0 if (first >= second if higher else first <= second) else 1
