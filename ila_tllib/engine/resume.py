"""A run's ``resume.pth``: what it holds (written after every epoch), the checks before a run continues it
(its method, its flags, the shape of what was built) and the loading of every state an exact continuation
needs."""
import torch
import torch.distributed as dist

from .. import distributed as dist_utils
from ..atomic import save_atomic
from ..logged_flags import RESUMED_PREFIX
from .batches import BatchPlan
from .checkpoint import checkpoint_path, load_file, rng_state, schedule_counters, set_rng_state, set_schedule_counters
from .data import domains_as_named_now
from .errors import UsageError
from .flags import FLAGS_ADDED_LATER, flag_name
from .loop import load_schedule, sync_buffers
from .method import Method
from .resume_flags import (changed_flags, finished_run_refusal, flag_history, history_line, inexact_notes, refusal,
                           to_name_back)

__all__ = ["RESUMED_ILA_FLAGS", "START_ANEW", "resume_config", "save_resume_state", "read_resume_file",
           "load_resume_state"]

#: ILA flags whose state a resume checkpoint holds: the source bank's rings, the average ILA mines on and the
#: sampler of ILA's own batch
RESUMED_ILA_FLAGS = ('ila_source_bank', 'ila_mining_ema', 'ila_mining_average', 'ila_source_sampling')


def resume_config(args, method: Method, plan: BatchPlan, state) -> dict:
    """What shapes the model, the optimiser groups and the data iterators: a resumed run must match."""
    keys = ('arch', 'bottleneck_dim', 'no_pool', 'data', 'source', 'target', 'batch_size', 'samples_per_class',
            'classes_per_batch', *RESUMED_ILA_FLAGS)
    config = {k: getattr(args, k, None) for k in keys}
    config.update(method=method.name, num_classes=state['num_classes'], balanced_source=plan.balanced_source,
                  ila_source=plan.ila_batch, processes=dist_utils.world_size())   # saved under its old name
    return config


def save_resume_state(args, method, plan, epoch, best_acc1, state, modules, optimizer, scheduler, iters):
    """Everything an exact continuation needs, written atomically after every epoch (process 0)."""
    for module in modules.values():   # what is saved is what every process goes on with (e.g. the BatchNorm
        sync_buffers(module)          # statistics of the average ILA mines on, which each process updates)
    rng = rng_state()
    if dist_utils.is_distributed():   # every process draws its own dropout masks: keep each one's RNG
        states = [None] * dist_utils.world_size()
        dist.all_gather_object(states, rng)
        rng = {'per_process': states}
    if not dist_utils.is_main_process():
        return
    save_atomic({
        'config': resume_config(args, method, plan, state), 'flags': dict(vars(args)),
        'epoch': epoch + 1, 'best_acc1': best_acc1, 'iter': state['iter'],
        'flag_history': state.get('flag_history', {}),
        'modules': {name: module.state_dict() for name, module in modules.items()},
        'counters': schedule_counters(modules),
        'optimizer': optimizer.state_dict(), 'scheduler': scheduler.state_dict(),
        'iterators': {name: it.state_dict() for name, it in iters.items()}, 'data_seed': state['data_seed'],
        'rng': rng,
    }, checkpoint_path(args, 'resume'))


#: how a refused or unreadable resume checkpoint can be left behind
START_ANEW = "start without --resume to train anew (the old checkpoints are kept aside)"


