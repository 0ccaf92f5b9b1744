"""RunOutput, the one owner of stdout and stderr during a run (in-process: the streams are swapped)."""
import io
import os
import sys

from ila_tllib.engine.output import RunOutput, Tee


class FullDiskLog(io.StringIO):
    name = "LOG/train.txt"

    def write(self, text):
        raise OSError(28, "No space left on device")


def test_output_reaches_terminal_and_log_and_close_keeps_the_terminal(tmp_path, capsys):
    output = RunOutput(str(tmp_path), "train")
    print("to stdout")
    print("error: to stderr", file=sys.stderr)
    output.close()
    print("after close")   # the real streams are back and still open
    captured = capsys.readouterr()
    assert captured.out == "to stdout\nafter close\n" and captured.err == "error: to stderr\n"
    (log,) = [name for name in os.listdir(tmp_path) if name.startswith("train-")]
    assert open(tmp_path / log).read() == "to stdout\nerror: to stderr\n"


def test_a_log_that_cannot_be_written_leaves_the_terminal_going():
    terminal = io.StringIO()
    tee = Tee(terminal, FullDiskLog())
    tee.write("epoch 1\n")
    tee.write("error: something\n")
    assert terminal.getvalue() == ("epoch 1\nnote: cannot write the log file LOG/train.txt (No space left on "
                                   "device); the output continues on the terminal only\nerror: something\n")
