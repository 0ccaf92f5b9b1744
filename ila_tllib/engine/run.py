"""A whole run: flags → folder → data → model → phases, and the exit code it ends with."""
import contextlib
import os
import random
import re
import signal
import sys
import warnings
from typing import Optional

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn

from .. import backend
from .. import distributed as dist_utils
from ..atomic import save_atomic
from ..logged_flags import METHOD_PREFIX
from ..models import get_model, gives_feature_maps
from . import precision
from .analysis import analyse
from .batches import BatchPlan
from .checkpoint import RunDirectory, check_finite_state, checkpoint_path, keep_tensors_in_state, load_weights
from .data import eval_loader, get_dataset, name_domains_as_the_dataset
from .errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, DivergenceError, UsageError, classify, disk_problem
from .flags import check_args, get_parser, ila_enabled, source_only_phases
from .ila_term import build_ila_term
from .loop import Trainer, make_optimizer, unwrap, validate
from .method import Method
from .moving_average import describe_mining
from .output import RunOutput
from .peers import PeerWatch, agree, launched_processes, main_process_first
from .resume import load_resume_state, read_resume_file, save_resume_state

__all__ = ["main", "run", "build_classifier"]


def main(method: Method, argv=None):
    """Parse the flags and run; the process exits with the run's code (see :mod:`.errors`)."""
    args = get_parser(method).parse_args(argv)
    code = run(args, method)
    try:
        several = launched_processes() > 1
    except UsageError:      # run() said so already, and ran one process
        several = False
    if code == EXIT_INTERRUPTED and not several:
        # end as killed by SIGINT, as Python does after an uncaught Ctrl-C: a shell running a task list
        # (bash ila_cdan.sh) then stops too instead of starting the next line
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    if code != EXIT_OK and several:
        # torchrun terminates the other processes as soon as one has ended, and Python's shutdown gives
        # SIGTERM back its default meaning: a process still shutting down would end "killed by SIGTERM"
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        os._exit(code)
    sys.exit(code)


def run(args, method: Method) -> int:
    """Run ``args.phase``; a user's error is printed as one ``error:`` line (terminal and log) and turned
    into its exit code; a bug raises. Under torchrun an error in one process stops all of them, each
    with that error's code and message (see :mod:`.peers`)."""
    output = directory = peers = None
    refused = False     # bad input: a --log folder the run made, before its work began, holds nothing to keep
    try:
        check_args(args, method)
        name_domains_as_the_dataset(args)
        device = init_distributed()
        peers = PeerWatch.start()
        if peers is not None and dist_utils.is_main_process():
            # a terminal's Ctrl-C reaches every process: whichever takes it first, process 0 says what
            # --resume continues from (read when it happens: the folder is claimed below)
            peers.describe_interrupt = lambda: interrupted_line(args, directory)
        directory, output = _claim(args, peers)
        _run(args, method, device, directory, peers)
        if dist_utils.is_distributed() and args.phase != 'analysis':
            # every process is done with the group before any destroys it; not after the analysis phase,
            # which rank 0 runs alone for as long as it takes (a barrier would time out on the others)
            dist.barrier()
        return EXIT_OK
    except KeyboardInterrupt:
        if dist_utils.is_main_process():   # under torchrun, torchrun reports the interrupt as well
            print(interrupted_line(args, directory), file=sys.stderr)
        if peers is not None:
            peers.stopping(EXIT_INTERRUPTED, "interrupted")
        return EXIT_INTERRUPTED
    except Exception as e:
        found = classify(e)
        if found is None and peers is not None:   # e.g. gloo's "Connection closed by peer" after a peer's error
            stopped = peers.peer_stop(wait=2.0)
            found = classify(stopped) if stopped is not None else None
        if found is None:
            if peers is not None:
                peers.stopping(1, f"an unexpected {type(e).__name__} (its traceback is in process "
                                  f"{dist_utils.rank()}'s output)")
            raise
        code, message = found
        if code == EXIT_INTERRUPTED:       # another process's Ctrl-C ended the collective this one was in
            if dist_utils.is_main_process():
                print(interrupted_line(args, directory), file=sys.stderr)
            return code
        print(f"error: {message}", file=sys.stderr)
        refused = code == EXIT_USAGE
        if directory is not None:
            directory.remove_empty_created()
        if peers is not None:
            peers.stopping(code, message)
        return code
    finally:
        if peers is not None:
            peers.close()
        if output is not None:
            output.close()
        if directory is not None:
            if refused:     # under the lock: no other run can take the folder while it goes
                directory.remove_refused(output.log_filename if output is not None else None)
            directory.close()
        if dist_utils.is_distributed():
            dist.destroy_process_group()


