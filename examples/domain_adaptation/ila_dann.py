"""ILA-DA + DANN: tllib's dann.py recipe with the instance-level affinity loss added.

    python examples/domain_adaptation/ila_dann.py data/office31 -s A -t W -a resnet50 --epochs 20 --seed 1 \
        --log logs/ila_dann/Office31_A2W

``--ila-trade-off 0`` is tllib's DANN; ``--trade-off 0 --ila-trade-off 0`` is source only.
"""
import utils
from ila_tllib import backend
from ila_tllib.engine import Method, domain_accuracy


class DANN(Method):
    name = 'dann'
    description = 'ILA-DA + DANN for Unsupervised Domain Adaptation'

    def build_transfer(self, args, classifier, num_classes, source_size, target_size):
        discriminator = backend.DomainDiscriminator(in_feature=classifier.features_dim, hidden_size=1024)
        return backend.for_batches('DomainAdversarialLoss', source_size, target_size)(discriminator)

    def transfer_loss(self, args, transfer, source, target):
        loss = transfer(source.features, target.features)
        return args.trade_off * loss, {'Domain Acc': domain_accuracy(transfer)}


if __name__ == '__main__':
    utils.main(DANN())
