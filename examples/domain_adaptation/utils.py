"""What ila_dann.py and ila_cdan.py share: flags, data, model, training loop, validation, analysis.

The scripts differ only in the adversarial part (discriminator input, loss); everything else —
tllib's recipe (SGD + nesterov, the (1 + γ i)^(-decay) schedule, epochs of ``-i`` iterations,
``latest``/``best`` checkpoints, printed lines) plus the ILA term — lives here once.
"""
import argparse
import os
import random
import sys
import time
import warnings
from typing import Callable, NamedTuple, Optional

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision.transforms as T
import torch.distributed as dist
from torch.utils.data import ConcatDataset, DataLoader, Subset

from ila_tllib import ClassBalancedSampler, ILALoss, RandomBatchSampler, get_metric_loss, get_pseudo_labeller
try:
    from ila_tllib import backend
except ValueError as e:   # a mistyped ILA_TLLIB_BACKEND is bad input like any other: one message, exit code 2
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
from ila_tllib import distributed as dist_utils
from ila_tllib.backend import (AverageMeter, ConfusionMatrix, CompleteLogger, ImageClassifier,
                               ProgressMeter, accuracy)
from ila_tllib.affinity import kept_count
from ila_tllib.checkpoint import save_atomic
from ila_tllib.data import ResumableForeverIterator
from ila_tllib.datasets import build_domain, class_names, get_dataset_names, read_labels
from ila_tllib.datasets.errors import DatasetError

DIGIT_ARCHS = ("lenet", "dtn")


class UsageError(Exception):
    """A problem with the user's input: printed as one message, exit code 2, no traceback."""


# --------------------------------------------------------------------------- flags
def get_parser(method: str, description: str) -> argparse.ArgumentParser:
    """tllib's flags for ``method`` ('dann' or 'cdan'), same names and defaults, plus ILA's."""
    p = argparse.ArgumentParser(description=description)
    # dataset
    p.add_argument('root', metavar='DIR', help='root path of dataset')
    p.add_argument('-d', '--data', metavar='DATA', default='Office31',
                   help='dataset: ' + ' | '.join(get_dataset_names()) + ' (default: Office31)')
    p.add_argument('-s', '--source', nargs='+', help='source domain(s)')
    p.add_argument('-t', '--target', nargs='+', help='target domain(s)')
    p.add_argument('--train-resizing', type=str, default='default')
    p.add_argument('--val-resizing', type=str, default='default')
    p.add_argument('--resize-size', type=int, default=224, help='the image size after resizing')
    p.add_argument('--scale', type=float, nargs='+', default=[0.08, 1.0], metavar='PCT',
                   help='Random resize scale (default: 0.08 1.0)')
    p.add_argument('--ratio', type=float, nargs='+', default=[3. / 4., 4. / 3.], metavar='RATIO',
                   help='Random resize aspect ratio (default: 0.75 1.33)')
    p.add_argument('--no-hflip', action='store_true', help='no random horizontal flipping during training')
    p.add_argument('--norm-mean', type=float, nargs='+', default=(0.485, 0.456, 0.406), help='normalization mean')
    p.add_argument('--norm-std', type=float, nargs='+', default=(0.229, 0.224, 0.225), help='normalization std')
    # model
    p.add_argument('-a', '--arch', metavar='ARCH', default='resnet18',
                   help='backbone: lenet | dtn | a torchvision resnet | any timm model (default: resnet18)')
    p.add_argument('--bottleneck-dim', default=256, type=int, help='Dimension of bottleneck')
    p.add_argument('--no-pool', action='store_true', help='no pool layer after the feature extractor.')
    p.add_argument('--scratch', action='store_true', help='whether train from scratch.')
    p.add_argument('--pretrained', default=None, metavar='PATH',
                   help='local file with the backbone\'s pretrained weights (for machines without internet)')
    p.add_argument('--trade-off', default=1., type=float, help='the trade-off hyper-parameter for transfer loss')
    if method == 'cdan':
        p.add_argument('-r', '--randomized', action='store_true', help='using randomized multi-linear-map (default: False)')
        p.add_argument('-rd', '--randomized-dim', default=1024, type=int, help='randomized dimension when using randomized multi-linear-map (default: 1024)')
        p.add_argument('--entropy', default=False, action='store_true', help='use entropy conditioning')
    # training
    p.add_argument('-b', '--batch-size', default=32, type=int, metavar='N', help='mini-batch size (default: 32)')
    p.add_argument('--lr', '--learning-rate', default=0.01, type=float, metavar='LR', help='initial learning rate', dest='lr')
    p.add_argument('--lr-gamma', default=0.001, type=float, help='parameter for lr scheduler')
    p.add_argument('--lr-decay', default=0.75, type=float, help='parameter for lr scheduler')
    p.add_argument('--momentum', default=0.9, type=float, metavar='M', help='momentum')
    p.add_argument('--wd', '--weight-decay', default=1e-3, type=float, metavar='W', help='weight decay (default: 1e-3)',
                   dest='weight_decay')
    p.add_argument('-j', '--workers', default=2, type=int, metavar='N', help='number of data loading workers (default: 2)')
    p.add_argument('--epochs', default=20, type=int, metavar='N', help='number of total epochs to run')
    p.add_argument('-i', '--iters-per-epoch', default=1000, type=int, help='Number of iterations per epoch')
    p.add_argument('-p', '--print-freq', default=100, type=int, metavar='N', help='print frequency (default: 100)')
    p.add_argument('--seed', default=None, type=int, help='seed for initializing training. ')
    p.add_argument('--cache-images', action='store_true',
                   help='keep decoded images in memory (small datasets, -j 0): same results, less time per iteration')
    p.add_argument('--per-class-eval', action='store_true', help='whether output per-class accuracy during evaluation')
    p.add_argument('--log', type=str, default=method, help='Where to save logs, checkpoints and debugging images.')
    p.add_argument('--resume', action='store_true',
                   help='continue the run in --log from its last finished epoch (checkpoints/resume.pth)')
    p.add_argument('--sync-bn', action='store_true',
                   help='under torchrun: synchronise BatchNorm statistics across processes')
    p.add_argument('--phase', type=str, default='train', choices=['train', 'test', 'analysis'],
                   help="When phase is 'test', only test the model. When phase is 'analysis', only analysis the model.")
    # ILA-DA
    g = p.add_argument_group('ILA-DA')
    g.add_argument('--ila-trade-off', default=1.0, type=float,
                   help='weight of the ILA (MSC) loss; 0 = the plain tllib recipe (default: 1.0)')
    g.add_argument('--k', default=5, type=int, help='neighbours of the kNN pseudo-label vote (default: 5)')
    g.add_argument('--mu', default=0.67, type=float, help='fraction of target samples kept by the ratio test (default: 0.67)')
    g.add_argument('--samples-per-class', default=4, type=int,
                   help='m: source samples of every class in the class-balanced batch (default: 4)')
    g.add_argument('--classes-per-batch', default=None, type=int,
                   help='classes in a balanced batch, drawn at random (default: all classes)')
    g.add_argument('--ila-batch', default='shared', choices=['shared', 'extra'],
                   help="shared: the source batch itself is class-balanced (paper); extra: tllib's random source "
                        "batch for CE and the adversary plus a separate balanced source batch for ILA only")
    g.add_argument('--balanced-source', action='store_true',
                   help='class-balanced source batch for CE and the adversary even with --ila-trade-off 0: '
                        'measures what the sampling alone does to a baseline')
    g.add_argument('--pretrain-iters', default=0, type=int, help='source-only iterations before adaptation (default: 0)')
    g.add_argument('--ila-start-iter', default=0, type=int, help='adaptation iteration at which the ILA loss starts')
    g.add_argument('--temperature', default=1.0, type=float, help='temperature dividing the similarity in MSC')
    g.add_argument('--similarity', default='inverse_euclidean', choices=['inverse_euclidean', 'cosine'])
    g.add_argument('--pseudo-label', default='knn', choices=['knn', 'classifier'],
                   help='kNN + similarity ratio (ILA-DA) or classifier confidence (ablation)')
    g.add_argument('--metric-loss', default='msc', choices=['msc', 'triplet'], help='MSC (ILA-DA) or triplet (ablation)')
    return p


