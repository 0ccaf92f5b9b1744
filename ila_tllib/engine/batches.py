"""Which batch feeds which loss — decided here and nowhere else.

=====================================  ==============  ===========  =====================================
flags                                  CE + adversary  target       ILA's source side
=====================================  ==============  ===========  =====================================
``--ila-trade-off 0``                  random (-b)     random (-b)  (no ILA)
``--balanced-source``                  class-balanced  random (-b)  (no ILA; the sampling control)
ILA, ``--ila-batch extra`` (default)   random (-b)     random (-b)  its own class-balanced batch
ILA, ``--ila-source-sampling random``  random (-b)     random (-b)  its own random batch, classes × m rows
ILA, ``--ila-batch shared``            class-balanced  random (-b)  the same class-balanced batch
ILA, ``--samples-per-class 0``         random (-b)     random (-b)  the same random batch (no rows added)
=====================================  ==============  ===========  =====================================

ILA's target side is always the adversary's target batch. All batches of an iteration go through the
network in one forward pass (as tllib concatenates source and target). With ``--ila-bn-statistics tllib``
(default) BatchNorm layers take their statistics from tllib's source and target rows alone and apply them
to the extra batch too (:mod:`.batchnorm`); with ``all`` from every row.
"""
from typing import Dict, List, NamedTuple, Optional, Tuple

import torch

from ..affinity import kept_count
from ..data import ResumableForeverIterator
from .data import balanced_loader, random_loader
from .errors import UsageError
from .flags import ila_enabled, votes_by_knn
from .peers import launched_processes

__all__ = ["BatchPlan", "Batch"]


#: iterator -> (the domain it draws from, its seed's offset from the run's seed)
_DRAWN_FROM = {'source': ('source', 0), 'target': ('target', 1), 'ila_source': ('source', 2)}
#: iterator -> the flags that set its size when drawn at random, for the messages
_SIZE_FLAGS = {'source': "-b", 'target': "-b", 'ila_source': "--samples-per-class (x --classes-per-batch)"}


class Batch(NamedTuple):
    """One iteration's inputs (all parts concatenated) and where each part lies in them."""
    inputs: torch.Tensor
    labels_s: torch.Tensor
    labels_t: torch.Tensor        # for logging ILA's diagnostics only; never reaches a loss
    labels_ila: Optional[torch.Tensor]
    source: slice
    target: slice
    ila: Optional[slice]          # rows of ILA's source side; None when ILA does not run
    statistics_rows: Optional[int] = None   # BatchNorm statistics from inputs[:statistics_rows]; None: all


