"""A slowly moving copy of the network whose features decide ILA's affinities (``--ila-mining-ema``).

ILA mines its pairs (kNN vote, ratio test) on a second forward pass, without gradient, through a copy of
the network, while the contrastive loss still pulls and pushes the network's own features, so that the
network does not pull together exactly the features that chose the pairs. The copy is an exponential moving
average of the weights (as the mean teacher of Tarvainen and Valpola, 2017). With a decay near 0 (the
scripts' default, 1e-6) it holds the current weights and the second pass differs by its own dropout masks;
with 0.99 it lags about a hundred steps.

``--ila-mining-average`` says which part is averaged (:data:`MINING_AVERAGES`): the layers from the
network's first dropout layer to its features, fed with the input that layer received in the network's own
pass (the default: the layers before it are deterministic, so the second pass need not repeat them); the
whole network, at the price of a second forward pass of every row; the whole network in evaluation mode,
which needs only the rows ILA mines on; or only the bottleneck, fed with the backbone features the
network's own pass already computed (detached), at almost no cost.
"""
import copy
from typing import List, Sequence

import torch
import torch.nn as nn

from .errors import UsageError

__all__ = ["MovingAverageNetwork", "MovingAverageEvalNetwork", "MovingAverageTail", "MovingAverageBottleneck",
           "MovingAverageFromDropout", "MINING_AVERAGES", "DEFAULT_MINING_AVERAGE", "describe_mining"]


class MovingAverageNetwork:
    r"""Weights :math:`\bar\theta \leftarrow \alpha \bar\theta + (1 - \alpha) \theta` after every optimiser
    step; buffers (BatchNorm's running statistics, step counters) are copied as they are.

    Args:
        classifier (nn.Module): the network to follow (tllib's ``ImageClassifier`` or alike); its averaged
            part is copied now and again by :meth:`restart_from`.
        decay (float): :math:`\alpha` in [0, 1); 0.99 averages over about the last hundred steps.
        method (Method, optional): the method whose ``feature_extractor`` says which layers lead from the
            images to the features (needed by :class:`MovingAverageFromDropout` only).
    """

    def __init__(self, classifier: nn.Module, decay: float, method=None):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"the moving average's decay must lie in [0, 1), got {decay}")
        self.decay, self.method = decay, method
        self.model = copy.deepcopy(self.part(classifier)).requires_grad_(False)

    def part(self, classifier: nn.Module) -> nn.Module:
        """The part of ``classifier`` this average follows."""
        return classifier

    def describe(self) -> str:
        """One log line saying what ILA mines on."""
        return (f"ILA mines on: a second pass of the whole network, without gradient, through a moving average "
                f"of its weights (decay {self.decay:g})")

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

    def __init__(self, classifier: nn.Module, decay: float, method=None):
        super().__init__(classifier, decay, method)
        self.model.eval()

    def describe(self) -> str:
        return super().describe().replace("the whole network", "the whole network in evaluation mode")

    def features(self, method, inputs: torch.Tensor, rows: Sequence[slice]) -> List[torch.Tensor]:
        chosen = [inputs[r] for r in rows]
        # tllib's classifiers return only the logits in evaluation mode: the features come from the
        # method's own feature extractor, as in the analysis phase
        features = method.feature_extractor(self.model)(torch.cat(chosen))
        return list(features.split([len(c) for c in chosen]))


class MovingAverageTail(MovingAverageNetwork):
    """The average of the network's last layers, applied to the input the first of them received in the
    network's last forward pass (detached), so that the layers before them do not run again. Subclasses
    choose the layers (:meth:`part`) and call :meth:`watch_input` on the first of them, or
    :meth:`watch_output` on the last layer when there are none (the features are then the network's own)."""

    def __init__(self, classifier: nn.Module, decay: float, method=None):
        super().__init__(classifier, decay, method)
        self.kept = None

    def watch_input(self, layer: nn.Module):
        layer.register_forward_pre_hook(self._keep_input)

    def watch_output(self, layer: nn.Module):
        layer.register_forward_hook(self._keep_output)

    def _keep_input(self, module, inputs):
        if module.training:     # a layer that works in place would change the tensor kept
            self.kept = inputs[0].detach().clone()

    def _keep_output(self, module, inputs, output):
        if module.training:
            self.kept = output.detach()

    def features(self, method, inputs: torch.Tensor, rows: Sequence[slice]) -> List[torch.Tensor]:
        kept, self.kept = self.kept, None    # read once: a later step needs its own
        if kept is None or kept.shape[0] != inputs.shape[0]:
            raise RuntimeError("the average ILA mines on reads what the network's last forward pass computed, "
                               "which must be this step's")
        features = self.model(kept)
        return [features[r] for r in rows]


