"""What the example scripts share, under the names of tllib's ``utils.py`` so that scripts written
against tllib port over: model and dataset lookup, tllib's transforms, evaluation, and ``main``.

The engine itself (flags, batches, training loop, checkpoints, analysis) is :mod:`ila_tllib.engine`.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from ila_tllib import engine  # noqa: E402
from ila_tllib.datasets import get_dataset_names  # noqa: E402,F401
from ila_tllib.engine.data import get_dataset as _engine_dataset  # noqa: E402
from ila_tllib.models import get_model as _get_model  # noqa: E402
from ila_tllib.transforms import get_train_transform, get_val_transform  # noqa: E402,F401

validate = engine.validate


def get_model(model_name, pretrain=True):
    """tllib's ``utils.get_model``: a backbone with ``out_features``, ImageNet weights when ``pretrain``."""
    return _get_model(model_name, scratch=not pretrain)


def get_dataset(args):
    """The run's datasets from its flags: ``(train_source, train_target, val, test, num_classes,
    class_names, val_transform)``, as tllib's scripts unpack them."""
    return _engine_dataset(args)


def main(method):
    """Parse tllib's flags for ``method`` (plus ILA-DA's) and run; exits 0, 2 (bad input) or 3 (divergence)."""
    engine.main(method)
