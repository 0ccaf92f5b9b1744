"""The ``--log`` folder of a run: one live owner, nothing finished destroyed, checkpoints that load or
say why not, and the full state of an exact resume.

Layout (tllib's, plus ``resume.pth`` and the lock)::

    LOG/{phase}-{time}.txt           what the run printed (see :mod:`.output`)
    LOG/checkpoints/latest.pth       the classifier after the last epoch
    LOG/checkpoints/best.pth         the classifier of the best epoch
    LOG/checkpoints/resume.pth       everything --resume needs
    LOG/checkpoints/previous-<time>/ the checkpoints (and visualize/) of an earlier run, moved aside by a new one
    LOG/visualize/                   analysis figures
    LOG/.lock                        held while a run uses the folder
"""
import contextlib
import fcntl
import glob
import os
import random
import shutil
import time
from typing import Dict, Iterable, List, Optional, Tuple

import numpy as np
import torch
import torch.nn as nn

from ..torch_files import why_unreadable
from .errors import DivergenceError, UsageError

__all__ = ["RunDirectory", "CHECKPOINTS", "checkpoint_path", "load_file", "load_weights", "check_finite_state",
           "keep_tensors_in_state", "rng_state", "set_rng_state", "schedule_counters", "set_schedule_counters"]

#: the files a training run writes into LOG/checkpoints
CHECKPOINTS = ("latest", "best", "resume", "pretrain")
#: those every training run writes anew: set aside even when the run reads one (BSP's --pretrain may name
#: any checkpoint), so that nothing is overwritten
WRITTEN_BY_EVERY_RUN = ("latest", "best", "resume")


def checkpoint_path(args, name: str) -> str:
    """``--log``/checkpoints/``name``.pth: one of :data:`CHECKPOINTS`."""
    return os.path.join(args.log, 'checkpoints', f'{name}.pth')


