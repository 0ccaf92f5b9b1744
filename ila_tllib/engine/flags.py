"""The scripts' flags: tllib's (same names and defaults as its ``dann.py``/``cdan.py``/``mdd.py``/
``bsp.py``), the method's own, and ILA-DA's; and the checks that turn bad values into one message.

A method changes tllib's common defaults and ILA's through ``Method.defaults`` (e.g. MDD's
``--lr 0.004``) and adds its flags in ``Method.add_arguments``; ILA's flags come last, so a method flag wins a name clash
(ILA's temperature is ``--ila-temperature``; ``--temperature`` is kept as its alias where free).
"""
import argparse
import math

import torch

from ..affinity import DEFAULT_MU
from ..datasets import dataset_name, get_dataset_names
from ..logged_flags import FLAGS_ADDED_LATER
from ..losses import DEFAULT_TEMPERATURE, METRIC_LOSSES
from ..models import WEIGHTS, digit_input_size, gives_feature_maps, image_mode, unknown_arch
from ..parts import takes
from ..pseudo_labels import DEFAULT_K, PSEUDO_LABELLERS, RATIO_TERMS, KNNPseudoLabeller
from ..similarity import SIMILARITIES
from ..transforms import TRAIN_RESIZINGS, VAL_RESIZINGS, output_size
from . import precision
from .errors import UsageError
from .method import placed_after
from .peers import launched_processes
from .ila_term import (DEFAULT_SPECTRAL_FORM, ILA_RELIABILITIES, ILA_SCHEDULES, KEEP_SCHEDULES,
                       SPECTRAL_DOMAINS, SPECTRAL_FORMS, SPECTRAL_SCHEDULES)
from .moving_average import DEFAULT_MINING_AVERAGE, MINING_AVERAGES

__all__ = ["get_parser", "add_ila_arguments", "check_args", "ila_enabled", "votes_by_knn", "divergence_fix",
           "FLAGS_ADDED_LATER", "DEFAULT_MINING_EMA", "DEFAULT_SPECTRAL_FORM", "resolve_derived_defaults", "default_mining_average", "flag_name"]

#: --ila-mining-ema when it is not given and ILA mines with a kNN vote (knn, consensus): a copy that does not
#: lag, so ILA mines on a second pass of the current weights (its own dropout masks); 0.99, a lagging average,
#: gained less on the digits benchmarks (benchmarks/RESULTS.md)
DEFAULT_MINING_EMA = 1e-6


def resolve_derived_defaults(args):
    """Sets the defaults that depend on other flags (a flag left at ``None``); idempotent. The scripts'
    parser calls it, so the logged ``Namespace`` holds what the run does; :func:`check_args` and the
    ``Trainer`` call it too, for a parser built otherwise (e.g. with :func:`add_ila_arguments`)."""
    if getattr(args, 'ila_mining_ema', 0.0) is None:
        # only a kNN vote reads the average; without ILA nothing mines (and a baseline's log stays
        # comparable with one written before the flag existed)
        args.ila_mining_ema = DEFAULT_MINING_EMA if ila_enabled(args) and votes_by_knn(args) else 0.0
    if getattr(args, 'ila_mining_average', 'network') is None:
        args.ila_mining_average = default_mining_average(args.ila_mining_ema)
    if getattr(args, 'ila_mining_similarity', '') is None:
        args.ila_mining_similarity = args.similarity
    if getattr(args, 'ila_spectral_form', 'bsp') is None:
        # the form matters only where the penalty runs; elsewhere the log reads as one from before the flag
        penalised = args.ila_trade_off > 0 and getattr(args, 'ila_spectral_penalty', 0.0) > 0
        args.ila_spectral_form = DEFAULT_SPECTRAL_FORM if penalised else 'bsp'
    return args


def default_mining_average(mining_ema: float) -> str:
    """--ila-mining-average when it is not given. Without an average, 'network': ILA mines on the network's
    own pass (and logs read as they did before the flag)."""
    return DEFAULT_MINING_AVERAGE if mining_ema > 0 else 'network'


