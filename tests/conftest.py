import os
import sys

import pytest

# the oracle, the helpers and the example scripts are imported by path, not installed
sys.path.insert(0, os.path.dirname(__file__))
from helpers import SCRIPTS, TLLIB  # noqa: E402

sys.path.insert(0, SCRIPTS)


@pytest.fixture(params=["standalone", "tllib"])
def backend(request):
    """Each script test that takes this runs once with the standalone pieces and once with tllib's
    (skipped where tllib is not installed)."""
    if request.param == "tllib" and not TLLIB:
        pytest.skip("tllib is not installed")
    return request.param