def ila_enabled(args) -> bool:
    return args.ila_trade_off > 0


def balanced_batch_size(args, num_classes: int) -> int:
    return (args.classes_per_batch or num_classes) * args.samples_per_class


def source_batch_size(args, num_classes: int) -> int:
    """The size of the source batch that CE and the adversary see."""
    return balanced_batch_size(args, num_classes) if balanced_source(args) else args.batch_size


def describe_batches(args, num_classes: int) -> str:
    """One log line saying which batches CE, the adversary and ILA see."""
    classes = args.classes_per_batch or num_classes
    balanced = f"class-balanced ({classes} classes x {args.samples_per_class} = {balanced_batch_size(args, num_classes)})"
    source = balanced if balanced_source(args) else f"random ({args.batch_size})"
    text = f"batches: source {source}, target random ({args.batch_size})"
    if ila_enabled(args) and not balanced_source(args) and args.samples_per_class > 0:
        text += f"; ILA's source batch {balanced}"
    return text


def balanced_source(args) -> bool:
    """Whether the source batch of CE and the adversary is class-balanced."""
    if args.balanced_source:
        return True
    return ila_enabled(args) and args.ila_batch == 'shared' and args.samples_per_class > 0


def check_args(args):
    if not args.source or not args.target:
        raise UsageError("give the source and target domains with -s and -t (e.g. -s A -t W)")
    if not 0.0 < args.mu <= 1.0:
        raise UsageError(f"--mu {args.mu} is outside (0, 1]: it is the fraction of target samples kept")
    if args.k < 1:
        raise UsageError(f"--k {args.k} must be at least 1")
    at_least_one = ['batch_size', 'epochs', 'iters_per_epoch', 'print_freq', 'bottleneck_dim', 'resize_size']
    if hasattr(args, 'randomized_dim'):
        at_least_one.append('randomized_dim')
    for name in at_least_one:
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1")
    for name in ('samples_per_class', 'pretrain_iters', 'ila_start_iter', 'workers', 'momentum', 'weight_decay',
                 'ila_trade_off', 'trade_off'):
        if getattr(args, name) < 0:
            raise UsageError(f"--{name.replace('_', '-')} cannot be negative")
    for name in ('scale', 'ratio'):
        low_high = getattr(args, name)
        if len(low_high) != 2 or not 0 < low_high[0] <= low_high[1]:
            raise UsageError(f"--{name} takes two positive values, the lower first (got {' '.join(map(str, low_high))})")
    channels = 1 if args.arch == 'lenet' else 3   # LeNet reads grey images, every other backbone RGB
    for name in ('norm_mean', 'norm_std'):
        if len(getattr(args, name)) not in (1, channels):
            needs, images = ("1 value", "grey") if channels == 1 else ("1 or 3 values", "RGB")
            raise UsageError(f"--{name.replace('_', '-')} needs {needs} for -a {args.arch} ({images} images), "
                             f"got {len(getattr(args, name))}")
    if args.lr <= 0 or args.temperature <= 0:
        raise UsageError("--lr and --temperature must be positive")
    if args.balanced_source and (args.samples_per_class == 0 or (ila_enabled(args) and args.ila_batch == 'extra')):
        raise UsageError("--balanced-source needs --samples-per-class > 0 and contradicts --ila-batch extra "
                         "(which keeps tllib's random source batch for CE and the adversary)")
    if ila_enabled(args) and args.ila_batch == 'extra' and args.samples_per_class == 0:
        raise UsageError("--ila-batch extra needs --samples-per-class > 0")
    if ila_enabled(args) and kept_count(args.mu, args.batch_size) == 0:
        raise UsageError(f"--mu {args.mu} keeps no target of a batch of {args.batch_size}: the ILA term would be 0")
    if ila_enabled(args) and args.pseudo_label == 'knn' and args.samples_per_class == 0 and args.k > args.batch_size:
        raise UsageError(f"--k {args.k} is larger than the source batch (-b {args.batch_size}); lower --k")