class _Parser(argparse.ArgumentParser):
    def parse_known_args(self, args=None, namespace=None):
        namespace, rest = super().parse_known_args(args, namespace)
        return resolve_derived_defaults(namespace), rest


def get_parser(method) -> argparse.ArgumentParser:
    """tllib's flags for ``method`` with its defaults, the method's flags, then ILA-DA's."""
    unset = [hook for hook in ("name", "description") if not isinstance(getattr(method, hook, None), str)]
    if unset:       # the script's author's mistake, not the user's: a traceback, before any flag is read
        raise TypeError(f"{type(method).__name__} sets no {' and no '.join(unset)}: a Method names itself "
                        f"(name: the default --log and the log's method: line; description: --help's first line)")
    p = _Parser(description=method.description)
    # dataset
    p.add_argument('root', metavar='DIR', help='root path of dataset')
    p.add_argument('-d', '--data', metavar='DATA', default='Office31',
                   help='dataset: ' + ' | '.join(get_dataset_names()) + ' (default: Office31)')
    p.add_argument('-s', '--source', nargs='+', help='source domain(s)')
    p.add_argument('-t', '--target', nargs='+', help='target domain(s)')
    p.add_argument('--train-resizing', type=str, default='default', choices=TRAIN_RESIZINGS)
    p.add_argument('--val-resizing', type=str, default='default', choices=VAL_RESIZINGS)
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
    p.add_argument('--no-pool', action='store_true',
                   help='no pool layer after the feature extractor (implied for lenet, dtn and timm models, '
                        'whose output is one vector per image).')
    p.add_argument('--scratch', action='store_true', help='whether train from scratch.')
    p.add_argument('--weights', default='v1', choices=list(WEIGHTS),
                   help="a ResNet's ImageNet weights: v1 = torchvision's IMAGENET1K_V1, the weights behind tllib's "
                        "tables (default); default = torchvision's current default (IMAGENET1K_V2 for "
                        "ResNet-50/101/152, ResNeXt, Wide ResNet)")
    p.add_argument('--pretrained', default=None, metavar='PATH',
                   help="local file with the backbone's pretrained weights (for machines without internet)")
    p.add_argument('--trade-off', default=1., type=float, help='the trade-off hyper-parameter for transfer loss')
    # training
    p.add_argument('-b', '--batch-size', default=32, type=int, metavar='N',
                   help='mini-batch size (default: %(default)s)')
    p.add_argument('--lr', '--learning-rate', default=0.01, type=float, metavar='LR', help='initial learning rate',
                   dest='lr')
    p.add_argument('--lr-gamma', default=0.001, type=float, help='parameter for lr scheduler')
    p.add_argument('--lr-decay', default=0.75, type=float, help='parameter for lr scheduler')
    p.add_argument('--momentum', default=0.9, type=float, metavar='M', help='momentum')
    p.add_argument('--wd', '--weight-decay', default=1e-3, type=float, metavar='W',
                   help='weight decay (default: %(default)s)', dest='weight_decay')   # the method's default
    p.add_argument('-j', '--workers', default=2, type=int, metavar='N',
                   help='number of data loading workers (default: %(default)s)')
    p.add_argument('--epochs', default=20, type=int, metavar='N', help='number of total epochs to run')
    p.add_argument('-i', '--iters-per-epoch', default=1000, type=int, help='Number of iterations per epoch')
    p.add_argument('-p', '--print-freq', default=100, type=int, metavar='N',
                   help='print frequency (default: %(default)s)')
    p.add_argument('--seed', default=None, type=int, help='seed for initializing training. ')
    p.add_argument('--cache-images', action='store_true',
                   help='keep decoded images in memory (small datasets, -j 0): same results, less time per iteration')
    p.add_argument('--per-class-eval', action='store_true', help='whether output per-class accuracy during evaluation')
    p.add_argument('--log', type=str, default=method.name, help='Where to save logs, checkpoints and debugging images.')
    p.add_argument('--resume', action='store_true',
                   help='continue the run in --log from its last finished epoch (checkpoints/resume.pth)')
    p.add_argument('--sync-bn', action='store_true', help='under torchrun: synchronise BatchNorm statistics')
    precision.add_arguments(p)   # --amp, --channels-last
    p.add_argument('--phase', type=str, default='train', choices=['train', 'test', 'analysis'],
                   help="When phase is 'test', only test the model. When phase is 'analysis', only analysis the model.")
    method.add_arguments(p)
    _order_like_tllib(p, method.namespace_after)
    method.add_ila_arguments(add_ila_arguments(p))
    p.set_defaults(**method.defaults)     # last: a method's defaults cover ILA's flags too
    return p


