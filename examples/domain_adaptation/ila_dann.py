"""ILA-DA + DANN: tllib's dann.py recipe with the instance-level affinity loss added.

    python examples/domain_adaptation/ila_dann.py data/office31 -s A -t W -a resnet50 --epochs 20 --seed 1 \
        --log logs/ila_dann/Office31_A2W

``--ila-trade-off 0`` is tllib's DANN; ``--trade-off 0 --ila-trade-off 0`` is source only.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import utils  # noqa: E402
from ila_tllib import backend  # noqa: E402
from ila_tllib.backend import DomainAdversarialLoss, DomainDiscriminator  # noqa: E402


def build(args, classifier, num_classes, device):
    domain_discri = DomainDiscriminator(in_feature=classifier.features_dim, hidden_size=1024).to(device)
    loss = DomainAdversarialLoss
    source_batch = utils.source_batch_size(args, num_classes)
    if source_batch != args.batch_size and loss is not backend.standalone.DomainAdversarialLoss:
        # tllib's loss halves the joint batch, so it needs source and target batches of one size; the
        # standalone loss splits at the source size and equals tllib's when the sizes agree
        print(f"DomainAdversarialLoss: the standalone one, as the source batch ({source_batch}) "
              f"and the target batch ({args.batch_size}) differ")
        loss = backend.standalone.DomainAdversarialLoss
    return domain_discri, loss(domain_discri).to(device)


def transfer_loss(domain_adv, y_s, f_s, y_t, f_t):
    return domain_adv(f_s, f_t)


# tllib's dann.py prints these meters with these formats (no transfer-loss column)
METERS = (('Time', ':5.2f'), ('Data', ':5.2f'), ('Loss', ':6.2f'), ('Cls Acc', ':3.1f'), ('Domain Acc', ':3.1f'))
DANN = utils.Method('dann', build, transfer_loss, METERS)

if __name__ == '__main__':
    utils.main(DANN, 'ILA-DA + DANN for Unsupervised Domain Adaptation')