class BatchPlan:
    """The batches of a run, from its flags.

    Args:
        balanced_source (bool): CE and the adversary read a class-balanced source batch
        ila_batch (str, optional): ``None`` (no ILA), ``'shared'`` or ``'extra'`` (``--ila-batch``, or
            ``'shared'`` where ILA reads tllib's random rows, ``--samples-per-class 0``)
        batch_size (int): -b, the random batches' size
        balanced_size (int): size of a class-balanced batch (classes × samples per class)
        classes (int), samples_per_class (int): its composition
        source_bank (int): source features of every class from earlier batches that ILA's vote reads as well
        bank_anchors (bool): and that ILA's loss contrasts too
        ila_sampling (str): ``'balanced'``, or ``'random'``: ILA's own batch (extra mode) holds as many rows,
            drawn at random
    """

    def __init__(self, balanced_source: bool, ila_batch: Optional[str], batch_size: int, classes: int,
                 samples_per_class: int, bn_statistics: str = 'all', source_bank: int = 0,
                 bank_anchors: bool = False, ila_sampling: str = 'balanced'):
        self.balanced_source, self.ila_batch, self.bn_statistics = balanced_source, ila_batch, bn_statistics
        self.batch_size, self.classes, self.samples_per_class = batch_size, classes, samples_per_class
        self.source_bank, self.bank_anchors, self.ila_sampling = source_bank, bank_anchors, ila_sampling

    @classmethod
    def from_args(cls, args, num_classes: int) -> "BatchPlan":
        # --samples-per-class 0: no balanced batch at all; ILA reads tllib's random source batch
        ila_batch = (args.ila_batch if args.samples_per_class > 0 else 'shared') if ila_enabled(args) else None
        balanced_source = args.balanced_source or (ila_batch == 'shared' and args.samples_per_class > 0)
        return cls(balanced_source, ila_batch, args.batch_size, args.classes_per_batch or num_classes,
                   args.samples_per_class, args.ila_bn_statistics, args.ila_source_bank if ila_batch else 0,
                   bool(ila_batch) and args.ila_bank_anchors, args.ila_source_sampling)

    @property
    def target_size(self) -> int:
        """The target batch, which the adversary and ILA read alike."""
        return self.batch_size

    @property
    def balanced_size(self) -> int:
        return self.classes * self.samples_per_class

    @property
    def source_size(self) -> int:
        """The size of the source batch that CE and the adversary see."""
        return self.balanced_size if self.balanced_source else self.batch_size

    @property
    def ila_source_size(self) -> int:
        return self.balanced_size if self.ila_batch == 'extra' else self.source_size

    @property
    def statistics_rule(self) -> str:
        """Where a step's BatchNorm statistics come from: 'tllib' (tllib's source and target rows) only when
        ILA adds rows of its own; else 'all', the rows of the forward pass, which are tllib's."""
        return self.bn_statistics if self.ila_batch == 'extra' else 'all'

    def describe(self) -> str:
        """One log line saying which batches CE, the adversary and ILA see."""
        balanced = f"class-balanced ({self.classes} classes x {self.samples_per_class} = {self.balanced_size})"
        source = balanced if self.balanced_source else f"random ({self.batch_size})"
        text = f"batches: source {source}, target random ({self.target_size})"
        if self.ila_batch == 'extra':
            own = balanced if self.ila_sampling == 'balanced' else f"random ({self.balanced_size})"
            text += f"; ILA's source batch {own}"
        elif self.ila_batch == 'shared':      # the balanced batch, or tllib's random rows (--samples-per-class 0)
            text += "; ILA reads the source batch"
        if self.source_bank:
            readers = "vote and loss" if self.bank_anchors else "vote"
            text += f", and its {readers} the {self.source_bank} most recent source features of every class"
        return text

    def check(self, args, num_classes: int):
        """What the plan cannot hold once the class count is known."""
        if args.classes_per_batch is not None and args.classes_per_batch > num_classes:
            raise UsageError(f"--classes-per-batch {args.classes_per_batch} is more than the {num_classes} classes "
                             f"of the data; give at most {num_classes}, or leave it out for all of them")
        if self.ila_batch and votes_by_knn(args) and args.k > self.ila_source_size:
            raise UsageError(f"--k {args.k} is larger than ILA's source batch ({self.ila_source_size} samples); "
                             f"lower --k or raise --samples-per-class")

    def check_flags(self, args):
        """What the plan cannot hold whatever the data: checked with the other flags, before any folder."""
        if self.ila_batch and kept_count(args.mu, self.target_size) == 0:
            raise UsageError(f"--mu {args.mu} keeps no target of a batch of {self.target_size} (it keeps round(mu x "
                             f"-b)): the ILA term would be 0; raise --mu to at least {0.5 / self.target_size:g}, or -b")
        if args.balanced_source and args.samples_per_class == 0:
            raise UsageError("--balanced-source needs a class-balanced batch: add --samples-per-class m > 0 (e.g. 4)")
        if args.classes_per_batch is not None and args.samples_per_class == 0:
            raise UsageError(f"--classes-per-batch {args.classes_per_batch} shapes a class-balanced batch, and there "
                             f"is none (--samples-per-class 0); add --samples-per-class m > 0 or drop it")
        if args.balanced_source and self.ila_batch == 'extra':
            raise UsageError("--balanced-source contradicts --ila-batch extra (the default, which keeps tllib's "
                             "random source batch for CE and the adversary); add --ila-batch shared")
        if self.ila_batch and votes_by_knn(args) and self.samples_per_class == 0 and args.k > self.batch_size:
            # ILA reads tllib's random source batch (-b), whose size the data do not change
            raise UsageError(f"--k {args.k} is larger than the source batch (-b {self.batch_size}); lower --k")
        if self.ila_sampling != 'balanced' and self.ila_batch != 'extra':
            raise UsageError(f"--ila-source-sampling {self.ila_sampling} draws ILA's own source batch, and there is "
                             f"none here; it needs ILA with --ila-batch extra (the default) and --samples-per-class "
                             f"m > 0, or drop it")
        if args.phase == 'train':   # training's own rules: a test or analysis of a finished run draws no batch
            self._check_training(args)

    def _check_training(self, args):
        draws_balanced = self.balanced_source or (self.ila_batch == 'extra' and self.ila_sampling == 'balanced')
        if args.classes_per_batch is not None and args.classes_per_batch < 2 and draws_balanced:
            if args.classes_per_batch < 1:
                raise UsageError(f"--classes-per-batch {args.classes_per_batch}: a class-balanced batch needs "
                                 f"classes to draw from; give 2 or more, or leave it out for all classes")
            why = " (ILA would give every target that class and contrast nothing)" if self.ila_batch else ""
            raise UsageError(f"--classes-per-batch {args.classes_per_batch}: every class-balanced batch would hold "
                             f"one class{why}; give 2 or more, or leave it out for all classes")
        if (self.ila_batch and votes_by_knn(args) and self.samples_per_class == 1 and args.k > 1
                and self.source_bank == 0 and self.ila_sampling == 'balanced'):
            raise UsageError(f"--k {args.k} with --samples-per-class 1: ILA's source batch holds one sample of each "
                             f"class, so a target's {args.k} nearest are of {args.k} classes and every vote is a "
                             f"tie; use --k 1, or --samples-per-class 2 or more")
        if args.sync_bn and self.statistics_rule == 'tllib':
            # SyncBatchNorm pools its statistics over the processes from every row of the forward pass
            raise UsageError("--sync-bn takes BatchNorm statistics from every row, ILA's own batch included, so "
                             "it cannot keep --ila-bn-statistics tllib (the default with --ila-batch extra); add "
                             "--ila-bn-statistics all, or leave out --sync-bn")

    def check_source_only(self, args, phases: List[Tuple[str, str]]):
        """A source-only phase (``(what it is, what else avoids it)``: a warm-up, BSP's pretraining) trains
        BatchNorm on the source batch alone, which needs two rows in every process (or in all of them, with
        --sync-bn): each batch is split over the processes. A class-balanced batch's size is known once the
        class count is (or with --classes-per-batch), so this runs with the flags and again with the data."""
        if not phases:
            return
        processes = launched_processes()
        if self.balanced_source:
            if not self.classes:
                return
            rows = self.balanced_size
            batch = f"a class-balanced source batch of {rows} ({self.classes} classes x {self.samples_per_class})"
            flags = "--samples-per-class" + (" or --classes-per-batch" if args.classes_per_batch else "")
        else:
            rows, batch, flags = args.batch_size, f"a source batch of {args.batch_size}", "-b"
        pooled = args.sync_bn and processes > 1   # SyncBatchNorm pools the statistics of every process
        if (rows if pooled else rows // processes) < 2:
            phase, or_else = phases[0]
            per = f" over {processes} processes" if processes > 1 and not pooled else ""
            raise UsageError(f"{batch}{per} with {phase}: a source-only step would train BatchNorm on one "
                             f"image, which it cannot; raise {flags}{or_else}")

    def reads(self) -> Dict[str, Tuple[str, int]]:
        """What an iteration draws: iterator name -> (sampling, rows); 'target' and 'source', and in extra mode
        'ila_source'. Sampling 'balanced' is classes × m rows of every class (or of random classes)."""
        parts = {'target': ('random', self.batch_size),      # built first: its problems are told first
                 'source': ('balanced', self.balanced_size) if self.balanced_source else ('random', self.batch_size)}
        if self.ila_batch == 'extra':
            parts['ila_source'] = (self.ila_sampling, self.balanced_size)
        return parts

    def iterators(self, data, args, seed: int) -> Dict[str, ResumableForeverIterator]:
        """Forever iterators of :meth:`reads`, each with its own seed."""
        domains = {side: f"the {side} domain ({' + '.join(names)})"
                   for side, names in (('source', args.source), ('target', args.target))}

        def loader(name, sampling, rows):
            side, offset = _DRAWN_FROM[name]
            dataset = data.train_target if side == 'target' else data.train_source
            if sampling == 'balanced':
                return balanced_loader(dataset, self.samples_per_class, args.classes_per_batch, data.num_classes,
                                       args.workers, seed + offset)
            return random_loader(dataset, rows, args.workers, seed + offset, _SIZE_FLAGS[name], domains[side])
        return {name: ResumableForeverIterator(loader(name, *read)) for name, read in self.reads().items()}

    def draw(self, iters, device, with_ila: bool) -> Batch:
        """The next batch of every part this iteration needs (the extra ILA batch only when ILA runs)."""
        x_s, labels_s = next(iters['source'])[:2]
        x_t, labels_t = next(iters['target'])[:2]
        extra = next(iters['ila_source'])[:2] if with_ila and self.ila_batch == 'extra' else None
        return self.assemble(x_s, labels_s, x_t, labels_t, with_ila, extra, device)

    def assemble(self, x_s, labels_s, x_t, labels_t, with_ila: bool, extra=None, device=None) -> Batch:
        """One iteration's :class:`Batch` from its parts; ``extra`` is ILA's own ``(images, labels)``, needed
        when ILA runs in extra mode."""
        if with_ila and self.ila_batch == 'extra' and extra is None:
            raise ValueError("ILA's extra batch is missing: pass extra=(images, labels)")
        parts, n_s, n_t = [x_s, x_t], x_s.shape[0], x_t.shape[0]
        ila, labels_ila, statistics_rows = None, None, None
        if with_ila and self.ila_batch == 'extra':
            x_b, labels_ila = extra
            parts.append(x_b)
            ila, labels_ila = slice(n_s + n_t, n_s + n_t + x_b.shape[0]), labels_ila.to(device)
            statistics_rows = n_s + n_t if self.statistics_rule == 'tllib' else None
        elif with_ila and self.ila_batch == 'shared':
            ila, labels_ila = slice(0, n_s), labels_s.to(device)
        return Batch(torch.cat(parts).to(device), labels_s.to(device), labels_t.to(device), labels_ila,
                     slice(0, n_s), slice(n_s, n_s + n_t), ila, statistics_rows)