class RunDirectory:
    """Claims ``root`` for one run (process 0 only).

    :meth:`open` creates the folders, takes ``root/.lock`` (a second run on the same folder gets a
    :class:`UsageError` naming the first one's process) and removes temporary files that a killed run
    left behind. :meth:`set_aside_finished` then moves an earlier run's checkpoints (and its analysis
    figures) into ``checkpoints/previous-<time>/`` so that nothing is overwritten: a new training run calls
    it once its data and model are built, so that a run stopped by bad input leaves them where they were.
    """

    def __init__(self, root: str, phase: str = "train", resume: bool = False):
        self.root, self.phase, self.resume = root, phase, resume
        self.set_aside = False   # whether an earlier run's checkpoints were set aside for this one
        self.accepted = False    # whether the run's inputs were all found good and its work began
        self.checkpoints = os.path.join(root, "checkpoints")
        self.visualize = os.path.join(root, "visualize")
        self._lock = None
        self.created: List[str] = []   # the folders open() made, parents first

    def path(self, name: str) -> str:
        return os.path.join(self.checkpoints, f"{name}.pth")

    def open(self) -> "RunDirectory":
        try:
            # tllib's logger also makes visualize/<phase>/ for the test and analysis phases
            by_phase = [] if self.phase == "train" else [os.path.join(self.visualize, self.phase)]
            missing, above = [], os.path.abspath(self.root)
            while not os.path.lexists(above) and os.path.dirname(above) != above:   # the folders above --log too
                missing.insert(0, above)
                above = os.path.dirname(above)
            for folder in missing[:-1] + [self.root, self.checkpoints, self.visualize] + by_phase:
                if not os.path.isdir(folder):
                    os.makedirs(folder)
                    self.created.append(folder)
            self._take_lock()
            removed = self._remove_stale_temporaries()
            self._probe_writable()
        except OSError as e:
            self.close()
            self.remove_empty_created()
            raise self._unwritable(e) from None
        except BaseException:
            self.close()
            self.remove_empty_created()
            raise
        self.notes = []
        if removed:
            self.notes.append(f"=> removed {removed} temporary file(s) an interrupted run left in {self.root}")
        return self

    def set_aside_finished(self, keep: Dict[str, str] = None) -> Optional[str]:
        """For a new training run (``phase='train'`` without ``resume``): move the checkpoints an earlier
        run left into ``checkpoints/previous-<time>/``, except the files of ``keep`` (path -> the flag that
        reads it: this run's input, which a rerun of the same command reads again); returns the lines that
        say where, or None. Called once the run's data and model are built: its inputs are accepted."""
        self.accepted = True
        if self.phase != "train" or self.resume:
            return None
        kept = {os.path.realpath(path): flag for path, flag in (keep or {}).items()}
        try:
            moved, stayed, figures_moved = self._move_finished_aside(kept)
        except OSError as e:
            raise self._unwritable(e) from None
        self.set_aside = True   # from here on the checkpoints in the folder are this run's
        figures = f" (its analysis figures to {os.path.join(moved, 'visualize')})" if figures_moved else ""
        lines = [f"=> an earlier run's checkpoints were moved to {moved}{figures}"] if moved else []
        lines += [f"=> {path} stays where it is: {kept[os.path.realpath(path)]} reads it" for path in stayed]
        return "\n".join(lines) or None

    def _unwritable(self, e: OSError) -> UsageError:
        where = e.filename or self.root
        if os.path.exists(self.root) and not os.path.isdir(self.root):
            return UsageError(f"--log {self.root} is a file, not a folder; choose another --log")
        blocking = where
        while blocking not in (self.root, "") and not os.path.lexists(blocking):
            blocking = os.path.dirname(blocking)
        if blocking != self.root and os.path.lexists(blocking) and not os.path.isdir(blocking):
            return UsageError(f"--log {self.root}: {blocking} is a file where the run keeps a folder; move it away "
                              f"or choose another --log")
        return UsageError(f"cannot write to --log {self.root}: {where}: {e.strerror or e}; "
                          f"make it writable or choose another --log")

    def remove_empty_created(self):
        """For a run stopped before it wrote anything there: remove the subfolders :meth:`open` made that are
        still empty, so that they do not read as an unfinished run's. The root stays, with the log that says
        why the run stopped."""
        for folder in reversed(self.created):
            if os.path.abspath(folder) == os.path.abspath(self.root):
                break                  # the root and the folders above it stay
            with contextlib.suppress(OSError):
                os.rmdir(folder)       # fails, and keeps it, when anything was written there

    def remove_refused(self, own_log: Optional[str]):
        """For a run refused for bad input before its inputs were accepted, in a folder it made (a mistyped
        --log, a --resume or --phase test with nothing to read): remove that folder, its own log and lock, and
        the folders above it made with it, as long as nothing else was written there; the error is on
        stderr. A run that began its work keeps its log whatever stopped it. Call before :meth:`close`, so that
        the lock is held until the folder is gone."""
        if self.accepted or not any(os.path.abspath(folder) == os.path.abspath(self.root) for folder in self.created):
            return
        lock = os.path.abspath(os.path.join(self.root, ".lock"))
        own = {lock} | ({os.path.abspath(own_log)} if own_log is not None else set())
        found = [os.path.abspath(os.path.join(folder, name)) for folder, _, names in os.walk(self.root)
                 for name in names]
        if any(path not in own for path in found):
            return                     # the run wrote more than its log: all of it stays
        found.sort(key=lambda path: path == lock)     # the lock last: a run that opens it anew keeps the folder
        with contextlib.suppress(OSError):
            for path in found:
                os.remove(path)
            for folder, _, _ in sorted(os.walk(self.root), key=lambda entry: -len(entry[0])):
                os.rmdir(folder)
            for folder in reversed(self.created):
                if os.path.isdir(folder):
                    os.rmdir(folder)   # the folders made above --log; fails where anything else is there

    def close(self):
        if self._lock is not None:
            self._lock.close()   # releases the lock
            self._lock = None

    def _take_lock(self):
        lock_file = os.path.join(self.root, ".lock")
        handle = open(lock_file, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "unknown process"
            handle.close()
            raise UsageError(f"--log {self.root} is in use by another run ({owner}); wait for it to end "
                             f"or choose another --log") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"process {os.getpid()}, phase {self.phase}, started {time.strftime('%Y-%m-%d %H:%M:%S')}")
        handle.flush()
        self._lock = handle

    def _remove_stale_temporaries(self) -> int:
        # under the lock no live run writes here, so every temporary file is a killed write's
        removed = 0
        for folder in (self.checkpoints, self.visualize):
            for path in glob.glob(os.path.join(glob.escape(folder), ".tmp-*")):
                try:
                    os.remove(path)
                    removed += 1
                except OSError:
                    if folder in self._written_folders():
                        raise
                    # a folder this phase only reads (test, analysis: checkpoints/) may be read-only
        return removed

    def _move_finished_aside(self, kept: Dict[str, str]) -> Tuple[Optional[str], List[str], bool]:
        found = [self.path(name) for name in CHECKPOINTS if os.path.exists(self.path(name))]
        stayed = [self.path(name) for name in CHECKPOINTS if name not in WRITTEN_BY_EVERY_RUN
                  and self.path(name) in found and os.path.realpath(self.path(name)) in kept]
        found = [path for path in found if path not in stayed]
        if not found:
            return None, stayed, False
        stamp = time.strftime("%Y-%m-%d-%H_%M_%S", time.localtime(max(os.path.getmtime(p) for p in found)))
        target = os.path.join(self.checkpoints, f"previous-{stamp}")
        suffix = 1
        while os.path.exists(target):
            target = os.path.join(self.checkpoints, f"previous-{stamp}-{suffix}")
            suffix += 1
        os.makedirs(target)
        for path in found:
            os.replace(path, os.path.join(target, os.path.basename(path)))
        # the earlier run's analysis figures go with its checkpoints: left in visualize/, they would read as
        # this run's until its own analysis overwrote them
        figures = [name for name in sorted(os.listdir(self.visualize)) if not name.startswith(".tmp-")] \
            if os.path.isdir(self.visualize) else []
        if figures:
            os.makedirs(os.path.join(target, "visualize"))
            for name in figures:   # shutil.move: visualize/ may be a link to another file system
                shutil.move(os.path.join(self.visualize, name), os.path.join(target, "visualize", name))
        return target, stayed, bool(figures)

    def _written_folders(self):
        """The folders this phase writes files into: test and analysis only read the checkpoints."""
        return (self.checkpoints, self.visualize) if self.phase == "train" else (self.visualize,)

    def _probe_writable(self):
        # found now, not after an epoch of training
        for folder in self._written_folders():
            probe = os.path.join(folder, f".tmp-probe-{os.getpid()}")
            try:
                with open(probe, "wb") as f:
                    f.write(b"0")
                os.remove(probe)
            except OSError as e:   # name the folder, not the probe
                raise OSError(e.errno, e.strerror, folder) from None


