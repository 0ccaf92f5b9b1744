"""The datasets and loaders of a run: source and target training sets, the target evaluation set, and
the seeded, resumable, shardable loaders that draw from them."""
import copy
import functools
import random
import signal
import threading
from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import ConcatDataset, DataLoader, Subset

from .. import distributed as dist_utils
from ..data import SeededBatches, SeededSamples
from ..datasets import build_domain, class_names, find_domain, read_labels, val_is_test
from ..models import image_mode
from ..sampler import ClassBalancedSampler, RandomBatchSampler
from ..transforms import draws_nothing_at_random, get_train_transform, get_val_transform
from .errors import UsageError

__all__ = ["Data", "Loader", "get_dataset", "name_domains_as_the_dataset", "domains_as_named_now",
           "shared_class_names", "check_channels", "cache_images", "with_transform", "random_loader",
           "balanced_loader", "eval_loader", "own_generator"]


class Data(NamedTuple):
    train_source: object
    train_target: object
    val: object
    test: object
    num_classes: int
    class_names: list
    val_transform: object


def name_domains_as_the_dataset(args):
    """``-s`` and ``-t`` as the dataset spells its domains (``-s a`` is Office-31's ``A``), so that the logged
    Namespace, the tables and the checks read one name per domain; an unknown one is refused here, before
    the run writes anything."""
    args.source, args.target = ([find_domain(args.data, args.root, name) for name in names]
                                for names in (args.source, args.target))


def domains_as_named_now(args, saved: dict) -> dict:
    """``saved`` flags (a resume file's) with their ``source`` and ``target`` as :func:`name_domains_as_the_dataset`
    names them: a run written before it logged the names as typed (``-s a``), and continues under the dataset's
    (``A``). Names the dataset does not know stay as they were (the comparison then names them)."""
    def named(names):
        try:
            return [find_domain(args.data, args.root, name) for name in names]
        except Exception:       # not a domain (any more): left for the flag comparison to name
            return names
    return {**saved, **{side: named(saved[side]) for side in ('source', 'target')
                        if isinstance(saved.get(side), (list, tuple))}}


def get_dataset(args) -> Data:
    """Source/target training sets and the target validation and test sets, as tllib's scripts build them:
    the whole target domain for Office-31 and friends; the target's test split for the digits; for
    DomainNet the target's training split validates and its test split tests.
    """
    mode = image_mode(args.arch)
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
    val = domains(args.target, 'val', val_t)
    test = val if val_is_test(args.data) else domains(args.target, 'test', val_t)
    if args.cache_images:
        for dataset in {id(d): d for d in (source, target, val, test)}.values():
            cache_images(dataset)
    names = shared_class_names([source, target])
    check_channels(args, {"-s": (args.source, source), "-t": (args.target, target)})
    return Data(source, target, val, test, len(names), names, val_t)


def _parts(dataset):
    return dataset.datasets if isinstance(dataset, ConcatDataset) else [dataset]


def shared_class_names(datasets) -> list:
    """The class names every domain of ``datasets`` agrees on. A domain names a label its list never uses by
    the label's number (tllib's ImageNet-R and DomainNet spell out all their names; this package reads them
    from the lists): there the name another domain gives counts. Raise UsageError when two names differ."""
    lists = [class_names(part) for dataset in datasets for part in _parts(dataset)]
    if len({len(names) for names in lists}) > 1:
        raise UsageError("source and target domains have different class lists")
    merged = []
    for label, named in enumerate(zip(*lists)):
        given = {name for name in named if name != str(label)} or {str(label)}
        if len(given) > 1:
            raise UsageError(f"source and target domains have different class lists (label {label}: "
                             f"{' / '.join(sorted(given))})")
        merged.append(given.pop())
    return merged


def check_channels(args, domains) -> None:
    """Exit 2 when the images of a domain have another number of channels than ``-a`` reads (LeNet grey,
    every other backbone colour): a dataset that decides its own mode (tllib's, and tllib's digits by their
    name) would stop the first step with a convolution error."""
    wanted = 1 if image_mode(args.arch) == "L" else 3
    for flag, (names, dataset) in domains.items():
        # several domains (-s A W) are one ConcatDataset, a part per name: each part decides its own mode
        for name, part in zip(names, _parts(dataset)):
            with torch.random.fork_rng(devices=[]):    # a random transform's draw must not move the run's seed
                python_state = random.getstate()
                found = part[0][0].shape[0]
                random.setstate(python_state)
            if found == wanted:
                continue
            kind = {1: "grey (1 channel)", 3: "colour (3 channels)"}
            fix = "-a lenet" if found == 1 else "-a dtn or a ResNet"
            raise UsageError(f"-a {args.arch} reads {kind[wanted]} images, but -d {args.data} {flag} "
                             f"{name} gives {kind.get(found, f'{found}-channel')} ones: give {fix}, or "
                             f"domains in {kind[wanted].split()[0]} (-d Digits: MNIST, USPS, SVHN grey; MNISTRGB, "
                             f"USPSRGB, SVHNRGB colour)")