def _order_like_tllib(p: argparse.ArgumentParser, after):
    # --help lists flags in the order they were added, and a method's own flags come after the shared ones;
    # move them where tllib's script has them. argparse offers no public way to reorder its lists
    dests = [a.dest for a in p._actions]
    position = {dest: i for i, dest in enumerate(placed_after(dests, after))}
    for actions in [p._actions] + [group._group_actions for group in p._action_groups]:
        actions.sort(key=lambda action: position[action.dest])


def add_ila_arguments(p: argparse.ArgumentParser):
    """ILA-DA's flags, in their own --help group, which is returned (a method adds its own ILA flags to it)."""
    g = p.add_argument_group('ILA-DA')
    g.add_argument('--ila-trade-off', default=1.0, type=float,
                   help='weight of the ILA (MSC) loss; 0 = the plain tllib recipe (default: %(default)s)')
    g.add_argument('--k', default=DEFAULT_K, type=int, help='neighbours of the kNN pseudo-label vote (default: %(default)s)')
    g.add_argument('--mu', default=DEFAULT_MU, type=float,
                   help='fraction of target samples kept by the ratio test (default: %(default)s)')
    g.add_argument('--samples-per-class', default=4, type=int,
                   help="m: source samples of every class in the class-balanced batch (default: %(default)s); "
                        "0: no balanced batch, ILA reads tllib's random source batch")
    g.add_argument('--classes-per-batch', default=None, type=int,
                   help='classes in a balanced batch, drawn at random (default: all classes)')
    g.add_argument('--ila-batch', default='extra', choices=['extra', 'shared'],
                   help="extra: tllib's random source batch for CE and the adversary, plus a class-balanced "
                        "source batch that only ILA reads (default); shared: the source batch itself is "
                        "class-balanced (the paper's sampling)")
    g.add_argument('--ila-source-sampling', default='balanced', choices=['balanced', 'random'],
                   help="with --ila-batch extra: how ILA's own source batch is drawn. balanced: m of every class "
                        "(default); random: as many rows (classes x m; with --classes-per-batch c, c x m), drawn at "
                        "random as tllib draws its batch "
                        "(an ablation: the rows' count without their balance)")
    g.add_argument('--ila-bn-statistics', default='tllib', choices=['tllib', 'all'],
                   help="with --ila-batch extra: BatchNorm statistics from tllib's source and target rows "
                        "only, applied to ILA's batch as well, so CE and the adversary see tllib's "
                        "normalisation (default); all: from every row of the forward pass")
    g.add_argument('--balanced-source', action='store_true',
                   help='class-balanced source batch for CE and the adversary even with --ila-trade-off 0: '
                        'measures what the sampling alone does to a baseline')
    g.add_argument('--pretrain-iters', default=0, type=int,
                   help='source-only iterations before adaptation (default: %(default)s)')
    g.add_argument('--ila-start-iter', default=0, type=int, help='adaptation iteration at which the ILA loss starts')
    names = ['--ila-temperature'] + ([] if '--temperature' in p._option_string_actions else ['--temperature'])
    g.add_argument(*names, dest='ila_temperature', default=DEFAULT_TEMPERATURE, type=float,
                   help='temperature dividing the similarity in MSC (default: %(default)s)')
    # the angle: on hard shifts the targets' features are shorter than the sources', and the paper's inverse
    # distance then votes for the shortest sources of any class (benchmarks/RESULTS.md)
    g.add_argument('--similarity', default='cosine', choices=list(SIMILARITIES),
                   help="the similarity of the kNN vote, the ratio test and MSC (default: cosine; the paper's "
                        "Eq. 6: inverse_euclidean; centered_cosine: the angle about each domain's batch mean)")
    g.add_argument('--ila-mining-similarity', default=None, choices=list(SIMILARITIES),
                   help="the similarity of the kNN vote and the ratio test only; MSC keeps --similarity "
                        "(default: --similarity)")
    g.add_argument('--pseudo-label', default='knn', choices=list(PSEUDO_LABELLERS),
                   help='knn: kNN + similarity ratio (ILA-DA); classifier: classifier confidence (ablation); '
                        'consensus: kNN + ratio, only targets whose kNN label the classifier shares')
    g.add_argument('--ila-schedule', default='ramp', choices=list(ILA_SCHEDULES),
                   help="ramp: DANN's 2/(1+exp(-10p))-1 over the iterations after --ila-start-iter (default); "
                        "step: full weight from --ila-start-iter on (paper); linear: p; ramp-anneal: the ramp "
                        "times (1+cos(pi p))/2, 0 again at the end")
    g.add_argument('--ila-keep-schedule', default='step', choices=list(KEEP_SCHEDULES),
                   help="step: keep the fraction --mu of the targets from the start (paper); ramp, linear: the "
                        "kept fraction grows to --mu over the remaining iterations")
    g.add_argument('--ila-reliability', default='none', choices=list(ILA_RELIABILITIES),
                   help="none: the weight as scheduled; agreement: times the batch's share of targets whose "
                        "pseudo-label the classifier shares")
    g.add_argument('--ila-ratio-terms', default=RATIO_TERMS[0], choices=list(RATIO_TERMS),
                   help="top-m: the ratio test sums the m most similar like and unlike sources (Eq. 7; default); "
                        "matched: as many unlike as like ones, so that a class with fewer rows in the source "
                        "batch is not ranked down for it (the same on a class-balanced batch)")
    g.add_argument('--ila-source-bank', default=0, type=int,
                   help="source features kept per class from earlier batches for the kNN vote and the ratio "
                        "test (detached; the loss still contrasts the current batch); 0 = the current batch "
                        "only, as the paper (default: 0)")
    g.add_argument('--ila-detach-source', action='store_true',
                   help="the MSC loss treats ILA's source features as constants: its gradient reaches the target "
                        "features only (an ablation)")
    g.add_argument('--ila-bank-anchors', action='store_true',
                   help="with --ila-source-bank: the MSC loss contrasts the bank's features too, as sources "
                        "without gradient (their pull reaches the targets only)")
    g.add_argument('--ila-mining-ema', default=None, type=float,
                   help="alpha in [0, 1): ILA mines its pairs (kNN vote, ratio test) on a second forward pass, "
                        "without gradient, through a moving average of the network's weights with this decay; "
                        "the loss still contrasts the network's own features; 0 = on the network's own pass, as "
                        f"the paper. Default {DEFAULT_MINING_EMA:g}: the copy holds the current weights, so the "
                        "second pass differs by its own dropout masks only (a network without dropout gets its "
                        "own features back, and 0 gives them without the pass); 0.99 averages about the last "
                        "100 steps. 0 with --pseudo-label classifier or --ila-trade-off 0")
    g.add_argument('--ila-mining-average', default=None, choices=list(MINING_AVERAGES),
                   help="with --ila-mining-ema, what is averaged: from-dropout, the layers from the network's "
                        "first dropout layer to its features, fed with that layer's input from the network's own "
                        "pass (the layers before it would repeat that pass; a network without dropout before "
                        "its features mines on them, without a pass); network, the whole network in training "
                        "mode (one more forward pass of every row, without gradient); network-eval, the same in "
                        "evaluation mode (no dropout, BatchNorm's running statistics), on ILA's rows only; "
                        "bottleneck, only the bottleneck, on the backbone features of the network's own pass "
                        f"(almost free). Default: {DEFAULT_MINING_AVERAGE} with --ila-mining-ema > 0")
    g.add_argument('--ila-spectral-penalty', default=2e-4, type=float,
                   help="beta: BSP's penalty on the largest singular value of the adversary's source and target "
                        "features, added with ILA; 0 = none (default: %(default)g; 2e-4 is BSP's weight, 0 for "
                        "ila_bsp.py, whose loss has the penalty, and for ila_mdd.py, whose 1024-d features it "
                        "collapses)")
    g.add_argument('--ila-spectral-form', default=None, choices=list(SPECTRAL_FORMS),
                   help="no-shrink: BSP's sigma_1^2 without the part of its gradient that scales every feature "
                        "down, which can kill a network that has not yet learnt its source classes (default "
                        "where the penalty runs); bsp: BSP's own (logged where it does not run, as before the "
                        "flag)")
    g.add_argument('--ila-spectral-schedule', default='constant', choices=list(SPECTRAL_SCHEDULES),
                   help="when the spectral penalty runs: constant, beta from the first iteration whatever "
                        "--ila-start-iter; term, on the ILA term's schedule (0 before --ila-start-iter, then "
                        "--ila-schedule's factor) (default: %(default)s)")
    g.add_argument('--ila-spectral-domains', default='both', choices=list(SPECTRAL_DOMAINS),
                   help="whose features the spectral penalty's gradient reaches: both (BSP's), source, target "
                        "(the other domain's are detached; the penalty's value is the same) (default: %(default)s)")
    g.add_argument('--metric-loss', default='msc', choices=list(METRIC_LOSSES),
                   help="msc: ILA-DA's; msc-push, msc-pull: its value with only the -1 (push) or the +1 (pull) "
                        "pairs moved (ablations); triplet: Table 4 (a)'s ablation (default: %(default)s)")
    return g