# --------------------------------------------------------------------------- data
def _resize(size):
    return T.Resize((size, size))


def get_train_transform(resizing='default', scale=(0.08, 1.0), ratio=(3. / 4., 4. / 3.), hflip=True,
                        resize_size=224, norm_mean=(0.485, 0.456, 0.406), norm_std=(0.229, 0.224, 0.225)):
    """tllib's choices: default = resize 256 + random resized crop 224; cen.crop / ran.crop = resize 256 +
    centre / random crop 224; res. = resize to ``resize_size``."""
    if resizing == 'default':
        steps = [_resize(256), T.RandomResizedCrop(224, scale=tuple(scale), ratio=tuple(ratio))]
    elif resizing == 'cen.crop':
        steps = [_resize(256), T.CenterCrop(224)]
    elif resizing == 'ran.crop':
        steps = [_resize(256), T.RandomCrop(224)]
    elif resizing == 'res.':
        steps = [_resize(resize_size)]
    else:
        raise UsageError(f"unknown --train-resizing {resizing!r}; choose default | cen.crop | ran.crop | res.")
    if hflip:
        steps.append(T.RandomHorizontalFlip())
    return T.Compose(steps + [T.ToTensor(), T.Normalize(mean=norm_mean, std=norm_std)])


def get_val_transform(resizing='default', resize_size=224, norm_mean=(0.485, 0.456, 0.406),
                      norm_std=(0.229, 0.224, 0.225)):
    if resizing == 'default':
        steps = [_resize(256), T.CenterCrop(224)]
    elif resizing == 'res.':
        steps = [_resize(resize_size)]
    else:
        raise UsageError(f"unknown --val-resizing {resizing!r}; choose default | res.")
    return T.Compose(steps + [T.ToTensor(), T.Normalize(mean=norm_mean, std=norm_std)])


class Data(NamedTuple):
    train_source: object
    train_target: object
    val: object
    test: object
    num_classes: int
    class_names: list


def get_dataset(args) -> Data:
    """Source/target training sets and the target validation/test set, as tllib's scripts build them.

    Datasets with a test split (digits, DomainNet) validate on the target's test split; the others
    use the whole target domain (tllib's protocol for Office-31 and friends).
    """
    mode = 'L' if args.arch == 'lenet' else 'RGB'
    train_t = get_train_transform(args.train_resizing, args.scale, args.ratio, not args.no_hflip,
                                  args.resize_size, args.norm_mean, args.norm_std)
    val_t = get_val_transform(args.val_resizing, args.resize_size, args.norm_mean, args.norm_std)
    print("train_transform: ", train_t)
    print("val_transform: ", val_t)

    def domains(names, split, transform):
        parts = [build_domain(args.data, args.root, name, split=split, transform=transform, mode=mode)
                 for name in names]
        return parts[0] if len(parts) == 1 else ConcatDataset(parts)

    source = domains(args.source, 'train', train_t)
    target = domains(args.target, 'train', train_t)
    test = domains(args.target, 'test', val_t)
    if args.cache_images:
        for dataset in (source, target, test):
            cache_images(dataset)
    names = class_names(source)
    if class_names(target) != names:
        raise UsageError("source and target domains have different class lists")
    return Data(source, target, test, test, len(names), names)


# transforms that draw nothing at random: their output can be computed once per image
DETERMINISTIC_TRANSFORMS = (T.Resize, T.CenterCrop, T.ToTensor, T.Normalize, T.Grayscale)


def draws_nothing_at_random(transform) -> bool:
    if isinstance(transform, T.Compose):
        return all(draws_nothing_at_random(t) for t in transform.transforms)
    return isinstance(transform, DETERMINISTIC_TRANSFORMS)


def cache_images(dataset):
    """--cache-images for ImageList-style datasets: each image is decoded once; when the transform draws
    nothing at random (e.g. res. resizing without flips, as for digits) it is also transformed once.
    The samples are the same, only faster. ``image_loader`` keeps the plain loader for other transforms."""
    import functools
    parts = dataset.datasets if isinstance(dataset, ConcatDataset) else [dataset]
    for part in parts:
        if not callable(getattr(part, 'loader', None)):
            continue
        part.image_loader = part.loader
        if part.transform is not None and draws_nothing_at_random(part.transform):
            transform, load = part.transform, part.loader
            part.loader = functools.lru_cache(maxsize=None)(lambda path: transform(load(path)))
            part.transform = None
        else:
            part.image_loader = part.loader = functools.lru_cache(maxsize=None)(part.loader)


def seed_worker(worker_id):
    seed = torch.initial_seed() % 2 ** 32
    np.random.seed(seed)
    random.seed(seed)


def _own_generator(seed):
    """Each loader draws its worker seeds from its own generator, never from the global RNG: otherwise
    every new pass would shift the dropout stream, and a resumed run could not match an uninterrupted one."""
    return torch.Generator().manual_seed(seed)


def random_loader(dataset, batch_size, workers, seed):
    """Shuffled, fixed-size batches as tllib draws them; -b is the global batch, split over processes."""
    if len(dataset) < batch_size:
        raise UsageError(f"a domain has {len(dataset)} samples, fewer than the batch size {batch_size}: lower -b")
    try:
        sampler = RandomBatchSampler(len(dataset), batch_size, seed, dist_utils.world_size(), dist_utils.rank())
    except ValueError as e:
        raise UsageError(f"-b {batch_size}: {e}") from None
    return DataLoader(dataset, batch_sampler=sampler, num_workers=workers, worker_init_fn=seed_worker,
                      generator=_own_generator(seed))


