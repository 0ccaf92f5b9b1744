"""Shared by the script tests: tiny image lists, and running a script as a user does (a subprocess whose
output goes through pipes) with the tllib pieces a user would get."""
import contextlib
import functools
import glob
import http.server
import importlib.util
import os
import socket
import subprocess
import sys
import tarfile
import threading
import zipfile

import numpy as np
from PIL import Image

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = os.path.join(REPO, "examples", "domain_adaptation")
DIGIT_FLAGS = ["-a", "lenet", "--no-pool", "--scratch", "--train-resizing", "res.", "--val-resizing", "res.",
               "--resize-size", "28", "--no-hflip", "--norm-mean", "0.5", "--norm-std", "0.5", "-j", "0"]
# a folder whose ``tllib`` cannot be imported: put first on PYTHONPATH, it hides an installed tllib
HIDE_TLLIB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "shims", "no_tllib")
HIDE_TORCH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "shims", "no_torch")
# a sitecustomize that makes every os.fsync fail with ENOSPC when ILA_TEST_FULL_DISK is set
FULL_DISK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "shims", "full_disk")
# a sitecustomize whose first backward pass runs out of memory when ILA_TEST_OUT_OF_MEMORY is set
OUT_OF_MEMORY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "shims", "out_of_memory")


#: whether tllib is installed: its tests run then, and fail (not skip) if the backend cannot load it
TLLIB = importlib.util.find_spec("tllib") is not None


def make_image_list(root, classes=3, per_class=8, seed=0):
    """Two grey domains whose class c is a bright bar at row 4 + 8c; the target is inverted and noisier."""
    rng = np.random.default_rng(seed)
    os.makedirs(os.path.join(root, "image_list"), exist_ok=True)
    for domain, invert, noise in (("src", False, 20), ("tgt", True, 50)):
        lines = []
        for c in range(classes):
            for i in range(per_class):
                img = rng.normal(40, noise, (28, 28))
                img[4 + 8 * c:8 + 8 * c, 3:25] += 180
                img = np.clip(255 - img if invert else img, 0, 255).astype(np.uint8)
                rel = f"{domain}/{c}/{i}.png"
                os.makedirs(os.path.dirname(os.path.join(root, rel)), exist_ok=True)
                Image.fromarray(img, mode="L").save(os.path.join(root, rel))
                lines.append(f"{rel} {c}")
        with open(os.path.join(root, "image_list", f"{domain}.txt"), "w") as f:
            f.write("\n".join(lines) + "\n")
    return str(root)


def script_env(backend="standalone", **extra):
    """The environment of a script run: ``backend`` is 'standalone', 'tllib' (forced) or 'hidden'
    (tllib made unimportable, so 'auto' falls back as on a machine without it)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", **extra)
    env.pop("ILA_TLLIB_BACKEND", None)
    if backend == "hidden":
        env["PYTHONPATH"] = HIDE_TLLIB + os.pathsep + env.get("PYTHONPATH", "")
    elif backend is not None:
        env["ILA_TLLIB_BACKEND"] = backend
    return env


def as_torchrun(monkeypatch, processes=2):
    """Process 0's environment as torchrun sets it before the process group exists."""
    for name, value in (("WORLD_SIZE", str(processes)), ("RANK", "0"), ("LOCAL_RANK", "0"),
                        ("MASTER_ADDR", "127.0.0.1"), ("MASTER_PORT", "29500")):
        monkeypatch.setenv(name, value)


def env_without_torch():
    """The environment of a run on a machine without torch (tests/shims/no_torch first on PYTHONPATH)."""
    return dict(os.environ, PYTHONPATH=HIDE_TORCH + os.pathsep + os.environ.get("PYTHONPATH", ""))


