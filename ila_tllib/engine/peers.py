"""Under torchrun, one process's error stops every process, with its message and its exit code.

Without this, the other processes of a run wait forever in their next collective (NCCL) or die with a
``Connection closed by peer`` traceback (gloo), and the log file (written by process 0) never holds an
error that happened elsewhere. A process that stops on an error announces it (rank, exit code and
message) in the key-value store the processes met through, then exits. Every other process watches
that store from a thread and, once a process announced, prints ``error: process R stopped: MESSAGE``
and exits with the same code: at once from the thread (its main thread may be blocked in a collective
for good), or from its ``except`` when that collective failed first, or from its SIGTERM handler when
torchrun, which terminates the others as soon as one process exits, is quicker.
"""
import json
import os
import signal
import sys
import threading
import time
from datetime import timedelta
from typing import Callable, Optional, TypeVar

import torch
import torch.distributed as dist

from .. import distributed as dist_utils
from .errors import EXIT_INTERRUPTED, PeerStopped, UsageError

__all__ = ["PeerWatch", "agree", "main_process_first", "launched_processes"]

T = TypeVar("T")

_POLL_S = 0.05
_WAIT_POLL_S = 0.2   # mark_done / wait_done


#: what torchrun sets besides WORLD_SIZE, which the process group reads (``env://``)
_TORCHRUN_VARIABLES = ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def launched_processes() -> int:
    """The number of processes the run was started with: ``WORLD_SIZE`` as torchrun sets it, else 1. A
    variable left over in the shell (a number without torchrun's others, or not a number) is a
    :class:`UsageError` naming it, not a traceback from the process group."""
    value = os.environ.get('WORLD_SIZE', '1')
    try:
        processes = int(value)
    except ValueError:
        processes = 0
    if processes < 1:
        raise UsageError(f"WORLD_SIZE={value!r} is not a number of processes; unset it, or start the script "
                         f"with torchrun, which sets it")
    missing = [name for name in _TORCHRUN_VARIABLES if processes > 1 and name not in os.environ]
    if missing:
        raise UsageError(f"WORLD_SIZE={value} without {', '.join(missing)}: several processes are started by "
                         f"torchrun (torchrun --nproc_per_node {value} SCRIPT ...); unset WORLD_SIZE for one")
    return processes