def interrupted_line(args, directory: Optional[RunDirectory]) -> str:
    return f"interrupted: {interrupted_state(args, directory)}"


def interrupted_state(args, directory: Optional[RunDirectory]) -> str:
    """What an interrupted run leaves: the epoch ``--resume`` would continue from, if any. A new run's
    resume.pth is its own once the earlier run's checkpoints were set aside; before that they are untouched."""
    path = checkpoint_path(args, 'resume')
    if args.phase != 'train':
        return f"--phase {args.phase} did not finish"
    ours = args.resume or (directory is not None and directory.set_aside)
    if ours and os.path.isfile(path):
        return f"{path} holds the last finished epoch; continue with --resume"
    if not ours and os.path.isfile(path):
        return f"no epoch of this run had finished; the checkpoints in {args.log} are an earlier run's, untouched"
    return "no epoch had finished, nothing to resume; run again to start over"


def init_distributed() -> torch.device:
    """Join the process group when started by torchrun (NCCL on GPUs, gloo on CPU); else single process."""
    if launched_processes() <= 1:
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    if torch.cuda.is_available():
        local_rank = int(os.environ.get('LOCAL_RANK', '0'))
        torch.cuda.set_device(local_rank)
        dist.init_process_group('nccl')
        return torch.device('cuda', local_rank)
    dist.init_process_group('gloo')
    return torch.device('cpu')


def _claim(args, peers: Optional[PeerWatch]):
    """Process 0 claims the --log folder and tees the output into it; every process learns whether it could."""
    directory = output = None
    failure: Optional[Exception] = None
    if dist_utils.is_main_process():
        try:
            directory = RunDirectory(args.log, args.phase, args.resume).open()
            output = RunOutput(args.log, args.phase)
        except Exception as e:   # any error: the other processes must not wait for process 0 below
            failure = e
    else:
        output = RunOutput(None)
    # all processes stop together, none waits in a collective
    failure = agree(failure, peers, UsageError(f"process 0 could not use --log {args.log} (see its message)"))
    if failure is not None:
        if output is not None:
            output.close()
        if directory is not None:
            directory.close()
        raise failure
    return directory, output