def load_file(path: str, what: str, fix: str, weights_only: bool = True):
    """``torch.load`` with one clear message for a missing, empty, truncated or foreign file; ``what``
    starts the message (e.g. ``--resume``)."""
    if os.path.isdir(path):
        raise UsageError(f"{what}: {path} is a folder: give the checkpoint file in it; {fix}")
    if not os.path.isfile(path):
        raise UsageError(f"{what}: no {path}; {fix}")
    try:
        return torch.load(path, map_location="cpu", weights_only=weights_only)
    except Exception as e:   # truncated zip, random bytes, pickle errors, EOF, other objects
        raise UsageError(f"{what}: {path} {why_unreadable(path, e)}: {fix}") from None


#: what tllib's ResNet backbones hold and ours do not: torchvision's ``fc`` layer, which they keep unused
TLLIB_UNUSED_WEIGHTS = ("backbone.fc.weight", "backbone.fc.bias")


def load_weights(model: nn.Module, path: str, what: str, fix: str):
    state = load_file(path, what, fix)
    if not isinstance(state, dict):
        raise UsageError(f"{path} holds a {type(state).__name__}, not a state_dict: {fix}")
    own = model.state_dict()
    # a checkpoint of tllib's own scripts (best.pth, BSP's pretrain.pth) loads: its unused layer is left out
    state = {k: v for k, v in state.items() if k in own or k not in TLLIB_UNUSED_WEIGHTS}
    mismatch = state_mismatch(own, state)
    try:
        if not mismatch:
            model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as e:   # the right names and shapes, but not tensors
        mismatch = str(e).strip().splitlines()[0][:200]
    if mismatch:
        raise UsageError(f"{what}: {path} does not fit this model ({mismatch}); it was written by another "
                         f"method's script or with another --arch, --bottleneck-dim or class count: {fix}")
    broken = first_non_finite(state)
    if broken is not None:
        raise UsageError(f"{what}: {path} holds non-finite values ({broken}), the weights of a diverged run: {fix}")


