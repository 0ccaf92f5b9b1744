"""ILA-DA + DANN: tllib's dann.py recipe with the instance-level affinity loss added.

    python examples/domain_adaptation/ila_dann.py data/office31 -s A -t W -a resnet50 --epochs 20 --seed 1 \
        --log logs/ila_dann/Office31_A2W

``--ila-trade-off 0`` is tllib's DANN; ``--trade-off 0 --ila-trade-off 0`` is source only.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import utils  # noqa: E402
from ila_tllib.backend import DomainAdversarialLoss, DomainDiscriminator  # noqa: E402


def build(args, classifier, num_classes, device):
    domain_discri = DomainDiscriminator(in_feature=classifier.features_dim, hidden_size=1024).to(device)
    return domain_discri, DomainAdversarialLoss(domain_discri).to(device)


def transfer_loss(domain_adv, y_s, f_s, y_t, f_t):
    return domain_adv(f_s, f_t)


DANN = utils.Method('dann', build, transfer_loss)

if __name__ == '__main__':
    utils.main(DANN, 'ILA-DA + DANN for Unsupervised Domain Adaptation')