class MovingAverageBottleneck(MovingAverageTail):
    """The average of the bottleneck alone, applied to the input the network's own bottleneck received in
    its last forward pass (the backbone's pooled features, detached): no second pass through the backbone."""

    def __init__(self, classifier: nn.Module, decay: float, method=None):
        bottleneck = getattr(classifier, "bottleneck", None)
        if not isinstance(bottleneck, nn.Module) or next(bottleneck.parameters(), None) is None:
            raise UsageError("--ila-mining-average bottleneck needs a classifier whose `bottleneck` module has "
                             "weights; use --ila-mining-average network")
        super().__init__(classifier, decay, method)
        self.watch_input(bottleneck)

    def part(self, classifier: nn.Module) -> nn.Module:
        # the bottleneck as the method reads its features: the last step of its feature extractor (MDD's
        # --ila-features before-dropout stops before the bottleneck's last layer)
        return classifier.bottleneck if self.method is None else self.method.feature_extractor(classifier)[-1]

    def describe(self) -> str:
        return (f"ILA mines on: the bottleneck's output through a moving average of the bottleneck alone "
                f"(decay {self.decay:g}), fed with the backbone features of the network's own pass")


def is_stochastic(module: nn.Module) -> bool:
    """Whether two training-mode passes of ``module`` over the same input may differ: it holds a dropout
    layer of torch.nn or timm's ``DropPath`` with a drop probability above 0."""
    return any((isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0)
               or (type(m).__name__ == "DropPath" and getattr(m, "drop_prob", 0) > 0) for m in module.modules())


def layers_in_order(module: nn.Module) -> List[nn.Module]:
    """``module``'s layers in the order its forward runs them: an ``nn.Sequential`` whose forward is
    Sequential's own is opened, recursively; any other module is one layer."""
    if isinstance(module, nn.Sequential) and type(module).forward is nn.Sequential.forward:
        return [layer for child in module for layer in layers_in_order(child)]
    return [module]


class MovingAverageFromDropout(MovingAverageTail):
    """The average of the layers from the network's first dropout layer to its features, fed with the input
    that layer received in the network's own pass (detached). The layers before it are deterministic, so a
    second pass through them would repeat the network's own; only the rest runs again, with its own dropout
    masks. With a decay near 0 this is the second pass of the whole network (the same weights, fresh
    masks), at the cost of the layers after the first dropout. A network with no dropout before its
    features has nothing to run again: ILA mines on the network's own features, detached.

    The layers leading to the features are those of ``method.feature_extractor(classifier)``, opened by
    :func:`layers_in_order`. A forward pre-hook on the first stochastic one (:func:`is_stochastic`) keeps
    its input; without one, a forward hook on the last keeps the features.
    """

    def __init__(self, classifier: nn.Module, decay: float, method=None):
        if method is None:
            raise ValueError("the average from the first dropout layer needs the method, whose feature_extractor "
                             "says which layers lead to the features")
        layers = layers_in_order(method.feature_extractor(classifier))
        self.start = next((i for i, layer in enumerate(layers) if is_stochastic(layer)), len(layers))
        self.names = [type(layer).__name__ for layer in layers]
        super().__init__(classifier, decay, method)
        if self.start < len(layers):
            self.watch_input(layers[self.start])
        else:
            self.watch_output(layers[-1])

    def part(self, classifier: nn.Module) -> nn.Module:
        return nn.Sequential(*layers_in_order(self.method.feature_extractor(classifier))[self.start:])

    def describe(self) -> str:
        if self.start == len(self.names):
            return ("ILA mines on: the network's own features (it has no dropout before them, so a second pass "
                    "would return them)")
        return (f"ILA mines on: a second pass, without gradient, from the network's first dropout layer on "
                f"({self.names[self.start]}, layer {self.start + 1} of {len(self.names)}; the layers before "
                f"it are the network's own pass), through a moving average of its weights (decay {self.decay:g})")


#: --ila-mining-average: which part of the network the moving average ILA mines on copies
MINING_AVERAGES = {"from-dropout": MovingAverageFromDropout, "network": MovingAverageNetwork,
                   "network-eval": MovingAverageEvalNetwork, "bottleneck": MovingAverageBottleneck}

#: --ila-mining-average when --ila-mining-ema > 0 and it is not given: with the default decay (the current
#: weights) it mines on the same features as a second pass of the whole network, for a part of its cost
DEFAULT_MINING_AVERAGE = "from-dropout"


def describe_mining(average) -> str:
    """The log line saying what ILA mines on: ``average``'s (a moving average above), or, without one
    (``--ila-mining-ema 0``), the network's own pass, as the paper mines."""
    return average.describe() if average is not None else \
        "ILA mines on: the network's own pass (its features and logits, detached), as the paper"