def ila_enabled(args) -> bool:
    return args.ila_trade_off > 0


def divergence_fix(args) -> str:
    """What a run that diverged is told to change before it resumes (flags a resume may change): the rate,
    the weights of the terms it runs, and MSC's temperature where its metric loss has one."""
    weights = "the loss weights --trade-off and --ila-trade-off" if ila_enabled(args) else "the loss weight --trade-off"
    temperature = ila_enabled(args) and takes(METRIC_LOSSES, args.metric_loss, 'temperature')
    return f"lower --lr or {weights}" + (", or raise --ila-temperature" if temperature else "")


def votes_by_knn(args) -> bool:
    """Whether ILA's pseudo-labels come from a kNN vote over source features (knn, consensus): what the
    vote's own flags (the memory, the moving average, the ratio test's terms) act on."""
    return issubclass(PSEUDO_LABELLERS[args.pseudo_label], KNNPseudoLabeller)


def flag_name(dest: str) -> str:
    """The command-line flag of an argparse destination: ila_mining_ema -> --ila-mining-ema."""
    return '--' + dest.replace('_', '-')


#: the largest float32: the weights, the optimiser's steps and the losses are float32 (or narrower)
FLOAT32_MAX = 3.4028234663852886e38


def _check_finite(args):
    for name, value in vars(args).items():
        values = value if isinstance(value, (list, tuple)) else [value]
        for v in values:
            if isinstance(v, float) and not math.isfinite(v):
                raise UsageError(f"{flag_name(name)} {v} is not a finite number; give a finite value")
            if isinstance(v, float) and abs(v) > FLOAT32_MAX:
                raise UsageError(f"{flag_name(name)} {v:g} lies beyond float32's range (±3.4e38), in which the "
                                 f"weights and the losses are computed; give a smaller value")