def balanced_loader(dataset, args, num_classes, seed):
    try:
        labels = read_labels(dataset)
    except TypeError as e:
        raise UsageError(f"{e}; use --samples-per-class 0 for random source batches") from None
    try:
        sampler = ClassBalancedSampler(labels, args.samples_per_class, args.classes_per_batch,
                                       num_classes=num_classes, seed=seed, num_replicas=dist_utils.world_size(),
                                       rank=dist_utils.rank())
    except ValueError as e:
        raise UsageError(f"the source cannot be class-balanced: {e}") from None
    if ila_enabled(args) and args.pseudo_label == 'knn' and args.k > sampler.batch_size:
        raise UsageError(f"--k {args.k} is larger than the class-balanced source batch "
                         f"({sampler.batch_size} samples); lower --k or raise --samples-per-class")
    return DataLoader(dataset, batch_sampler=sampler, num_workers=args.workers, worker_init_fn=seed_worker,
                      generator=_own_generator(seed))


def eval_loader(dataset, args):
    """Evaluation batches; under torchrun each process takes every n-th sample (no padding, exact totals)."""
    n = dist_utils.world_size()
    if n > 1:
        dataset = Subset(dataset, list(range(dist_utils.rank(), len(dataset), n)))
    return DataLoader(dataset, batch_size=args.batch_size, shuffle=False, num_workers=args.workers,
                      generator=_own_generator(0))


def gather_labels(labels: torch.Tensor) -> torch.Tensor:
    return dist_utils.all_gather_no_grad(labels) if dist_utils.is_distributed() else labels


def unwrap(module: nn.Module) -> nn.Module:
    return module.module if isinstance(module, nn.parallel.DistributedDataParallel) else module


# --------------------------------------------------------------------------- model
def get_model(arch: str, scratch: bool = False, pretrained: Optional[str] = None) -> nn.Module:
    """A backbone with ``out_features``: tllib's LeNet/DTN, a torchvision ResNet, or any timm model."""
    import torchvision.models as tvm
    try:
        if arch in DIGIT_ARCHS:
            backbone = getattr(backend, arch)(pretrained=False)
        elif arch in tvm.list_models(module=tvm) and arch.startswith(('resnet', 'resnext', 'wide_resnet')):
            weights = None if (scratch or pretrained) else 'DEFAULT'
            backbone = tvm.get_model(arch, weights=weights)
            backbone.out_features = backbone.fc.in_features
            backbone.fc = nn.Identity()
            # tllib's ResNet backbones stop before pooling: the Classifier pools
            backbone.avgpool = nn.Identity()
            backbone.forward = _resnet_features(backbone)
        else:
            import timm
            if arch not in timm.list_models():
                raise UsageError(f"unknown architecture {arch!r}: use lenet, dtn, a torchvision ResNet "
                                 f"(resnet18, resnet50, ...) or a timm model name (timm.list_models())")
            backbone = timm.create_model(arch, pretrained=not (scratch or pretrained), num_classes=0,
                                         global_pool='')
            backbone.out_features = backbone.num_features
    except UsageError:
        raise
    except Exception as e:  # a failed weight download is the usual cause
        raise UsageError(f"could not build {arch!r} with ImageNet weights ({type(e).__name__}: {e}). Without "
                         f"internet give --pretrained PATH (a local state_dict of the backbone) or --scratch") from None
    if pretrained:
        if not os.path.isfile(pretrained):
            raise UsageError(f"--pretrained {pretrained}: no such file")
        try:
            state = torch.load(pretrained, map_location='cpu', weights_only=True)
        except Exception as e:   # not a torch file, a truncated one, or pickled objects beyond tensors
            raise UsageError(f"--pretrained {pretrained}: cannot be read as a state_dict "
                             f"({type(e).__name__}: {str(e).splitlines()[0]})") from None
        if not isinstance(state, dict):
            raise UsageError(f"--pretrained {pretrained}: holds a {type(state).__name__}, not a state_dict")
        missing, unexpected = backbone.load_state_dict(state, strict=False)
        if len(unexpected) == len(state):
            raise UsageError(f"--pretrained {pretrained}: none of its keys fit the {arch!r} backbone "
                             f"(first: {next(iter(state), None)!r}); give a state_dict of the backbone itself")
        print(f"=> loaded pretrained weights from {pretrained} (missing {len(missing)}, unexpected {len(unexpected)})")
    return backbone


def _resnet_features(net):
    def forward(x):
        x = net.maxpool(net.relu(net.bn1(net.conv1(x))))
        return net.layer4(net.layer3(net.layer2(net.layer1(x))))
    return forward


def build_classifier(args, num_classes, device):
    print("=> using model '{}'".format(args.arch))
    backbone = get_model(args.arch, args.scratch, args.pretrained)
    if args.no_pool and args.arch not in ('lenet', 'dtn'):
        raise UsageError(f"--no-pool is only for lenet and dtn, whose output is already flat; -a {args.arch} "
                         f"needs the pool layer")
    pool_layer = nn.Identity() if args.no_pool else None
    return ImageClassifier(backbone, num_classes, bottleneck_dim=args.bottleneck_dim,
                           pool_layer=pool_layer, finetune=not args.scratch).to(device)


def build_ila_loss(args, k: Optional[int] = None) -> ILALoss:
    k = args.k if k is None else k
    return ILALoss(k=k, mu=args.mu, temperature=args.temperature, similarity=args.similarity,
                   pseudo_labeller=get_pseudo_labeller(args.pseudo_label, k),
                   metric_loss=get_metric_loss(args.metric_loss, args.temperature))


# --------------------------------------------------------------------------- train / validate
class Method(NamedTuple):
    """What a script adds to the shared loop: the discriminator, its loss and the training line's meters."""
    name: str
    build: Callable          # (args, classifier, num_classes, device) -> (discriminator, adversarial loss module)
    transfer_loss: Callable  # (domain_adv, y_s, f_s, y_t, f_t) -> loss
    # (name, format) of each meter, in print order, as the tllib script prints them; the names are
    # 'Time', 'Data', 'Loss', 'Trans Loss' (optional), 'Cls Acc', 'Domain Acc'
    meters: tuple


