# Put this folder first on PYTHONPATH and set ILA_TEST_FULL_DISK to run a script on a "full disk":
# with ILA_TEST_FULL_DISK=1 every os.fsync (the last step of an atomic checkpoint write) fails with ENOSPC;
# with ILA_TEST_FULL_DISK=write every torch.save file fails with ENOSPC after its first writes, as on a disk
# that fills up during the write (torch then raises a RuntimeError of its own, the OSError behind it);
# with ILA_TEST_FULL_DISK=gone the first checkpoint write finds LOG/checkpoints removed (by another hand).
import errno
import os


class FillsUp:
    """A file whose writes fail with ENOSPC after the first ``writes``."""

    def __init__(self, file, writes=3):
        self.file, self.writes = file, writes

    def write(self, data):
        self.writes -= 1
        if self.writes < 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return self.file.write(data)

    def flush(self):
        self.file.flush()


_MODE = os.environ.get("ILA_TEST_FULL_DISK")

if _MODE == "1":
    def _full_disk_fsync(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    os.fsync = _full_disk_fsync
elif _MODE == "write":
    import torch

    _save = torch.save

    def _save_on_a_filling_disk(obj, f, *args, **kwargs):
        return _save(obj, FillsUp(f) if hasattr(f, "write") else f, *args, **kwargs)

    torch.save = _save_on_a_filling_disk
elif _MODE == "gone":
    import shutil
    import tempfile

    _mkstemp = tempfile.mkstemp

    def _mkstemp_after_the_folder_went(*args, dir=None, **kwargs):
        if dir is not None and os.path.basename(dir) == "checkpoints":
            shutil.rmtree(dir, ignore_errors=True)
        return _mkstemp(*args, dir=dir, **kwargs)

    tempfile.mkstemp = _mkstemp_after_the_folder_went
