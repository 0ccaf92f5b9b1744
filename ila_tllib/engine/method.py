"""What an adversarial method adds to the shared training engine.

A method is a small object whose hooks the engine calls; the defaults are DANN's network, parameter groups
and meters, and ``build_transfer`` / ``transfer_loss`` are each method's own (``ila_dann.DANN`` has DANN's).
ILA-DA plugs into every method the same way: it reads the bottleneck ``features`` and target ``logits`` of
:class:`Outputs`, whatever else the method computes.

=====================  ===========================================================================
hook                   what it says
=====================  ===========================================================================
``name``               tllib's script name (``dann``, ``cdan``, ``mdd``, ``bsp``): the default --log, and
                       the ``method:`` line by which ``python -m ila_tllib.tables`` names the run (required)
``description``        --help's first line (required)
``defaults``           tllib's defaults where that script differs from ``dann.py`` (e.g. ``lr``), and
                       ILA's where the method needs others (e.g. ``ila_spectral_penalty``)
``meters``             the training line's columns and formats, as tllib's script prints them (with
                       ``Time``, ``Data``, ``Loss`` and ``Cls Acc``, which the loop fills)
``add_arguments``      the method's own flags (tllib's names and defaults)
``add_ila_arguments``  the method's own ILA-DA flags, listed in --help's ILA-DA group
``check_args``         refuses the method's own flags' bad values (exit 2), before any folder is made
``kept_inputs``        files of --log a new run reads, left in place when it sets older checkpoints aside
``source_only_phases`` the method's own source-only training (BSP's pretraining), checked like
                       ``--pretrain-iters`` for a source batch BatchNorm can train on
``build_classifier``   the network (default: tllib's ``ImageClassifier``: bottleneck + linear head)
``forward``            network → :class:`Outputs` (logits, features, any other heads)
``feature_extractor``  images → features, for the analysis phase
``build_transfer``     the adaptation loss module, an ``nn.Module`` (it owns the discriminator, if any)
``param_groups``       what the optimiser trains, with tllib's per-group learning rates (the default adds
                       ``transfer.domain_discriminator``'s: a method without one overrides it)
``transfer_loss``      the weighted adaptation term (a tensor) and the meters it fills
``pretrain``           the method's own training before adaptation (BSP's on the source); not on --resume
``on_step``            after each training forward pass (MDD steps its reversal layer's schedule)
``epoch_lr_line``      the learning-rate line before each epoch, as tllib's script prints it
``namespace_names``    the names tllib's script gives some flags in its printed ``Namespace`` line
``namespace_after``    where tllib's script has the method's own flags, in that line and in ``--help``
=====================  ===========================================================================
"""
import argparse
from typing import Dict, List, NamedTuple, Tuple

import torch
import torch.nn as nn

__all__ = ["Outputs", "Method", "placed_after"]


class Outputs(NamedTuple):
    """One forward pass: ``logits`` :math:`(N, C)`, ``features`` :math:`(N, D)` (the bottleneck output
    ILA-DA compares) and ``heads``, any further per-sample outputs of the method (MDD's adversarial
    logits), each :math:`(N, \\ldots)`."""
    logits: torch.Tensor
    features: torch.Tensor
    heads: Tuple[torch.Tensor, ...] = ()

    def rows(self, index) -> "Outputs":
        return Outputs(self.logits[index], self.features[index], tuple(h[index] for h in self.heads))