def _check_input_size(args):
    needed = digit_input_size(args.arch)
    if needed is None:
        return
    for flag, resizing in (('--train-resizing', args.train_resizing), ('--val-resizing', args.val_resizing)):
        size = output_size(resizing, args.resize_size)
        if size != needed:
            raise UsageError(f"-a {args.arch} takes {needed}x{needed} images, but {flag} {resizing} "
                             f"--resize-size {args.resize_size} gives {size}x{size}: use --train-resizing res. "
                             f"--val-resizing res. --resize-size {needed}")


def source_only_phases(args, method) -> list:
    """The source-only phases a training run goes through before adaptation, ``(what it is, what else avoids
    it)``: ``--pretrain-iters`` and the method's own (BSP's pretraining). A resume or another phase has none."""
    if args.phase != 'train' or args.resume:
        return []
    warm_up = [(f"--pretrain-iters {args.pretrain_iters}", "")] if args.pretrain_iters > 0 else []
    return warm_up + method.source_only_phases(args)


def check_args(args, method):
    """Every flag problem that can be known before training, as a :class:`UsageError`."""
    resolve_derived_defaults(args)
    _check_finite(args)
    dataset_name(args.data)   # a -d that builds no task is named before any folder exists, as tllib's choices do
    if not args.source or not args.target:
        raise UsageError("give the source and target domains with -s and -t (e.g. -s A -t W)")
    if not args.log.strip():
        raise UsageError(f"--log {args.log!r} names no folder; give one (the script's default: {method.name})")
    if args.seed is not None and not 0 <= args.seed < 2 ** 32:
        raise UsageError(f"--seed {args.seed} is outside 0 .. 2**32 - 1; give a non-negative seed")
    if not 0.0 < args.mu <= 1.0:
        raise UsageError(f"--mu {args.mu} is outside (0, 1]: it is the fraction of target samples kept")
    if args.k < 1:
        raise UsageError(f"--k {args.k} must be at least 1")
    if args.sync_bn and launched_processes() < 2:   # torchrun sets WORLD_SIZE before the group exists
        raise UsageError("--sync-bn pools BatchNorm statistics over the processes of a torchrun run, and this run "
                         "has one process; leave it out, or start the run with torchrun --nproc_per_node=N")
    if args.sync_bn and not torch.cuda.is_available():
        raise UsageError("--sync-bn needs GPUs: torch's SyncBatchNorm runs on CUDA devices only, and this machine "
                         "has none; leave it out")
    at_least_one = ['batch_size', 'epochs', 'iters_per_epoch', 'print_freq', 'bottleneck_dim', 'resize_size']
    for name in at_least_one:
        if getattr(args, name) < 1:
            raise UsageError(f"{flag_name(name)} must be at least 1")
    for name in ('samples_per_class', 'pretrain_iters', 'ila_start_iter', 'workers', 'momentum', 'weight_decay',
                 'ila_trade_off', 'ila_spectral_penalty', 'trade_off', 'lr_gamma', 'lr_decay'):
        if getattr(args, name) < 0:
            raise UsageError(f"{flag_name(name)} cannot be negative")
    if args.momentum >= 1:      # each step would add more than the whole of the past ones: the weights blow up
        raise UsageError(f"--momentum {args.momentum} must be below 1 (tllib's default: 0.9)")
    for name in ('scale', 'ratio'):
        low_high = getattr(args, name)
        if len(low_high) != 2 or not 0 < low_high[0] <= low_high[1]:
            raise UsageError(f"--{name} takes two positive values, the lower first (got {' '.join(map(str, low_high))})")
    channels = 1 if image_mode(args.arch) == 'L' else 3
    for name in ('norm_mean', 'norm_std'):
        if len(getattr(args, name)) not in (1, channels):
            needs, images = ("1 value", "grey") if channels == 1 else ("1 or 3 values", "RGB")
            raise UsageError(f"{flag_name(name)} needs {needs} for -a {args.arch} ({images} images), "
                             f"got {len(getattr(args, name))}")
    if any(s <= 0 for s in args.norm_std):
        raise UsageError(f"--norm-std {' '.join(map(str, args.norm_std))}: every value must be positive "
                         f"(it divides the pixels)")
    _check_input_size(args)
    for name in ('lr', 'ila_temperature'):
        if getattr(args, name) <= 0:
            raise UsageError(f"{flag_name(name)} {getattr(args, name)} must be positive")
    if not 0.0 <= args.ila_mining_ema < 1.0:
        raise UsageError(f"--ila-mining-ema {args.ila_mining_ema} must lie in [0, 1) (0.99: about the last 100 "
                         f"steps; {DEFAULT_MINING_EMA:g}: the current weights; 0: mine on the network's own pass)")
    if args.ila_source_bank < 0:
        raise UsageError(f"--ila-source-bank {args.ila_source_bank}: give the features kept per class, 0 or more")
    if args.ila_bank_anchors and not args.ila_source_bank > 0:
        raise UsageError("--ila-bank-anchors contrasts the source bank's features, and there is no bank; add "
                         "--ila-source-bank B > 0 or drop it")
    if args.ila_mining_average != 'network' and not args.ila_mining_ema > 0:
        raise UsageError(f"--ila-mining-average {args.ila_mining_average} chooses what the moving average copies, "
                         f"but ILA mines on no average here (--ila-mining-ema {args.ila_mining_ema:g}); drop it or "
                         f"give --ila-mining-ema > 0")
    for flag, given in (('--ila-source-bank', args.ila_source_bank > 0), ('--ila-mining-ema', args.ila_mining_ema > 0),
                        ('--ila-ratio-terms', args.ila_ratio_terms != RATIO_TERMS[0])):
        if given and not votes_by_knn(args):
            raise UsageError(f"{flag} acts on the kNN vote, which --pseudo-label {args.pseudo_label} does not "
                             f"use; drop one of them")
    if args.ila_temperature != DEFAULT_TEMPERATURE and not takes(METRIC_LOSSES, args.metric_loss, 'temperature'):
        raise UsageError(f"--ila-temperature {args.ila_temperature:g} divides MSC's similarities, and --metric-loss "
                         f"{args.metric_loss} has no temperature; drop one of them")
    adaptation = args.epochs * args.iters_per_epoch
    if ila_enabled(args) and args.ila_start_iter >= adaptation:
        raise UsageError(f"--ila-start-iter {args.ila_start_iter} is past the run's last iteration (--epochs "
                         f"{args.epochs} x -i {args.iters_per_epoch} = {adaptation}): ILA would never run; lower it, "
                         f"or give --ila-trade-off 0 for the method alone")
    if args.scratch and args.pretrained is not None:
        # both were taken: the weights loaded, and --scratch still gave the backbone a from-scratch learning rate
        raise UsageError(f"--scratch starts the backbone from random weights, and --pretrained {args.pretrained} "
                         f"loads weights into it; drop one of them")
    problem = unknown_arch(args.arch)
    if problem:
        raise UsageError(problem)
    if args.no_pool and gives_feature_maps(args.arch):
        raise UsageError(f"--no-pool is only for backbones whose output is already one vector per image (lenet, "
                         f"dtn, timm's models); -a {args.arch} gives feature maps and needs the pool layer")
    from .batches import BatchPlan   # here, not above: the batch plan reads this module's ila_enabled
    plan = BatchPlan.from_args(args, num_classes=0)   # its sizes wait for the data; its rules do not
    plan.check_flags(args)
    method.check_args(args)
    plan.check_source_only(args, source_only_phases(args, method))