def state_mismatch(own: dict, state: dict) -> str:
    """What keeps ``state`` from loading into a model whose state_dict is ``own``, with one example of each
    kind of difference; empty when it loads."""
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    resized = [k for k in own if k in state and tuple(getattr(state[k], "shape", ())) != tuple(own[k].shape)]
    told = []
    if missing:
        told.append(f"{len(missing)} missing, e.g. {missing[0]}")
    if unexpected:
        told.append(f"{len(unexpected)} not in this model, e.g. {unexpected[0]}")
    if resized:
        k = resized[0]
        told.append(f"{len(resized)} of another shape, e.g. {k} {list(getattr(state[k], 'shape', ()))} "
                    f"(here {list(own[k].shape)})")
    return "; ".join(told)


def first_non_finite(state: dict) -> Optional[str]:
    """The name of the first floating-point tensor of ``state`` holding a NaN or an infinity, else None."""
    return next((name for name, tensor in state.items() if torch.is_tensor(tensor) and tensor.is_floating_point()
                 and not bool(torch.isfinite(tensor).all())), None)


def check_finite_state(modules: Dict[str, nn.Module], where: str, fix: str):
    """Raise :class:`DivergenceError` when a weight or a BatchNorm statistic is NaN or infinite; ``fix`` says
    what to change."""
    for owner, module in modules.items():
        name = first_non_finite(module.state_dict())
        if name is not None:
            raise DivergenceError(f"training diverged {where}: {owner} {name} holds non-finite values ({fix})")


def rng_state() -> dict:
    return {"torch": torch.get_rng_state(), "random": random.getstate(), "numpy": np.random.get_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def set_rng_state(state: dict):
    torch.set_rng_state(state["torch"])
    random.setstate(state["random"])
    np.random.set_state(state["numpy"])
    if state["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def keep_tensors_in_state(module: nn.Module) -> nn.Module:
    """Make every tensor a submodule holds as a plain attribute a buffer of that submodule.

    tllib's randomized multilinear map (CDAN ``-r``) draws :math:`R_f` and :math:`R_g` once and keeps them as
    plain tensors: outside the state dict, a resumed run drew new ones, and under torchrun without
    ``--seed`` every process drew its own. As buffers they are saved, follow ``.to(device)`` and are
    broadcast by DistributedDataParallel (the standalone map registers them so itself).
    """
    for sub in module.modules():
        for name, value in list(vars(sub).items()):
            if isinstance(value, torch.Tensor) and not isinstance(value, nn.Parameter):
                delattr(sub, name)
                sub.register_buffer(name, value)
    return module


def _counting_modules(modules: Dict[str, nn.Module]) -> Iterable:
    # warm-start gradient reversal layers count their calls; the count is state a resume needs
    for owner, module in modules.items():
        for name, sub in module.named_modules():
            if hasattr(sub, "iter_num"):
                yield f"{owner}.{name}", sub


def schedule_counters(modules: Dict[str, nn.Module]) -> Dict[str, int]:
    return {name: int(sub.iter_num) for name, sub in _counting_modules(modules)}


def set_schedule_counters(modules: Dict[str, nn.Module], counters: Dict[str, int]):
    for name, sub in _counting_modules(modules):
        sub.iter_num = counters[name]
