"""A slowly moving copy of the network whose features decide ILA's affinities (``--ila-mining-ema``).

ILA mines its pairs (kNN vote, ratio test) on a second forward pass, without gradient, through a copy of
the network, while the contrastive loss still pulls and pushes the network's own features, so that the
network does not pull together exactly the features that chose the pairs. The copy is an exponential moving
average of the weights (as the mean teacher of Tarvainen and Valpola, 2017). With a decay near 0 (the
scripts' default, 1e-6) it holds the current weights and the second pass differs by its own dropout masks;
with 0.99 it lags about a hundred steps.

``--ila-mining-average`` says which part is averaged (:data:`MINING_AVERAGES`): the whole network, at
the price of a second forward pass of every row; the whole network in evaluation mode, which needs only
the rows ILA mines on; or only the bottleneck, fed with the backbone features the network's own pass
already computed (detached), at almost no cost.
"""
import copy
from typing import List, Sequence

import torch
import torch.nn as nn

from .errors import UsageError

__all__ = ["MovingAverageNetwork", "MovingAverageEvalNetwork", "MovingAverageBottleneck", "MINING_AVERAGES"]


class MovingAverageNetwork:
    r"""Weights :math:`\bar\theta \leftarrow \alpha \bar\theta + (1 - \alpha) \theta` after every optimiser
    step; buffers (BatchNorm's running statistics, step counters) are copied as they are.

    Args:
        classifier (nn.Module): the network to follow (tllib's ``ImageClassifier`` or alike); its averaged
            part is copied now and again by :meth:`restart_from`.
        decay (float): :math:`\alpha` in [0, 1); 0.99 averages over about the last hundred steps.
    """

    def __init__(self, classifier: nn.Module, decay: float):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"the moving average's decay must lie in [0, 1), got {decay}")
        self.decay = decay
        self.model = copy.deepcopy(self.part(classifier)).requires_grad_(False)

    @staticmethod
    def part(classifier: nn.Module) -> nn.Module:
        """The part of ``classifier`` this average follows."""
        return classifier

    def features(self, method, inputs: torch.Tensor, rows: Sequence[slice]) -> List[torch.Tensor]:
        """The averaged features of each of ``rows`` of ``inputs``, the images of the step the network has
        just run. In training mode, as the network's own pass: every row goes through (BatchNorm's statistics
        and dropout see the whole batch)."""
        features = method.forward(self.model, inputs).features
        return [features[r] for r in rows]

    @torch.no_grad()
    def restart_from(self, classifier: nn.Module):
        """The average starts again at ``classifier``'s weights (when adaptation starts, after any pre-training)."""
        self.model.load_state_dict(self.part(classifier).state_dict())

    @torch.no_grad()
    def update(self, classifier: nn.Module):
        followed = self.part(classifier)
        for mine, theirs in zip(self.model.parameters(), followed.parameters()):
            mine.lerp_(theirs.detach(), 1.0 - self.decay)
        for mine, theirs in zip(self.model.buffers(), followed.buffers()):
            mine.copy_(theirs)


class MovingAverageEvalNetwork(MovingAverageNetwork):
    """The average in evaluation mode: no dropout, BatchNorm with the running statistics (copied from the
    network at every update), so a row's features do not depend on the others and only ``rows`` go
    through the network. Those statistics are the network's, not the average's: they normalise the
    lagging weights' activations with those of the current ones."""

    def __init__(self, classifier: nn.Module, decay: float):
        super().__init__(classifier, decay)
        self.model.eval()

    def features(self, method, inputs: torch.Tensor, rows: Sequence[slice]) -> List[torch.Tensor]:
        chosen = [inputs[r] for r in rows]
        # tllib's classifiers return only the logits in evaluation mode: the features come from the
        # method's own feature extractor, as in the analysis phase
        features = method.feature_extractor(self.model)(torch.cat(chosen))
        return list(features.split([len(c) for c in chosen]))


class MovingAverageBottleneck(MovingAverageNetwork):
    """The average of the bottleneck alone, applied to the input the network's own bottleneck received in
    its last forward pass (the backbone's pooled features, detached): no second pass through the backbone.
    A forward pre-hook on ``classifier.bottleneck`` keeps that input."""

    def __init__(self, classifier: nn.Module, decay: float):
        bottleneck = getattr(classifier, "bottleneck", None)
        if not isinstance(bottleneck, nn.Module) or next(bottleneck.parameters(), None) is None:
            raise UsageError("--ila-mining-average bottleneck needs a classifier whose `bottleneck` module has "
                             "weights; use --ila-mining-average network")
        super().__init__(classifier, decay)
        self.bottleneck_input = None
        bottleneck.register_forward_pre_hook(self._keep_input)

    @staticmethod
    def part(classifier: nn.Module) -> nn.Module:
        return classifier.bottleneck

    def _keep_input(self, module, inputs):
        self.bottleneck_input = inputs[0].detach()

    def features(self, method, inputs: torch.Tensor, rows: Sequence[slice]) -> List[torch.Tensor]:
        kept, self.bottleneck_input = self.bottleneck_input, None    # read once: a later step needs its own
        if kept is None or kept.shape[0] != inputs.shape[0]:
            raise RuntimeError("the averaged bottleneck reads the input of the network's last forward pass, "
                               "which must be this step's")
        features = self.model(kept)
        return [features[r] for r in rows]


#: --ila-mining-average: which part of the network the moving average ILA mines on copies
MINING_AVERAGES = {"network": MovingAverageNetwork, "network-eval": MovingAverageEvalNetwork,
                   "bottleneck": MovingAverageBottleneck}