def cache_images(dataset):
    """--cache-images for ImageList-style datasets: each image is decoded once; when the transform draws
    nothing at random (e.g. res. resizing without flips, as for digits) it is also transformed once.
    The samples are the same, only faster. ``image_loader`` keeps the plain loader for other transforms."""
    for part in _parts(dataset):
        if not callable(getattr(part, 'loader', None)):
            continue
        part.image_loader = part.loader
        if part.transform is not None and draws_nothing_at_random(part.transform):
            transform, load = part.transform, part.loader
            part.loader = functools.lru_cache(maxsize=None)(lambda path: transform(load(path)))
            part.transform = None
        else:
            part.image_loader = part.loader = functools.lru_cache(maxsize=None)(part.loader)


def with_transform(dataset, transform):
    """A shallow copy of a dataset (or ConcatDataset) with another image transform."""
    if isinstance(dataset, ConcatDataset):
        return ConcatDataset([with_transform(d, transform) for d in dataset.datasets])
    clone = copy.copy(dataset)
    clone.transform = transform
    if hasattr(clone, 'image_loader'):   # --cache-images may have folded the old transform into the loader
        clone.loader = clone.image_loader
    if hasattr(clone, 'transforms') and hasattr(clone.transforms, 'transform'):
        clone.transforms = copy.copy(clone.transforms)
        clone.transforms.transform = transform
    return clone


def _seed_worker(worker_id):
    seed = torch.initial_seed() % 2 ** 32
    np.random.seed(seed)
    random.seed(seed)


def own_generator(seed):
    """Each loader draws its worker seeds from its own generator, never from the global RNG: otherwise
    every new pass would shift the dropout stream, and a resumed run could not match an uninterrupted one."""
    return torch.Generator().manual_seed(seed)


def random_loader(dataset, batch_size, workers, seed, size_flags="-b", domain="a domain"):
    """Shuffled, fixed-size batches as tllib draws them; the batch is global, split over processes.
    ``size_flags`` names the flags that set ``batch_size`` and ``domain`` the data, for the messages."""
    if len(dataset) < batch_size:
        raise UsageError(f"{domain} has {len(dataset)} samples, fewer than the batch size {batch_size}: lower "
                         f"{size_flags}")
    try:
        sampler = RandomBatchSampler(len(dataset), batch_size, seed, dist_utils.world_size(), dist_utils.rank())
    except ValueError as e:
        raise UsageError(f"{size_flags} (a batch of {batch_size}): {e}; change {size_flags} or the number of "
                         f"processes") from None
    return _training_loader(dataset, sampler, workers, seed)


#: how many times a class-balanced batch may hold each image of the largest source class
MOST_REPEATS = 10


def balanced_loader(dataset, samples_per_class, classes_per_batch, num_classes, workers, seed):
    """``samples_per_class`` samples of every class (or of ``classes_per_batch`` random ones) per batch."""
    try:
        labels = read_labels(dataset)
    except TypeError as e:
        raise UsageError(f"{e}; use --samples-per-class 0 for random source batches") from None
    counts = np.bincount(labels, minlength=num_classes)
    most = MOST_REPEATS * int(counts.max()) if len(labels) else samples_per_class
    if samples_per_class > most:
        # a class smaller than m cycles through its images; past this every image of every class repeats many
        # times in each batch, and a huge m built a batch beyond the memory (a traceback)
        raise UsageError(f"--samples-per-class {samples_per_class} would repeat every image of the largest source "
                         f"class ({counts.max()} images) more than {MOST_REPEATS} times in each batch; give at most "
                         f"{most}")
    try:
        sampler = ClassBalancedSampler(labels, samples_per_class, classes_per_batch, num_classes=num_classes,
                                       seed=seed, num_replicas=dist_utils.world_size(), rank=dist_utils.rank())
    except ValueError as e:
        raise UsageError(f"the source cannot be class-balanced: {e}") from None
    small = sorted(c for c, n in enumerate(counts) if n < samples_per_class)
    if small:
        print(f"note: {len(small)} source class(es) hold fewer than --samples-per-class {samples_per_class} "
              f"images (e.g. class {small[0]}); their images repeat within a balanced batch")
    return _training_loader(dataset, sampler, workers, seed)


class Loader(DataLoader):
    """A DataLoader whose worker processes start with Ctrl-C held back. A SIGINT that arrived while they
    forked killed a worker mid-start (the run ended "DataLoader worker exited unexpectedly", exit 1) or was
    swallowed by the fork's own handlers (the run went on to the end); now the workers never take it (the
    main process stops them) and the main process takes it once they have started: exit 130 as promised."""

    def __iter__(self):
        if self.num_workers == 0 or not hasattr(signal, "pthread_sigmask") or \
                threading.current_thread() is not threading.main_thread():
            return super().__iter__()
        held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            return super().__iter__()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)    # a Ctrl-C held back arrives here


def _training_loader(dataset, sampler, workers: int, seed: int) -> DataLoader:
    # with worker processes each image's random transform is seeded by its place in the run, so it is the
    # same for any -j >= 1 and after --resume; without workers the transforms draw from the main process's
    # RNG, which --resume restores
    if workers > 0:
        dataset, sampler = SeededSamples(dataset), SeededBatches(sampler, seed)
    return Loader(dataset, batch_sampler=sampler, num_workers=workers, worker_init_fn=_seed_worker,
                  generator=own_generator(seed))


def eval_loader(dataset, batch_size, workers):
    """Evaluation batches; under torchrun each process takes every n-th sample (no padding, exact totals)."""
    n = dist_utils.world_size()
    if n > 1:
        dataset = Subset(dataset, list(range(dist_utils.rank(), len(dataset), n)))
    return Loader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers,
                  generator=own_generator(0))
