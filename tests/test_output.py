"""RunOutput, the one owner of stdout and stderr during a run (in-process: the streams are swapped)."""
import io
import os
import sys

from ila_tllib.engine.output import RunOutput, Tee


class FullDiskLog(io.StringIO):
    name = "LOG/train.txt"

    def write(self, text):
        raise OSError(28, "No space left on device")


class Recorder(io.StringIO):
    closed_by_someone = False

    def close(self):
        Recorder.closed_by_someone = True
        super().close()


def test_output_reaches_terminal_and_log_and_close_keeps_the_terminal(tmp_path, monkeypatch):
    out, err = Recorder(), Recorder()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    output = RunOutput(str(tmp_path), "train")
    print("to stdout")
    print("to stderr", file=sys.stderr)
    assert open(output.log_filename).read() == "to stdout\nto stderr\n"     # flushed at every write
    output.close()
    assert sys.stdout is out and sys.stderr is err and not Recorder.closed_by_someone
    assert out.getvalue() == "to stdout\n" and err.getvalue() == "to stderr\n"
    name = os.path.basename(output.log_filename)
    assert name.startswith("train-") and len(name) == len("train-2024-01-31-12_00_00.txt")
    print("after close reaches the terminal only")
    assert out.getvalue().endswith("after close reaches the terminal only\n")


def test_a_log_that_cannot_be_written_leaves_the_terminal_going():
    terminal = io.StringIO()
    tee = Tee(terminal, FullDiskLog())
    tee.write("epoch 1\n")
    tee.write("error: something\n")
    assert terminal.getvalue() == ("epoch 1\nnote: cannot write the log file LOG/train.txt (No space left on "
                                   "device); the output continues on the terminal only\nerror: something\n")


def test_a_file_name_that_is_not_valid_text_is_written_escaped(tmp_path, monkeypatch):
    # os.listdir gives a name holding byte 0xe9 (Latin-1 é) as the lone surrogate \udce9: a message naming it
    # must reach a strict UTF-8 terminal and the log, not end the run in a UnicodeEncodeError
    terminal = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict", write_through=True)
    monkeypatch.setattr(sys, "stdout", terminal)
    output = RunOutput(str(tmp_path), "train")
    name = os.fsdecode(b"caf\xe9.png")
    print(f"error: cannot read image {name}")
    print("the run goes on")
    output.close()
    expected = "error: cannot read image caf\\udce9.png\nthe run goes on\n"
    assert open(output.log_filename, encoding="utf-8").read() == expected
    assert terminal.buffer.getvalue().decode("utf-8") == expected
