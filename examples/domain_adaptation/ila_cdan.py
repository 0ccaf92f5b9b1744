"""ILA-DA + CDAN: tllib's cdan.py recipe with the instance-level affinity loss added.

    python examples/domain_adaptation/ila_cdan.py data/office31 -s A -t W -a resnet50 --epochs 20 --seed 2 \
        --log logs/ila_cdan/Office31_A2W

``--ila-trade-off 0`` is tllib's CDAN; ``--trade-off 0 --ila-trade-off 0`` is source only.
"""
import utils
from ila_tllib import backend
from ila_tllib.engine import Method, UsageError, domain_accuracy


class CDAN(Method):
    name = 'cdan'
    description = 'ILA-DA + CDAN for Unsupervised Domain Adaptation'
    meters = (('Time', ':3.1f'), ('Data', ':3.1f'), ('Loss', ':3.2f'), ('Trans Loss', ':3.2f'),
              ('Cls Acc', ':3.1f'), ('Domain Acc', ':3.1f'))
    namespace_after = {'randomized': 'scratch', 'randomized_dim': 'randomized', 'entropy': 'randomized_dim'}

    def add_arguments(self, parser):
        parser.add_argument('-r', '--randomized', action='store_true',
                            help='using randomized multi-linear-map (default: False)')
        parser.add_argument('-rd', '--randomized-dim', default=1024, type=int,
                            help='randomized dimension when using randomized multi-linear-map (default: 1024)')
        parser.add_argument('--entropy', default=False, action='store_true', help='use entropy conditioning')

    def check_args(self, args):
        if args.randomized_dim < 1:
            raise UsageError("--randomized-dim must be at least 1")

    def build_transfer(self, args, classifier, num_classes, source_size, target_size):
        # the multilinear map g (x) f has C * D entries unless randomized
        in_feature = args.randomized_dim if args.randomized else classifier.features_dim * num_classes
        discriminator = backend.DomainDiscriminator(in_feature, hidden_size=1024)
        return backend.ConditionalDomainAdversarialLoss(
            discriminator, entropy_conditioning=args.entropy, num_classes=num_classes,
            features_dim=classifier.features_dim, randomized=args.randomized, randomized_dim=args.randomized_dim)

    def transfer_loss(self, args, transfer, source, target):
        loss = transfer(source.logits, source.features, target.logits, target.features)
        return args.trade_off * loss, {'Trans Loss': loss.item(), 'Domain Acc': domain_accuracy(transfer)}


if __name__ == '__main__':
    utils.main(CDAN())