class PeerWatch:
    """The watch over the other processes of a distributed run (see the module's docstring).

    The process calls :meth:`stopping` when it stops on its own error, :meth:`peer_stop` when an error
    may come from another process's end, and :meth:`close` at its end, whatever the end."""

    def __init__(self, store, rank: int):
        self.store, self.rank = store, rank
        attempt = os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')
        prefix = f"ila_tllib/stop/{attempt}/"
        self._count, self._first = prefix + "count", prefix + "first"
        self._done = f"ila_tllib/done/{attempt}/"
        self._lock = threading.RLock()     # re-entrant: the SIGTERM handler runs in the main thread
        self._settled = False              # this process's end is decided
        self._code: Optional[int] = None   # ...and the exit code it ends with, when it stops on an error
        self._stop = threading.Event()
        #: the line to print when another process stopped on Ctrl-C (process 0's ``interrupted: ...``); None:
        #: print nothing then (torchrun reports the interrupt), as for this process's own Ctrl-C
        self.describe_interrupt: Optional[Callable[[], str]] = None
        try:
            self._previous_handler = signal.signal(signal.SIGTERM, self._terminated)
        except ValueError:   # not the main thread: no handler of our own
            self._previous_handler = None
        self._thread = threading.Thread(target=self._watch, name="ila-tllib-peer-watch", daemon=True)
        self._thread.start()

    @classmethod
    def start(cls) -> Optional["PeerWatch"]:
        """A watch over the run's processes, or None for a single process or where the store the
        processes met through cannot be reached (the run then goes on without the watch)."""
        if not dist_utils.is_distributed():
            return None
        try:
            store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), is_master=False,
                                  timeout=timedelta(seconds=30))
        except (KeyError, ValueError, RuntimeError):
            return None
        return cls(store, dist_utils.rank())

    def _announcement(self) -> Optional[PeerStopped]:
        """Another process's announced stop, if any; None also where the store cannot be reached."""
        try:
            if not self.store.check([self._first]):
                return None
            found = json.loads(self.store.get(self._first).decode())
        except (RuntimeError, ValueError):   # the store went away: the run is ending anyway
            return None
        return None if found["rank"] == self.rank else PeerStopped(found["rank"], found["code"], found["message"])

    def _settle(self, stopped: Optional[PeerStopped]) -> bool:
        """Decide this process's end once: True for the caller that decided it."""
        with self._lock:
            if self._settled:
                return False
            self._settled = True
            if stopped is not None:
                self._code = stopped.code
            return True

    def _report_and_exit(self, stopped: PeerStopped):
        if stopped.code != EXIT_INTERRUPTED:
            print(f"error: {stopped}", file=sys.stderr)
        elif self.describe_interrupt is not None:   # an interrupt is not an error: said as this process's own
            print(self.describe_interrupt(), file=sys.stderr)
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        os._exit(stopped.code)

    def _watch(self):
        while not self._stop.wait(_POLL_S):
            stopped = self._announcement()
            if stopped is not None:
                if self._settle(stopped):
                    self._report_and_exit(stopped)
                return

    def _terminated(self, signum, frame):
        # torchrun terminates every process once one has exited: end with the code this process
        # settled on, or with the announced one; with neither, the signal keeps its usual meaning
        with self._lock:
            if self._code is None:
                stopped = self._announcement()
                if stopped is not None and self._settle(stopped):
                    self._report_and_exit(stopped)
            if self._code is not None:
                for stream in (sys.stdout, sys.stderr):
                    stream.flush()
                os._exit(self._code)
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    def peer_stop(self, wait: float) -> Optional[PeerStopped]:
        """Another process's announced stop (waiting up to ``wait`` seconds for one), now this
        process's to report; None when there is none."""
        for _ in range(max(1, int(wait / _POLL_S))):
            stopped = self._announcement()
            if stopped is not None:
                if self._settle(stopped):
                    return stopped
                self._stop.wait(5.0)   # the watcher is reporting it and ends the process
                return None
            self._stop.wait(_POLL_S)
        return None

    def stopping(self, code: int, message: str):
        """This process stops with ``code``: announce it, unless another process announced first."""
        with self._lock:
            self._settled = True
            if self._code is None:
                self._code = code
        try:
            if self.store.add(self._count, 1) == 1:
                self.store.set(self._first, json.dumps({"rank": self.rank, "code": code, "message": message}))
        except RuntimeError:   # the store went away: the others have ended already
            pass

    def mark_done(self, step: str):
        """Process 0 is through ``step``, well or not: the processes in :meth:`wait_done` go on."""
        try:
            self.store.set(self._done + step, "1")
        except RuntimeError:   # the store went away: the others have ended already
            pass

    def wait_done(self, step: str):
        """Wait, however long, until process 0 is through ``step``: outside any collective, so that no
        timeout of the process group (10 minutes under NCCL) cuts a long download short."""
        while True:
            try:
                if self.store.check([self._done + step]):
                    return
            except RuntimeError:   # the store went away: the collective that follows reports the end
                return
            time.sleep(_WAIT_POLL_S)

    def close(self):
        """The end of this process's run: stop watching; after a success give SIGTERM its handler back
        (after an error keep ours, which ends the process with the error's code, to the end)."""
        self._settle(None)
        self._stop.set()
        self._thread.join()
        if self._previous_handler is not None and self._code is None:
            signal.signal(signal.SIGTERM, self._previous_handler)


def agree(failure: Optional[Exception], peers: Optional[PeerWatch], fallback: Exception) -> Optional[Exception]:
    """Every process learns whether all of them got past a step: the error to raise here (this process's
    own ``failure``, else the failed process's from the watch, else ``fallback``), or None. Every
    process must call it, so that none is left waiting in the collective."""
    if dist_utils.is_distributed():
        ok = torch.tensor([0 if failure else 1], device=dist_utils._comm_device())
        dist.all_reduce(ok, op=dist.ReduceOp.MIN)
        if not ok.item() and failure is None:
            failure = (peers.peer_stop(wait=30.0) if peers is not None else None) or fallback
    return failure


def main_process_first(action: Callable[[], T], peers: Optional[PeerWatch], what: str,
                       others_too: bool = True) -> Optional[T]:
    """``action()`` on process 0, then, once it succeeded there, on the other processes (with
    ``others_too``; else they return None): a download or an export writes ROOT once, and the others read
    what process 0 wrote instead of writing it again over a folder being read; an analysis runs on process 0
    alone, and the others end with its outcome. When process 0 fails, every process raises its error (the
    others ``process 0 could not <what>`` where the watch has no message) and none runs ``action``.

    The others wait on the watch's store, which has no deadline; without a watch they wait in a collective,
    which ends at the process group's timeout."""
    result, failure = None, None
    if dist_utils.is_main_process():
        try:
            result = action()
        except Exception as e:   # any error: the other processes must not wait for process 0 below
            failure = e
        if peers is not None:
            peers.mark_done(what)
    elif peers is not None:
        peers.wait_done(what)
    failure = agree(failure, peers, UsageError(f"process 0 could not {what} (see its message)"))
    if failure is not None:
        raise failure
    if not dist_utils.is_main_process() and others_too:
        result = action()
    return result
