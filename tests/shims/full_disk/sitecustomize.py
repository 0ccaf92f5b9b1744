# Put this folder first on PYTHONPATH and set ILA_TEST_FULL_DISK=1 to run a script on a "full disk":
# every os.fsync (the last step of an atomic checkpoint write) fails with ENOSPC, as on a real full disk.
import errno
import os

if os.environ.get("ILA_TEST_FULL_DISK"):
    def _full_disk_fsync(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    os.fsync = _full_disk_fsync
