"""What the example scripts share, under the names and signatures of tllib's ``utils.py``, so that
scripts written against tllib's port over: ``get_model_names``, ``get_model``, ``get_dataset_names``,
``get_dataset``, ``get_train_transform``, ``get_val_transform``, ``validate``,
``empirical_risk_minimization``; and ``main``, which runs a method on the engine.

The engine itself (flags, batches, training loop, checkpoints, analysis) is :mod:`ila_tllib.engine`.
"""
import bisect
import os
import sys
import time

import torch.nn.functional as F
import torchvision.transforms as T
from torch.utils.data import ConcatDataset

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from ila_tllib import backend, engine, transforms  # noqa: E402
from ila_tllib.datasets import build_domain, class_names, get_dataset_names, val_is_test  # noqa: E402,F401
from ila_tllib.models import DIGIT_ARCHS, TLLIB_RESNETS, with_timm_feature_maps  # noqa: E402
from ila_tllib.models import get_model as _get_model  # noqa: E402
from ila_tllib.transforms import get_val_transform  # noqa: E402,F401


def get_model_names():
    """Every ``-a``: the digit networks, tllib's ResNets and timm's models."""
    import timm
    return sorted(tuple(DIGIT_ARCHS) + tuple(TLLIB_RESNETS)) + timm.list_models()


def get_model(model_name, pretrain=True):
    """tllib's ``utils.get_model``: a backbone with ``out_features``, ImageNet weights when ``pretrain``; a
    timm CNN gives feature maps, as tllib's (see :func:`ila_tllib.models.with_timm_feature_maps`)."""
    backbone = _get_model(model_name, scratch=not pretrain)
    if model_name in DIGIT_ARCHS or model_name in TLLIB_RESNETS:
        return backbone
    return with_timm_feature_maps(backbone)


class MultipleDomainsDataset(ConcatDataset):
    """Domains joined as tllib's ``MultipleDomainsDataset`` joins them: an item is ``(image, label,
    domain_id)``; ``domains``, ``domain_names`` and ``domain_ids`` as tllib names them."""

    def __init__(self, domains, domain_names, domain_ids):
        super().__init__(domains)
        self.domains, self.domain_names, self.domain_ids = self.datasets, list(domain_names), list(domain_ids)

    def __getitem__(self, index):
        index = index if index >= 0 else len(self) + index
        part = bisect.bisect_right(self.cumulative_sizes, index)
        return tuple(super().__getitem__(index)) + (self.domain_ids[part],)


def get_dataset(dataset_name, root, source, target, train_source_transform, val_transform,
                train_target_transform=None):
    """tllib's ``utils.get_dataset``: ``(train_source, train_target, val, test, num_classes, class_names)``.
    As tllib's: the digits take the first source and target, whole datasets; any other dataset joins each
    list of domains in a :class:`MultipleDomainsDataset`, sources numbered from 0 and targets after them;
    the target's test split tests the digits and DomainNet."""
    train_target_transform = train_target_transform or train_source_transform
    if dataset_name == 'Digits':
        def joined(tasks, split, transform, first_id):
            return build_domain(dataset_name, root, tasks[0], split=split, transform=transform)
    else:
        def joined(tasks, split, transform, first_id):
            return MultipleDomainsDataset([build_domain(dataset_name, root, task, split=split, transform=transform)
                                           for task in tasks], tasks, range(first_id, first_id + len(tasks)))
    train_source = joined(source, 'train', train_source_transform, 0)
    train_target = joined(target, 'train', train_target_transform, len(source))
    val = joined(target, 'val', val_transform, len(source))
    test = val if val_is_test(dataset_name) else joined(target, 'test', val_transform, len(source))
    names = class_names(train_source)
    return train_source, train_target, val, test, len(names), names


def get_train_transform(resizing='default', scale=(0.08, 1.0), ratio=(3. / 4., 4. / 3.), random_horizontal_flip=True,
                        random_color_jitter=False, resize_size=224, norm_mean=(0.485, 0.456, 0.406),
                        norm_std=(0.229, 0.224, 0.225), auto_augment=None):
    """tllib's ``utils.get_train_transform``: the resizing, a random flip, then (before ``ToTensor``) timm's
    AutoAugment or RandAugment policy ``auto_augment`` (e.g. ``'rand-m9-mstd0.5'``), or else with
    ``random_color_jitter`` a colour jitter of 0.5 in brightness, contrast, saturation and hue."""
    composed = transforms.get_train_transform(resizing, scale, ratio, random_horizontal_flip, resize_size,
                                              norm_mean, norm_std)
    if auto_augment:
        from PIL import Image
        from timm.data.auto_augment import auto_augment_transform, rand_augment_transform
        size = resize_size if resizing == 'res.' else 224
        params = dict(translate_const=int(size * 0.45), img_mean=tuple(min(255, round(255 * x)) for x in norm_mean),
                      interpolation=Image.BILINEAR)
        policy = rand_augment_transform if auto_augment.startswith('rand') else auto_augment_transform
        composed.transforms.insert(-2, policy(auto_augment, params))
    elif random_color_jitter:
        composed.transforms.insert(-2, T.ColorJitter(brightness=0.5, contrast=0.5, saturation=0.5, hue=0.5))
    return composed


def validate(val_loader, model, args, device):
    """tllib's ``utils.validate``: prints tllib's lines, returns the top-1 accuracy; a per-class table with
    ``--per-class-eval`` and ``args.class_names``."""
    return engine.validate(val_loader, model, args, device, getattr(args, 'class_names', None))


def empirical_risk_minimization(train_source_iter, model, optimizer, lr_scheduler, epoch, args, device):
    """tllib's ``utils.empirical_risk_minimization``: one epoch of ``args.iters_per_epoch`` source-only steps
    (cross-entropy on ``model(x) -> (logits, features)``), printing tllib's progress lines."""
    meters = [backend.AverageMeter('Time', ':3.1f'), backend.AverageMeter('Data', ':3.1f'),
              backend.AverageMeter('Loss', ':3.2f'), backend.AverageMeter('Cls Acc', ':3.1f')]
    batch_time, data_time, losses, cls_accs = meters
    progress = backend.ProgressMeter(args.iters_per_epoch, meters, prefix="Epoch: [{}]".format(epoch))
    model.train()
    end = time.time()
    for i in range(args.iters_per_epoch):
        x_s, labels_s = next(train_source_iter)[:2]
        x_s, labels_s = x_s.to(device), labels_s.to(device)
        data_time.update(time.time() - end)
        logits = model(x_s)[0]
        loss = F.cross_entropy(logits, labels_s)
        losses.update(loss.item(), x_s.size(0))
        cls_accs.update(backend.accuracy(logits, labels_s)[0].item(), x_s.size(0))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        lr_scheduler.step()
        batch_time.update(time.time() - end)
        end = time.time()
        if i % args.print_freq == 0:
            progress.display(i)


def main(method):
    """Parse tllib's flags for ``method`` (plus ILA-DA's) and run; exits 0, 2 (bad input) or 3 (divergence)."""
    engine.main(method)
