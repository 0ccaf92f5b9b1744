import os
import sys

import pytest

# the oracle, the helpers and the example scripts are imported by path, not installed
sys.path.insert(0, os.path.dirname(__file__))
from helpers import SCRIPTS, TLLIB, make_image_list  # noqa: E402

sys.path.insert(0, SCRIPTS)


@pytest.fixture(params=["standalone", "tllib"])
def backend(request):
    """Each script test that takes this runs once with the standalone pieces and once with tllib's
    (skipped where tllib is not installed)."""
    if request.param == "tllib" and not TLLIB:
        pytest.skip("tllib is not installed")
    return request.param


@pytest.fixture(scope="session")
def tl():
    """tllib's pieces by name, loaded as the backend loads them; skipped where tllib is not installed, an
    error where it is and cannot be loaded (the parity tests must not go quiet on a broken backend)."""
    if not TLLIB:
        pytest.skip("tllib is not installed")
    from ila_tllib import backend
    return backend.load_tllib()


def _force_backend(monkeypatch, name):
    from ila_tllib import backend
    monkeypatch.setenv(backend.ENV_VAR, name)
    monkeypatch.setattr(backend, "_chosen", None)   # chosen again, lazily, under the variable


@pytest.fixture
def standalone_pieces(monkeypatch):
    """In-process code takes ila_tllib.standalone's pieces (and datasets), whatever is installed."""
    _force_backend(monkeypatch, "standalone")


@pytest.fixture
def tllib_pieces(monkeypatch):
    """In-process code takes tllib's pieces (and datasets); skipped where tllib is not installed."""
    if not TLLIB:
        pytest.skip("tllib is not installed")
    _force_backend(monkeypatch, "tllib")


@pytest.fixture(scope="session")
def offline_digits(tmp_path_factory):
    """The offline digits (-d ImageList with domains mnist and uci, 120 images each), exported once."""
    from ila_tllib.datasets.offline_digits import export_offline_digits
    root = str(tmp_path_factory.mktemp("offline_digits") / "digits")
    export_offline_digits(root, limit_per_domain=120)
    return root


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    """A tiny generated image list (-d ImageList, domains src and tgt, 3 classes), one per test module."""
    return make_image_list(tmp_path_factory.mktemp("tiny"))