class ILAStats:
    """Running ILA diagnostics, from target labels used for logging only (never for training):

    - ``PL Prec``: pseudo-label precision of the kept targets; ``PL All``: of all targets (the filter's gain
      is the difference);
    - ``Ratio AUC``: how well the score (Γ, or the confidence) ranks right pseudo-labels above wrong ones
      (0.5 = no better than chance);
    - ``Kept``: targets kept per batch; batches where no source had both a positive and a negative.
    """

    def __init__(self):
        self.reset()

    def reset(self):
        self.loss = AverageMeter('ILA Loss', ':5.4f')
        self.precision = AverageMeter('PL Prec', ':3.1f')
        self.precision_all = AverageMeter('PL All', ':3.1f')
        self.auc = AverageMeter('Ratio AUC', ':4.2f')
        self.kept = AverageMeter('Kept', ':3.0f')
        self.empty_batches = self.batches = 0

    def meters(self):
        return [self.loss, self.precision, self.precision_all, self.auc, self.kept]

    def update(self, ila, loss_value: float, labels_t: torch.Tensor):
        kept, correct = ila.kept, ila.pseudo_labels == labels_t.to(ila.kept.device)
        self.loss.update(loss_value)
        self.kept.update(int(kept.sum()))
        self.precision_all.update(100.0 * correct.float().mean().item(), correct.numel())
        if kept.any():
            self.precision.update(100.0 * correct[kept].float().mean().item(), int(kept.sum()))
        right, wrong = ila.ratio[correct], ila.ratio[~correct]
        if right.numel() and wrong.numel():
            above = (right[:, None] > wrong[None, :]).float().mean() + 0.5 * (right[:, None] == wrong[None, :]).float().mean()
            self.auc.update(above.item())
        self.batches += 1
        if ila.num_anchors == 0:
            self.empty_batches += 1

    def summary(self) -> str:
        return (f"ILA: {self.empty_batches} of {self.batches} batches had nothing to contrast; pseudo-label precision "
                f"{self.precision.avg:.1f}% kept / {self.precision_all.avg:.1f}% all, ratio AUC {self.auc.avg:.2f}, "
                f"kept {self.kept.avg:.1f} targets per batch")


def check_finite(value: torch.Tensor, name: str, it: int) -> torch.Tensor:
    if not torch.isfinite(value):
        raise FloatingPointError(f"the {name} loss became {value.item()} at iteration {it}; training stopped "
                                 f"(lower --lr or the loss weights)")
    return value


class StepLosses(NamedTuple):
    loss: torch.Tensor
    cls_loss: torch.Tensor
    transfer_loss: torch.Tensor
    ila_loss: Optional[torch.Tensor]
    y_s: torch.Tensor


def compute_losses(classifier, domain_adv, method, ila, args, num_classes, x_s, labels_s, x_t,
                   x_b=None, labels_b=None, it: int = 0) -> StepLosses:
    """One forward pass: CE + trade_off * adversarial (+ ila_trade_off * ILA when ``ila`` is given).

    Source, target (and, with ``--ila-batch extra``, the balanced ILA batch) go through the network
    together, as tllib concatenates source and target. The ILA term reads the target batch of the
    adversary; its source side is the balanced batch (extra) or the source batch itself (shared).
    """
    parts = [x_s, x_t] + ([x_b] if x_b is not None else [])
    y, f = classifier(torch.cat(parts, dim=0))
    n_s, n_t = x_s.shape[0], x_t.shape[0]
    y_s, y_t = y[:n_s], y[n_s:n_s + n_t]
    f_s, f_t = f[:n_s], f[n_s:n_s + n_t]
    # each term is checked as soon as it exists: a NaN network would otherwise crash inside the next one
    cls_loss = check_finite(F.cross_entropy(y_s, labels_s), 'CE', it)
    transfer_loss = check_finite(method.transfer_loss(domain_adv, y_s, f_s, y_t, f_t), 'adversarial', it)
    loss = cls_loss + args.trade_off * transfer_loss
    ila_loss = None
    if ila is not None:
        f_ila, labels_ila = (f[n_s + n_t:], labels_b) if x_b is not None else (f_s, labels_s)
        ila_loss = check_finite(ila(f_ila, labels_ila, f_t, logits_t=y_t, num_classes=num_classes), 'ILA', it)
        loss = loss + args.ila_trade_off * ila_loss
    return StepLosses(loss, cls_loss, transfer_loss, ila_loss, y_s)


def train_one_epoch(iters, classifier, domain_adv, method, ila, optimizer, lr_scheduler, epoch, args, device, state):
    meter = {name: AverageMeter(name, fmt) for name, fmt in method.meters}
    stats = state['ila_stats']
    meters = list(meter.values())
    # ILA's meters only in epochs where ILA runs: before --ila-start-iter they would read as zeros
    ila_this_epoch = ila is not None and state['iter'] + args.iters_per_epoch > args.ila_start_iter
    if ila_this_epoch:
        stats.reset()
        meters += stats.meters()
    progress = ProgressMeter(args.iters_per_epoch, meters, prefix="Epoch: [{}]".format(epoch))
    classifier.train()
    domain_adv.train()
    end = time.time()
    for i in range(args.iters_per_epoch):
        x_s, labels_s = next(iters['source'])[:2]
        x_t, labels_t = next(iters['target'])[:2]
        x_s, labels_s, x_t = x_s.to(device), labels_s.to(device), x_t.to(device)
        use_ila = ila is not None and state['iter'] >= args.ila_start_iter
        x_b = labels_b = None
        if use_ila and 'ila_source' in iters:
            x_b, labels_b = next(iters['ila_source'])[:2]
            x_b, labels_b = x_b.to(device), labels_b.to(device)
        meter['Data'].update(time.time() - end)

        out = compute_losses(classifier, domain_adv, method, ila if use_ila else None, args, state['num_classes'],
                             x_s, labels_s, x_t, x_b, labels_b, it=state['iter'])
        if out.ila_loss is not None:
            # target labels of the whole (gathered) batch, for logging only
            stats.update(ila, out.ila_loss.item(), gather_labels(labels_t.to(device)))

        n_s = x_s.shape[0]
        meter['Loss'].update(out.loss.item(), n_s)
        meter['Cls Acc'].update(accuracy(out.y_s, labels_s)[0].item(), n_s)
        meter['Domain Acc'].update(float(unwrap(domain_adv).domain_discriminator_accuracy), n_s)
        if 'Trans Loss' in meter:
            meter['Trans Loss'].update(out.transfer_loss.item(), n_s)

        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        lr_scheduler.step()
        state['iter'] += 1
        meter['Time'].update(time.time() - end)
        end = time.time()
        if i % args.print_freq == 0:
            progress.display(i)
    if ila_this_epoch:
        print(stats.summary())