def set_seed(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.backends.cudnn.deterministic = True
    warn_from_script('You have chosen to seed training. This will turn on the CUDNN deterministic setting, which '
                     'can slow down your training considerably! You may see unexpected behavior when restarting '
                     'from checkpoints.')


def data_seed(args, resumed) -> int:
    """The seed of the batches' order and of the images' random transforms: ``--seed`` when given; else the
    one the resumed run drew (0 in a resume file written before unseeded runs drew one: they used 0); else
    one drawn afresh, the same in every process, so that runs without ``--seed`` see their data in orders of
    their own, as tllib's unseeded runs do."""
    if args.seed is not None:
        return args.seed
    if resumed is not None:
        return int(resumed.get('data_seed', 0)) if isinstance(resumed, dict) else 0
    drawn = [random.SystemRandom().randrange(2 ** 31)]
    if dist_utils.is_distributed():
        dist.broadcast_object_list(drawn, src=0)
    return drawn[0]


def warn_from_script(message: str):
    """A UserWarning attributed to the running script (``__main__``), where tllib's scripts issue theirs, so
    that it reads ``cdan.py:N: UserWarning`` there and ``ila_cdan.py:N`` here and a ``-W …:__main__`` filter
    written for tllib applies; to the caller's caller when no frame belongs to ``__main__``."""
    frame, level = sys._getframe(1), 2     # stacklevel 2: this function's caller
    while frame is not None and frame.f_globals.get("__name__") != "__main__":
        frame, level = frame.f_back, level + 1
    warnings.warn(message, UserWarning, stacklevel=level if frame is not None else 3)


def build_classifier(args, method: Method, num_classes: int, device) -> nn.Module:
    print("=> using model '{}'".format(args.arch))
    backbone = get_model(args.arch, args.scratch, args.pretrained, args.weights)
    # a backbone that gives feature maps gets the classifier's pool layer (check_args refused --no-pool for it);
    # any other gives one vector per image, --no-pool or not
    pool_layer = None if gives_feature_maps(args.arch) else nn.Identity()
    return method.build_classifier(args, backbone, num_classes, pool_layer).to(device)


@contextlib.contextmanager
def sizes_from_flags(args):
    """Building the networks: an allocation that fails there is the size a flag gave a layer (a traceback
    left it to the user to find which), named as bad input."""
    try:
        yield
    except (MemoryError, RuntimeError) as e:
        if not (isinstance(e, MemoryError) or "can't allocate memory" in str(e)):   # the host's memory
            raise
        sizes = [f"--bottleneck-dim {getattr(args, 'bottleneck_dim', None)}"] + (
            [f"-rd {args.randomized_dim}"] if getattr(args, "randomized", False) else [])
        asked = re.search(r"allocate (\d+) bytes", str(e))
        what = f"a layer asked for {int(asked.group(1)) / 2 ** 30:.1f} GiB" if asked else type(e).__name__
        raise UsageError(f"the networks do not fit in memory ({what}); lower {' or '.join(sizes)}, or choose a "
                         f"smaller -a than {args.arch}") from None


def _run(args, method: Method, device, directory: Optional[RunDirectory], peers: Optional[PeerWatch]):
    print(method.namespace_line(args))
    print(f"{METHOD_PREFIX}{method.name}")   # what python -m ila_tllib.tables names the run by
    print(backend.describe())
    for note in getattr(directory, 'notes', []):
        print(note)
    if dist_utils.is_distributed():
        print(f"torch.distributed: {dist_utils.world_size()} processes ({dist.get_backend()}); -b and the "
              f"class-balanced batch are global batches, split evenly over the processes")
    both = [name for name in args.target if name in args.source]
    if both and args.phase == 'train':     # tllib's scripts take it silently: an oracle, not an adaptation
        warn_from_script(f"-t {' '.join(both)} is also a source domain (-s {' '.join(args.source)}): its labels "
                         f"train the classifier, so the target accuracy measures no adaptation")
    # a resume that cannot continue this run is refused before the data and the model are built
    resumed = read_resume_file(args, method) if args.resume and args.phase == 'train' else None
    if args.seed is not None:
        set_seed(args.seed)  # the same initial weights in every process
    # cuDNN's autotuner, on in tllib's scripts, picks algorithms by timing, so a seeded run could differ
    # from its repeat or its resume: on only without --seed
    torch.backends.cudnn.benchmark = args.seed is None
    seed = data_seed(args, resumed)

    # downloads and the offline export write ROOT once, in process 0
    data = main_process_first(lambda: get_dataset(args), peers, "prepare the datasets")
    plan = BatchPlan.from_args(args, data.num_classes)
    plan.check(args, data.num_classes)
    plan.check_source_only(args, source_only_phases(args, method))   # a class-balanced batch's size is known now
    with sizes_from_flags(args):
        classifier = build_classifier(args, method, data.num_classes, device)
        transfer = keep_tensors_in_state(
            method.build_transfer(args, classifier, data.num_classes, plan.source_size, plan.target_size)).to(device)
    precision.prepare_modules(args, classifier, transfer, device)   # --amp, --channels-last
    val_loader = eval_loader(data.val, args.batch_size, args.workers)
    test_loader = eval_loader(data.test, args.batch_size, args.workers)

    def evaluate(loader, model=classifier):
        return validate(loader, model, args, device, data.class_names)

    if args.phase != 'train':
        load_weights(unwrap(classifier), checkpoint_path(args, 'best'), f'--phase {args.phase}',
                     'use the --log of a training run of this script with the same flags, or train first '
                     '(--phase train)')
        if directory is not None:
            directory.accepted = True
        if args.phase == 'analysis':   # on process 0; the others wait for it and end as it ends
            main_process_first(lambda: analyse(classifier, method, data, args, device, args.log), peers,
                               "analyse the run", others_too=False)
        else:
            print(evaluate(test_loader))
        return

    if args.seed is not None and dist_utils.is_distributed():
        # ...but different dropout; data order comes from samplers. Only for training: process 0's analysis
        # draws as a single process's does, so that its numbers do not depend on the launch
        torch.manual_seed(args.seed + dist_utils.rank())
    iters = plan.iterators(data, args, seed)
    print(plan.describe())
    ila = build_ila_term(args, args.epochs * args.iters_per_epoch) if ila_enabled(args) else None
    if dist_utils.is_distributed():
        if args.sync_bn:
            classifier = nn.SyncBatchNorm.convert_sync_batchnorm(classifier)
            transfer = nn.SyncBatchNorm.convert_sync_batchnorm(transfer)
        ids = [device.index] if device.type == 'cuda' else None
        # a source-only warm-up (--pretrain-iters) leaves heads of some methods unused (MDD's adversarial head)
        classifier = nn.parallel.DistributedDataParallel(classifier, device_ids=ids,
                                                         find_unused_parameters=args.pretrain_iters > 0)
        if any(p.requires_grad for p in transfer.parameters()):
            transfer = nn.parallel.DistributedDataParallel(transfer, device_ids=ids)
        if ila is not None:
            ila.distribute()
    trainer = Trainer(args, method, classifier, transfer, plan, ila, data.num_classes, device)
    modules = {'classifier': unwrap(classifier), 'transfer': unwrap(transfer)}
    if ila is not None and args.ila_source_bank > 0:   # the bank's memory is part of an exact resume
        modules['ila_loss'] = ila.ila_loss
    if ila is not None and ila.mining_network is not None:   # and so is the moving average ILA mines on
        modules['ila_mining_network'] = ila.mining_network.model
    if ila is not None:
        print(describe_mining(ila.mining_network))

    # only now, with data and model built: a run stopped by bad input leaves an earlier run's files in place
    moved = directory.set_aside_finished(method.kept_inputs(args)) if directory is not None else None
    if moved:
        print(moved)
    if not args.resume:
        method.pretrain(args, trainer, iters['source'], lambda: evaluate(val_loader),
                        checkpoint_path(args, 'pretrain'))
        if args.pretrain_iters > 0:
            trainer.pretrain(iters['source'], args.pretrain_iters, args.lr, prefix="Pretrain: ")
        if ila is not None and ila.mining_network is not None:   # the average starts with adaptation
            ila.mining_network.restart_from(unwrap(classifier))
    optimizer, scheduler = make_optimizer(method.param_groups(unwrap(classifier), unwrap(transfer)), args)
    state = {'iter': 0, 'num_classes': data.num_classes, 'data_seed': seed}
    start_epoch, best_acc1 = 0, 0.
    if args.resume:
        start_epoch, best_acc1 = load_resume_state(args, method, plan, state, modules, optimizer, scheduler, iters,
                                                   resumed)
    for epoch in range(start_epoch, args.epochs):
        print(method.epoch_lr_line(scheduler.get_last_lr()))
        try:
            trainer.train_one_epoch(iters, optimizer, scheduler, epoch, state)
            check_finite_state(modules, f"in epoch {epoch}", trainer.fix)
        except DivergenceError as e:
            held = (f"the checkpoints in {args.log} still hold epoch {epoch - 1} (best_acc1 = {best_acc1:3.1f}); "
                    f"continue from them with --resume and a lower --lr" if epoch > 0 else "no epoch had finished")
            raise DivergenceError(f"{e}; nothing was saved for epoch {epoch}: {held}") from None
        acc1 = evaluate(val_loader)
        try:
            save_on_main(classifier, args, 'latest')
            if acc1 > best_acc1 or epoch == 0:  # a first 'best' exists even when the accuracy is 0
                save_on_main(classifier, args, 'best')
            best_acc1 = max(acc1, best_acc1)
            save_resume_state(args, method, plan, epoch, best_acc1, state, modules, optimizer, scheduler, iters)
        except OSError as e:
            problem = disk_problem(e)
            if problem is None and isinstance(e, FileNotFoundError):
                folder = os.path.dirname(checkpoint_path(args, 'latest'))
                raise UsageError(f"{folder} is gone (moved or removed during the run), so epoch {epoch}'s "
                                 f"checkpoints could not be written; start the run again") from None
            if problem is None:
                raise
            held = (f"resume.pth holds epoch {epoch - 1}: free space, then continue with --resume" if epoch > 0
                    else "no epoch was saved: free space, then start again")
            raise UsageError(f"{problem}; a failed write leaves the file it replaces as it was, and {held}") from None

    print("best_acc1 = {:3.1f}".format(best_acc1))
    if dist_utils.is_distributed():
        dist.barrier()
    load_weights(unwrap(classifier), checkpoint_path(args, 'best'), 'test_acc1',
                 'another process changed --log during the run')
    acc1 = evaluate(test_loader)
    print("test_acc1 = {:3.1f}".format(acc1))


def save_on_main(classifier, args, name):
    if dist_utils.is_main_process():
        save_atomic(unwrap(classifier).state_dict(), checkpoint_path(args, name))