class Method:
    """DANN's network, parameter groups and meters; a subclass gives its ``name``, ``description``,
    build_transfer and transfer_loss and overrides the hooks that differ (see the module docstring)."""
    #: no default: a method that inherited DANN's name would log into ``dann/`` and be filed as DANN
    name: str
    #: the first line of --help
    description: str
    defaults: Dict[str, object] = {}
    meters = (('Time', ':5.2f'), ('Data', ':5.2f'), ('Loss', ':6.2f'), ('Cls Acc', ':3.1f'),
              ('Domain Acc', ':3.1f'))
    #: flag (the engine's name) -> the name it has in tllib's script's Namespace, where they differ
    namespace_names: Dict[str, str] = {}
    #: flag -> the flag it follows in tllib's script's Namespace (the engine's parser adds a method's own
    #: flags after the shared ones; tllib's scripts interleave them), applied in this order
    namespace_after: Dict[str, str] = {}

    def add_arguments(self, parser):
        pass

    def add_ila_arguments(self, group):
        """The method's own ILA-DA flags, into the --help group of ILA-DA's (MDD's --ila-features)."""

    def check_args(self, args):
        """Raise :class:`~.errors.UsageError` for bad values of the method's own flags."""

    def build_classifier(self, args, backbone: nn.Module, num_classes: int, pool_layer) -> nn.Module:
        from .. import backend
        return backend.ImageClassifier(backbone, num_classes, bottleneck_dim=args.bottleneck_dim,
                                       pool_layer=pool_layer, finetune=not args.scratch)

    def forward(self, classifier: nn.Module, x: torch.Tensor) -> Outputs:
        logits, features = classifier(x)
        return Outputs(logits, features)

    def feature_extractor(self, classifier: nn.Module) -> nn.Module:
        """Images → bottleneck features, for ``--phase analysis`` (t-SNE, A-distance, the affinity figure)."""
        return nn.Sequential(classifier.backbone, classifier.pool_layer, classifier.bottleneck)

    def build_transfer(self, args, classifier: nn.Module, num_classes: int, source_size: int,
                       target_size: int) -> nn.Module:
        raise NotImplementedError

    def param_groups(self, classifier: nn.Module, transfer: nn.Module) -> list:
        return classifier.get_parameters() + transfer.domain_discriminator.get_parameters()

    def transfer_loss(self, args, transfer: nn.Module, source: Outputs,
                      target: Outputs) -> Tuple[torch.Tensor, Dict[str, float]]:
        """The weighted adaptation term of the total loss, and the values of this method's meters."""
        raise NotImplementedError

    def namespace_line(self, args) -> str:
        """The run's flags as the first line of the log, ``Namespace(...)``, in the order and with the names
        of tllib's script (:attr:`namespace_after`, :attr:`namespace_names`)."""
        values = vars(args)
        order = placed_after(list(values), self.namespace_after)
        return repr(argparse.Namespace(**{self.namespace_names.get(k, k): values[k] for k in order}))

    def epoch_lr_line(self, rates: List[float]) -> str:
        """The line printed before each epoch, from the groups' current rates: tllib's dann.py, cdan.py and
        bsp.py print the first group's."""
        return f"lr: {rates[0]}"

    def pretrain(self, args, trainer, source_iter, evaluate, path: str):
        """Before adaptation (not on --resume): BSP trains the classifier on the source here."""

    def kept_inputs(self, args) -> Dict[str, str]:
        """Files a new training run reads that must stay where they are when it sets an earlier run's
        checkpoints aside (path -> the flag that names it): BSP's --pretrain, so the same command runs again."""
        return {}

    def source_only_phases(self, args) -> List[Tuple[str, str]]:
        """The method's own source-only phases a new training run goes through, each as ``(what it is, what
        else avoids it)`` for the message that refuses a source batch too small for BatchNorm."""
        return []

    def on_step(self, classifier: nn.Module):
        """After each training forward pass (MDD steps its reversal layer's schedule here)."""


def placed_after(names: List[str], after: Dict[str, str]) -> List[str]:
    """``names`` with each key of ``after`` moved right behind its value, in ``after``'s order (pairs whose
    names are not both there are skipped): tllib's order for the flags of :attr:`Method.namespace_after`."""
    order = list(names)
    for name, anchor in after.items():
        if name in order and anchor in order:
            order.remove(name)
            order.insert(order.index(anchor) + 1, name)
    return order


def domain_accuracy(transfer: nn.Module) -> float:
    """The discriminator accuracy (%) tllib's adversarial losses record on their last call."""
    if isinstance(transfer, nn.parallel.DistributedDataParallel):
        transfer = transfer.module
    return float(transfer.domain_discriminator_accuracy)