def make_optimizer(param_groups, args):
    """tllib's optimiser: SGD with nesterov; each group's lr factor (backbone 0.1, rest 1.0) times
    lr · (1 + γ·i)^(−decay), stepped every iteration."""
    optimizer = torch.optim.SGD(param_groups, args.lr, momentum=args.momentum, weight_decay=args.weight_decay,
                                nesterov=True)
    lr_scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda x: args.lr * (1. + args.lr_gamma * float(x)) ** (-args.lr_decay))
    return optimizer, lr_scheduler


def pretrain(iters, classifier, args, device):
    """Source-only iterations before adaptation, with their own optimiser and schedule (same recipe,
    restarted), so the adaptation schedule is untouched."""
    optimizer, lr_scheduler = make_optimizer(unwrap(classifier).get_parameters(), args)
    losses, cls_accs = AverageMeter('Loss', ':6.2f'), AverageMeter('Cls Acc', ':3.1f')
    progress = ProgressMeter(args.pretrain_iters, [losses, cls_accs], prefix="Pretrain: ")
    classifier.train()
    for i in range(args.pretrain_iters):
        x_s, labels_s = next(iters['source'])[:2]
        x_s, labels_s = x_s.to(device), labels_s.to(device)
        y_s, _ = classifier(x_s)
        loss = F.cross_entropy(y_s, labels_s)
        check_finite(loss, 'CE', i)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        lr_scheduler.step()
        losses.update(loss.item(), x_s.size(0))
        cls_accs.update(accuracy(y_s, labels_s)[0].item(), x_s.size(0))
        if i % args.print_freq == 0:
            progress.display(i)


def validate(val_loader, model, args, device, class_names=None) -> float:
    batch_time, losses = AverageMeter('Time', ':6.3f'), AverageMeter('Loss', ':.4e')
    top1 = AverageMeter('Acc@1', ':6.2f')
    progress = ProgressMeter(len(val_loader), [batch_time, losses, top1], prefix='Test: ')
    confmat = ConfusionMatrix(len(class_names)) if (args.per_class_eval and class_names) else None
    model = unwrap(model)  # no DDP collectives in evaluation: shards may differ in size
    model.eval()
    with torch.no_grad():
        end = time.time()
        for i, (images, target) in enumerate(val_loader):
            images, target = images.to(device), target.to(device)
            output = model(images)
            loss = F.cross_entropy(output, target)
            if confmat is not None:
                confmat.update(target, output.argmax(1))
            top1.update(accuracy(output, target)[0].item(), images.size(0))
            losses.update(loss.item(), images.size(0))
            batch_time.update(time.time() - end)
            end = time.time()
            if i % args.print_freq == 0:
                progress.display(i)
    if dist_utils.is_distributed():  # exact global accuracy from every shard's sums
        correct = dist_utils.reduce_sum(torch.tensor(top1.sum, dtype=torch.float64))
        count = dist_utils.reduce_sum(torch.tensor(top1.count, dtype=torch.float64))
        top1.avg = (correct / count).item()
        if confmat is not None:   # the per-class counts of every shard, not of process 0 alone
            n = len(class_names)
            local = confmat.mat if confmat.mat is not None else torch.zeros((n, n), dtype=torch.int64, device=device)
            confmat.mat = dist_utils.reduce_sum(local)
    print(' * Acc@1 {top1.avg:.3f}'.format(top1=top1))
    if confmat is not None:
        print(confmat.format(class_names))
        print(f"per-class accuracy over {int(confmat.mat.sum()) if confmat.mat is not None else 0} samples")
    return top1.avg


# --------------------------------------------------------------------------- analysis
def analyse(classifier, data, args, device, log_dir):
    """tllib's analysis (t-SNE, A-distance) plus ILA-DA's Fig. 5 (the affinity matrix of one batch)."""
    from ila_tllib.backend import a_distance, collect_feature, tsne
    from ila_tllib.figures import plot_affinity

    feature_extractor = nn.Sequential(classifier.backbone, classifier.pool_layer, classifier.bottleneck).to(device)
    # as tllib: every full batch of both training sets, shuffled, with the training transform, so that
    # t-SNE and the A-distance compare with its published analysis
    source_feature, target_feature = (
        collect_feature(DataLoader(dataset, batch_size=args.batch_size, shuffle=True,
                                   drop_last=len(dataset) >= args.batch_size,   # a small set still gives one batch
                                   num_workers=args.workers, generator=_own_generator(args.seed or 0)),
                        feature_extractor, device)
        for dataset in (data.train_source, data.train_target))
    tsne_file = os.path.join(log_dir, 'visualize', 'TSNE.pdf')
    tsne.visualize(source_feature, target_feature, tsne_file)
    print("Saving t-SNE to", tsne_file)
    A_distance = a_distance.calculate(source_feature, target_feature, device)
    print("A-distance =", A_distance)

    # Fig. 5: one class-balanced source batch and one target batch, through the trained features
    val_t = get_val_transform(args.val_resizing, args.resize_size, args.norm_mean, args.norm_std)
    source = _with_transform(data.train_source, val_t)
    m = max(args.samples_per_class, 1)
    try:
        sampler = ClassBalancedSampler(read_labels(source), m, args.classes_per_batch, seed=args.seed or 0)
    except (TypeError, ValueError) as e:
        raise UsageError(f"cannot draw a class-balanced batch for the affinity figure: {e}") from None
    loader = DataLoader(source, batch_sampler=sampler)
    x_s, y_s = next(iter(loader))[:2]
    n_t = min(len(data.val), max(x_s.shape[0], 2))
    x_t, y_t = next(iter(DataLoader(data.val, batch_size=n_t, shuffle=True)))[:2]
    with torch.no_grad():
        f_s, f_t = feature_extractor(x_s.to(device)), feature_extractor(x_t.to(device))
        logits_t = classifier.head(f_t)
        ila = build_ila_loss(args, k=min(args.k, f_s.shape[0]))
        ila(f_s, y_s.to(device), f_t, logits_t=logits_t, num_classes=data.num_classes)
    figure = os.path.join(log_dir, 'visualize', 'affinity.png')
    plot_affinity(y_s, y_t, ila.pseudo_labels.cpu(), ila.kept.cpu(), figure)
    precision = (ila.pseudo_labels.cpu() == y_t)[ila.kept.cpu()].float().mean().item() * 100 if ila.kept.any() else 0.0
    print(f"Saving the affinity matrix (computed / filtered / ground truth) to {figure}; "
          f"kept {int(ila.kept.sum())} of {n_t} targets, pseudo-label precision {precision:.1f}%")


