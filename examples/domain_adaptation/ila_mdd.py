"""ILA-DA + MDD: tllib's mdd.py recipe (margin disparity discrepancy, a main and an adversarial head)
with the instance-level affinity loss added on the bottleneck features.

    python examples/domain_adaptation/ila_mdd.py data/office31 -s A -t W -a resnet50 --epochs 20 --seed 1 \
        --log logs/ila_mdd/Office31_A2W

``--ila-trade-off 0`` is tllib's MDD.
"""
import torch.nn as nn

import utils
from ila_tllib import backend
from ila_tllib.engine import Method, Outputs, UsageError
from ila_tllib.engine.flags import ila_enabled


#: --ila-features: where ILA reads MDD's features, relative to the Dropout(0.5) that ends its bottleneck
#: (the heads read the dropout's output either way)
ILA_FEATURES = {
    "bottleneck": "the bottleneck's output, after its dropout, as the heads read it",
    "before-dropout": "the bottleneck's output before its last Dropout(0.5): no coordinate zeroed at random",
}


class MDD(Method):
    name = 'mdd'
    description = 'ILA-DA + MDD for Unsupervised Domain Adaptation'
    defaults = dict(bottleneck_dim=1024, lr=0.004, lr_gamma=0.0002, weight_decay=0.0005,   # tllib's mdd.py
                    # BSP's weight on these 1024-d features (4x DANN's penalty at the start) collapsed every
                    # digits run to chance: benchmarks/results/mdd_spectral_collapse
                    ila_spectral_penalty=0.0)
    meters = (('Time', ':3.1f'), ('Data', ':3.1f'), ('Loss', ':3.2f'), ('Trans Loss', ':3.2f'),
              ('Cls Acc', ':3.1f'))
    namespace_names = {'weight_decay': 'wd'}   # tllib's mdd.py gives --wd no dest
    namespace_after = {'margin': 'scratch'}
    before_dropout = False     # --ila-features before-dropout, set with the classifier

    def add_arguments(self, parser):
        parser.add_argument('--margin', type=float, default=4., help="margin gamma")

    def add_ila_arguments(self, group):
        group.add_argument('--ila-features', choices=list(ILA_FEATURES), default='bottleneck',
                           help="what ILA mines on and contrasts: " +
                           "; ".join(f"{k}: {v}" for k, v in ILA_FEATURES.items()) + " (default: bottleneck)")

    def check_args(self, args):
        if args.margin <= 0:
            raise UsageError(f"--margin {args.margin} must be positive")

    def build_classifier(self, args, backbone, num_classes, pool_layer):
        # tllib's mdd.py builds it with width = bottleneck dim and without --scratch's finetune switch
        classifier = backend.MDDClassifier(backbone, num_classes, bottleneck_dim=args.bottleneck_dim,
                                           width=args.bottleneck_dim, pool_layer=pool_layer)
        # the classifier returns both heads' logits; ILA reads the bottleneck output they share, or its
        # last layer's input (the Dropout(0.5) that ends it; not in place, so the input stays unmasked)
        self.before_dropout = args.ila_features == 'before-dropout'
        if self.before_dropout:
            last = classifier.bottleneck[-1]
            if not isinstance(last, nn.Dropout) or last.inplace:
                raise UsageError(f"--ila-features before-dropout needs a bottleneck that ends in a Dropout layer "
                                 f"that does not work in place, not {last}; use --ila-features bottleneck")
            last.register_forward_pre_hook(lambda module, inputs: setattr(self, '_features', inputs[0]))
            if ila_enabled(args):
                print(f"ILA reads: {ILA_FEATURES['before-dropout']}")
        else:
            classifier.bottleneck.register_forward_hook(
                lambda module, inputs, output: setattr(self, '_features', output))
        return classifier

    def forward(self, classifier, x):
        logits, logits_adv = classifier(x)
        return Outputs(logits, self._features, (logits_adv,))

    def feature_extractor(self, classifier):
        bottleneck = classifier.bottleneck[:-1] if self.before_dropout else classifier.bottleneck
        return nn.Sequential(classifier.backbone, bottleneck)   # MDD's bottleneck pools

    def epoch_lr_line(self, rates):
        return str(rates)     # tllib's mdd.py prints every group's rate, without a name

    def build_transfer(self, args, classifier, num_classes, source_size, target_size):
        return backend.for_batches('MarginDisparityDiscrepancy', source_size, target_size)(args.margin)

    def param_groups(self, classifier, transfer):
        return classifier.get_parameters()

    def transfer_loss(self, args, transfer, source, target):
        # minimising -MDD trains the features; the reversal layer makes the adversarial head maximise it
        loss = -transfer(source.logits, source.heads[0], target.logits, target.heads[0])
        return args.trade_off * loss, {'Trans Loss': loss.item()}

    def on_step(self, classifier):
        classifier.step()


if __name__ == '__main__':
    utils.main(MDD())