def load_benchmark(name):
    """``benchmarks/<name>.py`` as a module: the benchmarks are scripts, not a package."""
    spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, "benchmarks", name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_script(name, args, cwd=None, timeout=300, backend="standalone", **env):
    """``python SCRIPT ARGS`` with stdout and stderr through pipes; returns the CompletedProcess."""
    return subprocess.run([sys.executable, os.path.join(SCRIPTS, name)] + [str(a) for a in args],
                          capture_output=True, text=True, cwd=cwd, env=script_env(backend, **env), timeout=timeout)


def tiny_args(root, log, *extra):
    return [root, "-d", "ImageList", "-s", "src", "-t", "tgt", *DIGIT_FLAGS, "-b", "8", "--epochs", "2",
            "-i", "4", "-p", "2", "--samples-per-class", "2", "--k", "3", "--log", log, *extra]


def flag_error(argv):
    """The message ``ila_dann.py ARGV``'s flag check (check_args) stops with, in process: a script run costs
    seconds of imports for a check that ends before any data is read."""
    import pytest
    import ila_dann
    from ila_tllib.engine import UsageError, check_args, get_parser
    method = ila_dann.DANN()
    args = get_parser(method).parse_args([str(a) for a in argv])
    with pytest.raises(UsageError) as error:
        check_args(args, method)
    return str(error.value)


def only_log(log, phase):
    files = glob.glob(os.path.join(str(log), f"{phase}-*.txt"))
    assert len(files) == 1, files
    return open(files[0]).read()


@contextlib.contextmanager
def serve_directory(path):
    """An HTTP server on 127.0.0.1 serving the files under ``path``; yields its base URL."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(path)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield "http://127.0.0.1:{}".format(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def refused_url(path="x"):
    """A URL on 127.0.0.1 where nothing listens: fetching it fails at once, as offline."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return "http://127.0.0.1:{}/{}".format(port, path)


OFFICE31_FOLDERS = {"A": "amazon", "D": "dslr", "W": "webcam"}


def make_office31_archives(directory, per_domain=6, classes=(0, 1, 30)):
    """tllib's Office-31 archives in miniature: image_list.zip (image_list/<domain>.txt) and
    <domain>.tgz (<domain>/images/<class>/*.jpg), written into ``directory``. Returns the image lists."""
    from ila_tllib.datasets import Office31
    staging = os.path.join(str(directory), "staging")
    rng = np.random.default_rng(0)
    lists = {}
    for folder in OFFICE31_FOLDERS.values():
        lines = []
        for i in range(per_domain):
            label = classes[i % len(classes)]
            rel = "{}/images/{}/frame_{:04d}.jpg".format(folder, Office31.CLASSES[label], i)
            os.makedirs(os.path.dirname(os.path.join(staging, rel)), exist_ok=True)
            Image.fromarray(rng.integers(0, 255, (12, 10, 3), dtype=np.uint8)).save(os.path.join(staging, rel))
            lines.append("{} {}\n".format(rel, label))
        lists[folder] = lines
        with tarfile.open(os.path.join(str(directory), folder + ".tgz"), "w:gz") as archive:
            archive.add(os.path.join(staging, folder), folder)
    with zipfile.ZipFile(os.path.join(str(directory), "image_list.zip"), "w") as archive:
        for folder, lines in lists.items():
            archive.writestr("image_list/{}.txt".format(folder), "".join(lines))
    return lists


def checkpoint_files(log):
    """Every file under LOG/checkpoints (relative path -> bytes), to show that a run left them as they were."""
    files = {}
    for folder, _, names in os.walk(os.path.join(str(log), "checkpoints")):
        for name in names:
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                files[os.path.relpath(path, str(log))] = f.read()
    return files


def one_error(done, code):
    """The single ``error:`` line of a run that had to end with ``code``, after checking that nothing
    else went wrong: the exit code, no traceback anywhere on the pipes."""
    assert done.returncode == code, (done.returncode, done.stderr[-3000:])
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout, done.stderr[-3000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, done.stderr[-3000:]
    return errors[0]