def _with_transform(dataset, transform):
    """A shallow copy of a dataset (or ConcatDataset) with another image transform."""
    import copy
    if isinstance(dataset, ConcatDataset):
        return ConcatDataset([_with_transform(d, transform) for d in dataset.datasets])
    clone = copy.copy(dataset)
    clone.transform = transform
    if hasattr(clone, 'image_loader'):   # --cache-images may have folded the old transform into the loader
        clone.loader = clone.image_loader
    if hasattr(clone, 'transforms') and hasattr(clone.transforms, 'transform'):
        clone.transforms = copy.copy(clone.transforms)
        clone.transforms.transform = transform
    return clone


# --------------------------------------------------------------------------- main
def set_seed(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.backends.cudnn.deterministic = True
    warnings.warn('You have chosen to seed training. This will turn on the CUDNN deterministic setting, which can '
                  'slow down your training considerably! You may see unexpected behavior when restarting from '
                  'checkpoints.')


def init_distributed() -> torch.device:
    """Join the process group when started by torchrun (NCCL on GPUs, gloo on CPU); else single process."""
    if int(os.environ.get('WORLD_SIZE', '1')) <= 1:
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    if torch.cuda.is_available():
        local_rank = int(os.environ.get('LOCAL_RANK', '0'))
        torch.cuda.set_device(local_rank)
        dist.init_process_group('nccl')
        return torch.device('cuda', local_rank)
    dist.init_process_group('gloo')
    return torch.device('cpu')


def make_logger(args):
    """Only the first process writes the log directory; the others stay quiet."""
    if not dist_utils.is_main_process():
        sys.stdout = open(os.devnull, 'w')
        return None
    try:
        return CompleteLogger(args.log, args.phase)
    except OSError as e:
        raise UsageError(f"cannot write to --log {args.log} ({e.strerror}): choose a writable directory") from None


def checkpoint_path(args, name):
    return os.path.join(args.log, 'checkpoints', f'{name}.pth')


def load_best(classifier, args, device):
    path = checkpoint_path(args, 'best')
    if not os.path.isfile(path):
        raise UsageError(f"no checkpoint at {path}: train first (--phase train) with the same --log")
    state = torch.load(path, map_location=device, weights_only=True)
    try:
        unwrap(classifier).load_state_dict(state)
    except RuntimeError as e:
        first = str(e).splitlines()[0]
        raise UsageError(f"{path} does not fit this model ({first}); it was trained with another --arch, "
                         f"--bottleneck-dim or class count") from None


def save_on_main(classifier, args, name):
    if dist_utils.is_main_process():
        save_atomic(unwrap(classifier).state_dict(), checkpoint_path(args, name))


def barrier():
    if dist_utils.is_distributed():
        dist.barrier()


def _rng_state():
    return {'torch': torch.get_rng_state(), 'random': random.getstate(), 'numpy': np.random.get_state(),
            'cuda': torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def _set_rng_state(rng):
    torch.set_rng_state(rng['torch'])
    random.setstate(rng['random'])
    np.random.set_state(rng['numpy'])
    if rng['cuda'] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng['cuda'])


def _grl(domain_adv):
    return getattr(unwrap(domain_adv), 'grl', None)


def resume_config(args, state) -> dict:
    """The flags that shape the model, the optimiser groups and the data iterators: a resumed run must match."""
    keys = ('arch', 'bottleneck_dim', 'no_pool', 'randomized', 'randomized_dim', 'ila_batch', 'samples_per_class',
            'classes_per_batch', 'batch_size', 'data', 'source', 'target')
    config = {k: getattr(args, k, None) for k in keys}
    config.update(num_classes=state['num_classes'], ila=ila_enabled(args))
    if dist_utils.world_size() > 1:   # per-process RNG states and shards: the same number of processes
        config['processes'] = dist_utils.world_size()
    if args.balanced_source:   # only when set, so that checkpoints written before the flag existed still match
        config['balanced_source'] = True
    return config


def save_resume_state(args, epoch, best_acc1, state, classifier, domain_adv, optimizer, lr_scheduler, iters):
    """Everything an exact continuation needs, written atomically after every epoch (process 0)."""
    rng = _rng_state()
    if dist_utils.is_distributed():   # every process draws its own dropout masks: keep each one's RNG
        states = [None] * dist_utils.world_size()
        dist.all_gather_object(states, rng)
        rng = {'per_process': states}
    if not dist_utils.is_main_process():
        return
    grl = _grl(domain_adv)
    save_atomic({
        'config': resume_config(args, state),
        'epoch': epoch + 1, 'best_acc1': best_acc1, 'iter': state['iter'],
        'classifier': unwrap(classifier).state_dict(), 'domain_adv': unwrap(domain_adv).state_dict(),
        'grl_iter_num': getattr(grl, 'iter_num', None),
        'optimizer': optimizer.state_dict(), 'lr_scheduler': lr_scheduler.state_dict(),
        'iterators': {name: it.state_dict() for name, it in iters.items()},
        'rng': rng,
    }, checkpoint_path(args, 'resume'))


def load_resume_state(args, state, classifier, domain_adv, optimizer, lr_scheduler, iters, device):
    path = checkpoint_path(args, 'resume')
    if not os.path.isfile(path):
        raise UsageError(f"--resume: no {path}; a run writes it after its first epoch (start without --resume)")
    ckpt = torch.load(path, map_location='cpu', weights_only=False)  # RNG states must stay on the CPU
    config = resume_config(args, state)
    if ckpt.get('config') != config:
        changed = sorted(k for k in config if ckpt.get('config', {}).get(k) != config[k])
        raise UsageError(f"--resume: {path} was written by a run with other {', '.join(changed)} "
                         f"({ckpt.get('config')}); resume with the same flags, or use another --log")
    try:
        unwrap(classifier).load_state_dict(ckpt['classifier'])
        unwrap(domain_adv).load_state_dict(ckpt['domain_adv'])
        optimizer.load_state_dict(ckpt['optimizer'])
        lr_scheduler.load_state_dict(ckpt['lr_scheduler'])
        for name, it in iters.items():
            it.load_state_dict(ckpt['iterators'][name])
    except (KeyError, RuntimeError, ValueError) as e:
        raise UsageError(f"--resume: {path} does not fit this run ({str(e).splitlines()[0]})") from None
    if ckpt['grl_iter_num'] is not None:
        _grl(domain_adv).iter_num = ckpt['grl_iter_num']
    rng = ckpt['rng']
    _set_rng_state(rng['per_process'][dist_utils.rank()] if 'per_process' in rng else rng)
    state['iter'] = ckpt['iter']
    print(f"=> resumed from {path}: epoch {ckpt['epoch']}, iteration {ckpt['iter']}, best_acc1 {ckpt['best_acc1']:.1f}")
    return ckpt['epoch'], ckpt['best_acc1']


def run(args, method: Method):
    check_args(args)
    device = init_distributed()
    try:
        logger = make_logger(args)
        try:
            _run(args, method, device)
        finally:
            if logger is not None:
                logger.close()
    finally:
        if dist_utils.is_distributed():
            dist.destroy_process_group()


def _run(args, method: Method, device):
    print(args)
    print(backend.describe())
    if dist_utils.is_distributed():
        print(f"torch.distributed: {dist_utils.world_size()} processes ({dist.get_backend()}); -b and the "
              f"class-balanced batch are global batches, split evenly over the processes")
    if args.seed is not None:
        set_seed(args.seed)  # the same initial weights in every process
    seed = args.seed if args.seed is not None else 0

    data = get_dataset(args)
    classifier = build_classifier(args, data.num_classes, device)
    domain_discri, domain_adv = method.build(args, classifier, data.num_classes, device)
    if args.seed is not None and dist_utils.is_distributed():
        torch.manual_seed(args.seed + dist_utils.rank())  # ...but different dropout; data order comes from samplers
    val_loader, test_loader = eval_loader(data.val, args), eval_loader(data.test, args)

    if args.phase != 'train':
        load_best(classifier, args, device)
        if args.phase == 'analysis':
            if dist_utils.is_main_process():
                analyse(classifier, data, args, device, args.log)
        else:
            acc1 = validate(test_loader, classifier, args, device, data.class_names)
            print(acc1)
        return

    iters = {'target': ResumableForeverIterator(random_loader(data.train_target, args.batch_size, args.workers, seed + 1))}
    if balanced_source(args):
        iters['source'] = ResumableForeverIterator(balanced_loader(data.train_source, args, data.num_classes, seed))
    else:
        iters['source'] = ResumableForeverIterator(random_loader(data.train_source, args.batch_size, args.workers, seed))
        if ila_enabled(args) and args.samples_per_class > 0:
            iters['ila_source'] = ResumableForeverIterator(balanced_loader(data.train_source, args, data.num_classes, seed + 2))
    print(describe_batches(args, data.num_classes))
    ila = build_ila_loss(args) if ila_enabled(args) else None

    if dist_utils.is_distributed():
        if args.sync_bn:
            classifier = nn.SyncBatchNorm.convert_sync_batchnorm(classifier)
            domain_adv = nn.SyncBatchNorm.convert_sync_batchnorm(domain_adv)
        ids = [device.index] if device.type == 'cuda' else None
        classifier = nn.parallel.DistributedDataParallel(classifier, device_ids=ids)
        domain_adv = nn.parallel.DistributedDataParallel(domain_adv, device_ids=ids)
        if ila is not None:
            ila = dist_utils.DistributedILALoss(ila)

    if args.pretrain_iters > 0 and not args.resume:
        pretrain(iters, classifier, args, device)

    optimizer, lr_scheduler = make_optimizer(unwrap(classifier).get_parameters() + domain_discri.get_parameters(),
                                             args)
    state = {'iter': 0, 'num_classes': data.num_classes, 'ila_stats': ILAStats()}
    start_epoch, best_acc1 = 0, 0.
    if args.resume:
        start_epoch, best_acc1 = load_resume_state(args, state, classifier, domain_adv, optimizer, lr_scheduler,
                                                   iters, device)
    for epoch in range(start_epoch, args.epochs):
        print("lr:", lr_scheduler.get_last_lr()[0])
        train_one_epoch(iters, classifier, domain_adv, method, ila, optimizer, lr_scheduler, epoch, args, device, state)
        acc1 = validate(val_loader, classifier, args, device, data.class_names)
        save_on_main(classifier, args, 'latest')
        if acc1 > best_acc1 or epoch == 0:  # a first 'best' exists even when the accuracy is 0
            save_on_main(classifier, args, 'best')
        best_acc1 = max(acc1, best_acc1)
        save_resume_state(args, epoch, best_acc1, state, classifier, domain_adv, optimizer, lr_scheduler, iters)

    print("best_acc1 = {:3.1f}".format(best_acc1))
    barrier()
    load_best(classifier, args, device)
    acc1 = validate(test_loader, classifier, args, device, data.class_names)
    print("test_acc1 = {:3.1f}".format(acc1))


def main(method: Method, description: str, argv=None):
    """Parse flags and run; input problems end with one message and exit code 2, not a traceback."""
    args = get_parser(method.name, description).parse_args(argv)
    try:
        run(args, method)
    except (UsageError, DatasetError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except FloatingPointError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(3)
