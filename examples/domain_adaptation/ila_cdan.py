"""ILA-DA + CDAN: tllib's cdan.py recipe with the instance-level affinity loss added.

    python examples/domain_adaptation/ila_cdan.py data/office31 -s A -t W -a resnet50 --epochs 20 --seed 1 \
        --log logs/ila_cdan/Office31_A2W

``--ila-trade-off 0`` is tllib's CDAN; ``--trade-off 0 --ila-trade-off 0`` is source only.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import utils  # noqa: E402
from ila_tllib.backend import ConditionalDomainAdversarialLoss, DomainDiscriminator  # noqa: E402


def build(args, classifier, num_classes, device):
    # the multilinear map g (x) f has C * D entries unless randomized
    in_feature = args.randomized_dim if args.randomized else classifier.features_dim * num_classes
    domain_discri = DomainDiscriminator(in_feature, hidden_size=1024).to(device)
    domain_adv = ConditionalDomainAdversarialLoss(
        domain_discri, entropy_conditioning=args.entropy, num_classes=num_classes,
        features_dim=classifier.features_dim, randomized=args.randomized,
        randomized_dim=args.randomized_dim).to(device)
    return domain_discri, domain_adv


def transfer_loss(domain_adv, y_s, f_s, y_t, f_t):
    return domain_adv(y_s, f_s, y_t, f_t)


# tllib's cdan.py prints these meters with these formats
METERS = (('Time', ':3.1f'), ('Data', ':3.1f'), ('Loss', ':3.2f'), ('Trans Loss', ':3.2f'), ('Cls Acc', ':3.1f'),
          ('Domain Acc', ':3.1f'))
CDAN = utils.Method('cdan', build, transfer_loss, METERS)

if __name__ == '__main__':
    utils.main(CDAN, 'ILA-DA + CDAN for Unsupervised Domain Adaptation')
