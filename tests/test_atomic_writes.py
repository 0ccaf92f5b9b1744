"""Checkpoints and figures are written atomically: an error mid-write leaves the old file and no debris."""
import os

import pytest
import torch

from ila_tllib.atomic import save_atomic, save_figure_atomic, write_atomic


def test_failed_write_keeps_the_old_file(tmp_path):
    path = str(tmp_path / "best.pth")
    save_atomic({"w": torch.ones(2)}, path)

    def half_then_crash(f):
        f.write(b"half a checkpoint")
        raise KeyboardInterrupt   # a kill arriving mid-write

    with pytest.raises(KeyboardInterrupt):
        write_atomic(path, half_then_crash)
    assert torch.equal(torch.load(path)["w"], torch.ones(2))
    assert os.listdir(tmp_path) == ["best.pth"]


def test_figure_format_follows_the_extension(tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    save_figure_atomic(fig, str(tmp_path / "a.png"))
    save_figure_atomic(fig, str(tmp_path / "a.pdf"))
    plt.close(fig)
    assert open(tmp_path / "a.png", "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert open(tmp_path / "a.pdf", "rb").read(5) == b"%PDF-"
    assert sorted(os.listdir(tmp_path)) == ["a.pdf", "a.png"]
    (tmp_path / "plain").write_bytes(b"")     # the mode a plain open gives, not mkstemp's private 0600
    assert os.stat(tmp_path / "a.png").st_mode == os.stat(tmp_path / "plain").st_mode


def test_full_disk_keeps_the_old_file_and_names_the_new_one(tmp_path, monkeypatch):
    import errno
    path = str(tmp_path / "latest.pth")
    save_atomic({"w": torch.ones(2)}, path)
    old = open(path, "rb").read()

    def full_disk(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError) as error:
        save_atomic({"w": torch.zeros(2)}, path)
    assert error.value.errno == errno.ENOSPC and error.value.filename == path
    assert open(path, "rb").read() == old
    assert os.listdir(tmp_path) == ["latest.pth"]


def test_a_disk_that_fills_during_torch_save_reports_the_os_error(tmp_path, monkeypatch):
    # a write failing after the first few makes torch's zip writer raise a RuntimeError of its own
    # ("unexpected pos"); the error a user can act on is the full disk behind it
    import errno
    path = str(tmp_path / "latest.pth")
    save_atomic({"w": torch.ones(2)}, path)
    old = open(path, "rb").read()
    real_save = torch.save
    FillsUp = _full_disk_shim().FillsUp

    with pytest.raises(RuntimeError):          # what torch itself raises: the case this guards against
        real_save({"w": torch.zeros(10000)}, FillsUp(open(tmp_path / "scratch", "wb")))
    monkeypatch.setattr(torch, "save", lambda obj, f: real_save(obj, FillsUp(f)))
    with pytest.raises(OSError) as error:
        save_atomic({"w": torch.zeros(10000)}, path)
    assert error.value.errno == errno.ENOSPC and error.value.filename == path
    assert open(path, "rb").read() == old
    assert sorted(os.listdir(tmp_path)) == ["latest.pth", "scratch"]


def _full_disk_shim():
    """The scripts' full-disk sitecustomize, as a module (inert without ILA_TEST_FULL_DISK)."""
    import importlib.util
    from helpers import FULL_DISK
    spec = importlib.util.spec_from_file_location("full_disk_shim", os.path.join(FULL_DISK, "sitecustomize.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