def read_resume_file(args, method: Method):
    """The resume checkpoint, once its method and recorded flags (if it has them) allow this run to continue it."""
    path = checkpoint_path(args, 'resume')
    ckpt = load_file(path, "--resume", "a run writes it after its first epoch; " + START_ANEW, weights_only=False)
    if not isinstance(ckpt, dict):
        raise UsageError(f"--resume: {path} holds a {type(ckpt).__name__}, not the state a run writes to resume.pth "
                         f"after each epoch: it is damaged or not a checkpoint; {START_ANEW}")
    counts = {key: ckpt[key] for key in ('epoch', 'iter', 'best_acc1', 'data_seed') if key in ckpt}
    wrong = [f"{key} {value!r}" for key, value in counts.items() if isinstance(value, bool)
             or not isinstance(value, (int, float) if key == 'best_acc1' else int) or value < 0]
    wrong += [f"no {key}" for key in ('epoch', 'iter', 'best_acc1') if key not in ckpt and 'modules' in ckpt]
    if wrong:
        raise UsageError(f"--resume: {path} holds {', '.join(wrong)}, where a run writes a count of 0 or more: it is "
                         f"damaged; {START_ANEW}")
    for saved in ('flags', 'config'):
        if isinstance(ckpt.get(saved), dict):
            ckpt[saved] = domains_as_named_now(args, ckpt[saved])
    if 'modules' not in ckpt and ckpt and all(torch.is_tensor(v) for v in ckpt.values()):
        raise UsageError(f"--resume: {path} holds only a network's weights (as best.pth, latest.pth and "
                         f"pretrain.pth do), not the state a run writes to resume.pth after each epoch; "
                         f"{START_ANEW}")
    config = ckpt.get('config') if isinstance(ckpt, dict) else None
    written_by = config.get('method') if isinstance(config, dict) else None
    if written_by is not None and written_by != method.name:   # before the flags: another method's differ anyway
        raise UsageError(f"--resume: {path} was written by a {written_by} run, not {method.name}: resume it with "
                         f"the {written_by} script, or use another --log")
    flags = ckpt.get('flags') if isinstance(ckpt, dict) else None
    if isinstance(flags, dict):   # written with every flag: each change is named with both values
        changes = changed_flags(flags, vars(args))
        if changes:
            raise UsageError(refusal(path, flags, changes))
        pointless = finished_run_refusal(path, flags, vars(args), ckpt.get('epoch', 0))
        if pointless:
            raise UsageError(pointless)
    return ckpt


def load_resume_state(args, method, plan, state, modules, optimizer, scheduler, iters, ckpt):
    """Continue from ``ckpt`` (:func:`read_resume_file`): the built run must fit it, then every state is loaded."""
    path = checkpoint_path(args, 'resume')
    flags = ckpt.get('flags') if isinstance(ckpt, dict) else None
    config = resume_config(args, method, plan, state)
    old = ckpt.get('config') if isinstance(ckpt, dict) else None
    # written before a flag existed: it ran with that flag off
    old = {**{k: FLAGS_ADDED_LATER[k] for k in RESUMED_ILA_FLAGS}, **old} if isinstance(old, dict) else {}
    if old != config:
        changed = sorted(k for k in config if old.get(k) != config[k])
        hint = ""
        if set(changed) <= set(RESUMED_ILA_FLAGS):   # a default may have moved since: name the flags that continue it
            wanted = (f"{flag_name(k)} {old[k]:g}" if isinstance(old[k], float) else f"{flag_name(k)} {old[k]}"
                      for k in to_name_back(changed, old))
            hint = f" (to continue it, add {' '.join(wanted)})"
        if changed == ['processes']:
            raise UsageError(f"--resume: {path} was written by {old['processes']} process(es) (now "
                             f"{config['processes']}); resume with as many (torchrun --nproc_per_node="
                             f"{old['processes']}), or use another --log")
        told = ", ".join(f"{k} {old.get(k)} (now {config[k]})" for k in changed)
        raise UsageError(f"--resume: {path} was written by a run with other {told}{hint}; resume with the same "
                         f"flags and data, or use another --log")
    try:
        for name, module in modules.items():
            module.load_state_dict(ckpt['modules'][name])
        load_schedule(optimizer, scheduler, ckpt['optimizer'], ckpt['scheduler'])
        for name, it in iters.items():
            it.load_state_dict(ckpt['iterators'][name])
        set_schedule_counters(modules, ckpt['counters'])
        rng = ckpt['rng']
        set_rng_state(rng['per_process'][dist_utils.rank()] if 'per_process' in rng else rng)
    except (KeyError, RuntimeError, ValueError, TypeError, IndexError) as e:
        raise UsageError(f"--resume: {path} does not fit this run ({str(e).splitlines()[0]}); {START_ANEW}") from None
    state['iter'] = ckpt['iter']
    print(f"{RESUMED_PREFIX}{path}: epoch {ckpt['epoch']}, iteration {ckpt['iter']}, best_acc1 {ckpt['best_acc1']:.1f}")
    if not isinstance(flags, dict):
        print(f"note: {path} holds no record of its run's flags (an earlier version wrote it): only the network's "
              f"shape, the batches and ILA's memory could be compared with this run's")
    flags = flags if isinstance(flags, dict) else {}
    for note in inexact_notes(flags, vars(args)):
        print(f"note: {note}")
    # kept in every later resume file, so that the log of the run's last part names every change (a finished
    # run trains nothing, and read_resume_file refused a change of its remedies)
    state['flag_history'] = flag_history(ckpt.get('flag_history', {}), flags, vars(args), ckpt['epoch'])
    if state['flag_history']:
        print(history_line(state['flag_history'], vars(args)))
    return ckpt['epoch'], ckpt['best_acc1']
