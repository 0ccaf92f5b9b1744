"""Run directory layout and a tee of stdout/stderr into a log file."""
import os
import sys
import time
from typing import Optional, TextIO

__all__ = ["TextLogger", "CompleteLogger"]


class TextLogger:
    """A stream that writes to ``stream`` and to the file ``filename`` (appending), flushing
    both on every write so a killed run keeps its log. Other attributes (``isatty``,
    ``fileno``, ``encoding``…) come from ``stream``.

    Args:
        filename (str): log file path
        stream (file-like, optional): the terminal stream to keep writing to. Default: ``sys.stdout``
        log (file-like, optional): an already opened log file to share instead of opening ``filename``
    """

    def __init__(self, filename: str, stream: Optional[TextIO] = None, log: Optional[TextIO] = None):
        self.terminal = sys.stdout if stream is None else stream
        self.log = open(filename, "a") if log is None else log

    def write(self, message: str) -> int:
        self.terminal.write(message)
        if not self.log.closed:
            self.log.write(message)
        self.flush()
        return len(message)

    def flush(self):
        self.terminal.flush()
        if not self.log.closed:
            self.log.flush()

    def __getattr__(self, name):
        # only reached for attributes not defined here; guard against recursion
        # before __init__ has set ``terminal`` (e.g. while copying)
        if name == "terminal":
            raise AttributeError(name)
        return getattr(self.terminal, name)


class CompleteLogger:
    """Sets up a run directory and tees stdout and stderr into a log file inside it.

    Layout::

        root/{phase}-{YYYY-mm-dd-HH_MM_SS}.txt   everything printed
        root/checkpoints/{name}.pth              see get_checkpoint_path
        root/visualize/{filename}                see get_image_path

    Args:
        root (str): run directory (created if missing)
        phase (str, optional): ``'train'``, ``'test'`` or ``'analysis'``; prefixes the log file. Default: ``'train'``

    Call :meth:`close` at the end to restore ``sys.stdout``/``sys.stderr`` and close the file.
    """

    def __init__(self, root: str, phase: str = "train"):
        self.root = root
        self.phase = phase
        self.visualize_directory = os.path.join(root, "visualize")
        self.checkpoint_directory = os.path.join(root, "checkpoints")
        os.makedirs(self.visualize_directory, exist_ok=True)
        os.makedirs(self.checkpoint_directory, exist_ok=True)

        now = time.strftime("%Y-%m-%d-%H_%M_%S", time.localtime(time.time()))
        self.log_filename = os.path.join(root, "{}-{}.txt".format(phase, now))
        self._stdout, self._stderr = sys.stdout, sys.stderr
        self.logger = TextLogger(self.log_filename, stream=self._stdout)
        # stderr keeps its own terminal stream but shares the one log file
        self._err_logger = TextLogger(self.log_filename, stream=self._stderr, log=self.logger.log)
        sys.stdout = self.logger
        sys.stderr = self._err_logger

    def get_checkpoint_path(self, name: str) -> str:
        """``root/checkpoints/{name}.pth``, e.g. ``name='best'``."""
        return os.path.join(self.checkpoint_directory, "{}.pth".format(name))

    def get_image_path(self, filename: str) -> str:
        """``root/visualize/{filename}``."""
        return os.path.join(self.visualize_directory, filename)

    def close(self):
        """Restore the original streams (if still ours) and close the log file."""
        if sys.stdout is self.logger:
            sys.stdout = self._stdout
        if sys.stderr is self._err_logger:
            sys.stderr = self._stderr
        self.logger.log.close()
