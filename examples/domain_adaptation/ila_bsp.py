"""ILA-DA + BSP: tllib's bsp.py recipe (DANN's adversary plus batch spectral penalization, after
source-only pretraining) with the instance-level affinity loss added.

    python examples/domain_adaptation/ila_bsp.py data/office31 -s A -t W -a resnet50 --epochs 20 --seed 1 \
        --log logs/ila_bsp/Office31_A2W

``--ila-trade-off 0`` is tllib's BSP.
"""
import torch.nn as nn

import utils
from ila_dann import DANN
from ila_tllib import backend
from ila_tllib.engine import UsageError, domain_accuracy
from ila_tllib.engine.checkpoint import load_weights

PRETRAIN_FIX = 'give a --pretrain file written by this script with the same flags, or leave --pretrain out'


class BSPLoss(nn.Module):
    """DANN's domain adversarial loss and the spectral penalty, side by side."""

    def __init__(self, domain_adv):
        super().__init__()
        self.domain_adv, self.bsp = domain_adv, backend.BatchSpectralPenalizationLoss()
        self.domain_discriminator = domain_adv.domain_discriminator

    def forward(self, f_s, f_t):
        return self.domain_adv(f_s, f_t), self.bsp(f_s, f_t)

    @property
    def domain_discriminator_accuracy(self):
        return self.domain_adv.domain_discriminator_accuracy


class BSP(DANN):
    name = 'bsp'
    description = 'ILA-DA + BSP for Unsupervised Domain Adaptation'
    defaults = dict(lr=0.003,                   # tllib's bsp.py
                    ila_spectral_penalty=0.0)   # BSP's loss has the penalty already
    namespace_after = {'pretrain': 'arch', 'trade_off_bsp': 'trade_off', 'pretrain_lr': 'lr',
                       'pretrain_epochs': 'epochs', 'resize_size': 'ratio'}

    def add_arguments(self, parser):
        parser.add_argument('--pretrain', type=str, default=None, help='pretrain checkpoint for classification model')
        parser.add_argument('--trade-off-bsp', default=2e-4, type=float, help='the trade-off hyper-parameter for bsp loss')
        parser.add_argument('--pretrain-lr', default=0.001, type=float, help='initial pretrain learning rate')
        parser.add_argument('--pretrain-epochs', default=3, type=int, metavar='N',
                            help='number of total epochs(pretrain) to run (default: 3)')

    def check_args(self, args):
        for flag, value in (('--pretrain-epochs', args.pretrain_epochs), ('--trade-off-bsp', args.trade_off_bsp)):
            if value < 0:
                raise UsageError(f"{flag} {value} cannot be negative")
        if args.pretrain_lr <= 0:
            raise UsageError(f"--pretrain-lr {args.pretrain_lr} must be positive")

    def source_only_phases(self, args):
        return [("BSP's source-only pretraining", " or give --pretrain")] \
            if args.pretrain is None and args.pretrain_epochs > 0 else []

    def build_classifier(self, args, backbone, num_classes, pool_layer):
        classifier = backend.BSPClassifier(backbone, num_classes, bottleneck_dim=args.bottleneck_dim,
                                           pool_layer=pool_layer, finetune=not args.scratch)
        if args.pretrain is not None and args.phase == 'train' and not args.resume:
            # read before the run sets an earlier run's checkpoints aside: a bad file stops it first, and the
            # file may be one of them
            load_weights(classifier, args.pretrain, '--pretrain', PRETRAIN_FIX)
        return classifier

    def kept_inputs(self, args):
        return {args.pretrain: '--pretrain'} if args.pretrain is not None else {}

    def build_transfer(self, args, classifier, num_classes, source_size, target_size):
        return BSPLoss(super().build_transfer(args, classifier, num_classes, source_size, target_size))

    def transfer_loss(self, args, transfer, source, target):
        adversarial, spectral = transfer(source.features, target.features)
        loss = args.trade_off * adversarial + args.trade_off_bsp * spectral
        return loss, {'Domain Acc': domain_accuracy(transfer)}

    def pretrain(self, args, trainer, source_iter, evaluate, path):
        if args.pretrain is None:   # as tllib: source only, its own learning rate, then saved
            print("Pretraining the model on source domain.")
            trainer.pretrain(source_iter, args.iters_per_epoch, args.pretrain_lr, epochs=args.pretrain_epochs,
                             after_epoch=evaluate, lr_flag='--pretrain-lr')
            trainer.save(path)
            print("Pretraining process is done.")
            load_weights(trainer.model, path, '--pretrain', PRETRAIN_FIX)   # as tllib: the saved weights


if __name__ == '__main__':
    utils.main(BSP())
