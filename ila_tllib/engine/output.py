"""The one owner of the process's stdout and stderr during a run.

Everything printed goes to the terminal (or pipe) and into ``LOG/{phase}-{YYYY-mm-dd-HH_MM_SS}.txt``,
tllib's log layout. Unlike tllib's ``CompleteLogger`` (whose ``close`` closes the real stdout, so that
Python exits 120 and later messages are lost), this never closes a stream it did not open: ``close``
puts the original streams back and closes the log file only. stderr stays stderr (tllib folds it into
stdout); both reach the one log file. On processes other than the first under torchrun, stdout is
silenced and stderr kept, so every process's errors still reach the terminal.
"""
import contextlib
import io
import os
import sys
import time
from typing import Optional, TextIO

__all__ = ["RunOutput", "Tee"]


class Tee:
    """A stream that writes to ``stream`` and to the open file ``log``, flushing both on every write so
    that a killed run keeps its log. Other attributes (``isatty``, ``fileno``, ``encoding``...) are the
    stream's."""

    _told = set()   # the log files already told that the reader has gone

    def __init__(self, stream: TextIO, log: TextIO):
        self.terminal, self.log = stream, log
        self.log_failed = self.reader_gone = False

    def write(self, message: str) -> int:
        self._to_terminal(lambda: self._write_any_text(message))
        self._to_log(lambda: self.log.write(message))
        self.flush()
        return len(message)

    def flush(self):
        self._to_terminal(self.terminal.flush)
        self._to_log(self.log.flush)

    def _write_any_text(self, message: str):
        # a path that is not valid text in the file system's encoding (a file name's undecodable bytes) must
        # not turn the message naming it into a traceback: such characters are written escaped
        try:
            self.terminal.write(message)
        except UnicodeEncodeError:
            encoding = getattr(self.terminal, "encoding", None) or "utf-8"
            self.terminal.write(message.encode(encoding, "backslashreplace").decode(encoding))

    def _to_terminal(self, action):
        # a reader that went away (`| head`) must not stop the run: it goes on into the log file. The
        # stream is pointed at os.devnull, or its next flush (at exit too) would fail again
        if self.reader_gone:
            return
        try:
            action()
        except BrokenPipeError:
            self.reader_gone = True
            with contextlib.suppress(OSError, ValueError, AttributeError, io.UnsupportedOperation):
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, self.terminal.fileno())
                os.close(devnull)
            if self.log.name not in Tee._told:   # once per file: with 2>&1 both streams lose their reader
                Tee._told.add(self.log.name)
                self._to_log(lambda: self.log.write("note: the output's reader has gone (a closed pipe); the run "
                                                    "goes on, its output into this file only\n"))

    def _to_log(self, action):
        # a log that cannot be written (a full disk) must not stop the run or hide its messages:
        # say so once on the terminal and go on there
        if self.log.closed or self.log_failed:
            return
        try:
            action()
        except OSError as e:
            self.log_failed = True
            self.terminal.write(f"note: cannot write the log file {self.log.name} ({e.strerror or e}); "
                                f"the output continues on the terminal only\n")

    def __getattr__(self, name):
        if name == "terminal":   # before __init__ (e.g. while copying): no recursion
            raise AttributeError(name)
        return getattr(self.terminal, name)


class RunOutput:
    """Tee stdout and stderr into a new log file in ``root``; :meth:`close` undoes it.

    Args:
        root (str, optional): the run folder; ``None`` writes no file and silences stdout (other ranks)
        phase (str): ``train`` | ``test`` | ``analysis``, the log file's prefix
    """

    def __init__(self, root: Optional[str], phase: str = "train"):
        self._stdout, self._stderr = sys.stdout, sys.stderr
        self._devnull = self.log = None
        self.log_filename = None
        if root is None:
            self._devnull = open(os.devnull, "w")
            sys.stdout = self._devnull
            return
        now = time.strftime("%Y-%m-%d-%H_%M_%S", time.localtime())
        self.log_filename = os.path.join(root, f"{phase}-{now}.txt")
        # an undecodable byte of a file name is written escaped (\udce9), not as a traceback
        self.log = open(self.log_filename, "a", encoding="utf-8", errors="backslashreplace")
        sys.stdout = Tee(self._stdout, self.log)
        sys.stderr = Tee(self._stderr, self.log)

    def close(self):
        """Flush, give the original streams back, close the log file (never the terminal)."""
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):   # a closed pipe downstream: nothing more to deliver
                pass
        sys.stdout, sys.stderr = self._stdout, self._stderr
        for own in (self.log, self._devnull):
            if own is not None:
                with contextlib.suppress(OSError):   # a full disk: the terminal had everything
                    own.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
