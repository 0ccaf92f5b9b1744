"""A slowly moving copy of the network whose features decide ILA's affinities (``--ila-mining-ema``).

Early in training the kNN vote on the network's own features is mostly wrong, and it changes from one
step to the next with the network. An exponential moving average of the weights (as the mean teacher of
Tarvainen and Valpola, 2017) gives features that change slowly: ILA mines its pairs on them, while the
contrastive loss still pulls and pushes the network's own features.
"""
import copy

import torch
import torch.nn as nn

__all__ = ["MovingAverageNetwork"]


class MovingAverageNetwork:
    r"""Weights :math:`\bar\theta \leftarrow \alpha \bar\theta + (1 - \alpha) \theta` after every optimiser
    step; buffers (BatchNorm's running statistics, step counters) are copied as they are.

    Args:
        model (nn.Module): the network to follow; it is copied now and again by :meth:`restart_from`.
        decay (float): :math:`\alpha` in [0, 1); 0.99 averages over about the last hundred steps.
    """

    def __init__(self, model: nn.Module, decay: float):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"the moving average's decay must lie in [0, 1), got {decay}")
        self.decay = decay
        self.model = copy.deepcopy(model).requires_grad_(False)

    @torch.no_grad()
    def restart_from(self, model: nn.Module):
        """The average starts again at ``model``'s weights (when adaptation starts, after any pre-training)."""
        self.model.load_state_dict(model.state_dict())

    @torch.no_grad()
    def update(self, model: nn.Module):
        for mine, theirs in zip(self.model.parameters(), model.parameters()):
            mine.lerp_(theirs.detach(), 1.0 - self.decay)
        for mine, theirs in zip(self.model.buffers(), model.buffers()):
            mine.copy_(theirs)
