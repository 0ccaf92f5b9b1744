"""This package's own implementations of the tllib pieces ILA-DA builds on.

They match tllib 0.4's behaviour (and its ``state_dict`` layouts) and run on current
PyTorch. :mod:`ila_tllib.backend` chooses between these and an installed tllib.
"""
from . import a_distance, tsne
from .adversarial import (ConditionalDomainAdversarialLoss, DomainAdversarialLoss, MultiLinearMap,
                          RandomizedMultiLinearMap, entropy)
from .analysis import collect_feature
from .bsp import BatchSpectralPenalizationLoss
from .classifier import Classifier, ImageClassifier
from .data import ForeverDataIterator, send_to_device
from .digit_nets import DTN, LeNet, dtn, lenet
from .domain_discriminator import DomainDiscriminator
from .grl import GradientReverseFunction, GradientReverseLayer, WarmStartGradientReverseLayer
from .mdd import MarginDisparityDiscrepancy, MDDClassifier, shift_log
from .meter import AverageMeter, ConfusionMatrix, ProgressMeter, accuracy, binary_accuracy
# tllib's datasets in its layouts and from its download sources (they live with the other datasets)
from ..datasets.digits import MNIST, MNISTRGB, SVHN, SVHNRGB, USPS, USPSRGB
from ..datasets.imagenet_variants import ImageNetR, ImageNetSketch
from ..datasets.office import DomainNet, Office31, OfficeHome, VisDA2017
from ..datasets.office_caltech import OfficeCaltech
from ..datasets.pacs import PACS

__all__ = [
    "GradientReverseFunction", "GradientReverseLayer", "WarmStartGradientReverseLayer",
    "DomainDiscriminator",
    "DomainAdversarialLoss", "ConditionalDomainAdversarialLoss", "MultiLinearMap", "RandomizedMultiLinearMap",
    "entropy",
    "Classifier", "ImageClassifier",
    "LeNet", "DTN", "lenet", "dtn",
    "ForeverDataIterator", "send_to_device",
    "AverageMeter", "ProgressMeter", "accuracy", "binary_accuracy", "ConfusionMatrix",
    "collect_feature", "tsne", "a_distance",
    "MarginDisparityDiscrepancy", "MDDClassifier", "shift_log", "BatchSpectralPenalizationLoss", "BSPClassifier",
    "Office31", "OfficeHome", "VisDA2017", "DomainNet", "OfficeCaltech", "PACS", "ImageNetR", "ImageNetSketch",
    "MNIST", "USPS", "SVHN", "MNISTRGB", "USPSRGB", "SVHNRGB",
]

# BSP's classifier is DANN's (bottleneck Linear → BatchNorm1d → ReLU); tllib gives it its own name
BSPClassifier = ImageClassifier
