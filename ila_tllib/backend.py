"""Where the tllib pieces come from: an installed tllib (0.4) or :mod:`ila_tllib.standalone`.

Everything else in ``ila_tllib`` and its scripts takes the shared pieces from here, so one place
decides, from one table (:data:`PIECES`: name → tllib module and attribute; the standalone piece has
the same name). The table includes the datasets of tllib's adaptation scripts: ``-d Office31`` is
tllib's ``Office31`` when tllib imports (its archives fetched from tllib's addresses by
:mod:`ila_tllib.datasets`, staged, before it reads them), else ours in tllib's layout. Nothing happens at
import: the choice is made the first time a piece (or
:data:`BACKEND`, :func:`describe`) is asked for. ``ILA_TLLIB_BACKEND`` then selects:

- ``auto`` (default): tllib if its needed submodules import, else the standalone copies;
- ``tllib``: tllib or an :class:`ImportError` that says why not;
- ``standalone``: never touch tllib.

On the current stack tllib 0.4 needs three symbols that torch, torchvision and numpy have
since removed; :func:`restore_removed_symbols` puts back exactly those, each only if absent,
and only when tllib is about to be imported. tllib's own ``__init__`` (which imports every
sub-package, ``tllib.ranking`` and its numba dependency included) is not run: the package is
registered from its location and only the submodules in the table are imported; those of
:data:`ON_FIRST_USE` (tllib's t-SNE, whose scikit-learn and matplotlib take seconds to import) only when
first asked for, so that training and testing do not pay for the analysis phase.

The run's output never goes through tllib's ``CompleteLogger`` (it closes the real stdout, see
:mod:`ila_tllib.engine.output`).
"""
import importlib
import importlib.util
import os
import re
import sys
import typing
from typing import Dict, List, Optional, Tuple

from . import standalone

ENV_VAR = "ILA_TLLIB_BACKEND"

# public name -> (tllib module, attribute there; None means the module itself)
_TLLIB_SOURCES: Dict[str, Tuple[str, Optional[str]]] = {
    "WarmStartGradientReverseLayer": ("tllib.modules.grl", "WarmStartGradientReverseLayer"),
    "GradientReverseLayer": ("tllib.modules.grl", "GradientReverseLayer"),
    "GradientReverseFunction": ("tllib.modules.grl", "GradientReverseFunction"),
    "DomainDiscriminator": ("tllib.modules.domain_discriminator", "DomainDiscriminator"),
    "DomainAdversarialLoss": ("tllib.alignment.dann", "DomainAdversarialLoss"),
    "ConditionalDomainAdversarialLoss": ("tllib.alignment.cdan", "ConditionalDomainAdversarialLoss"),
    "Classifier": ("tllib.modules.classifier", "Classifier"),
    "ImageClassifier": ("tllib.alignment.dann", "ImageClassifier"),
    "ForeverDataIterator": ("tllib.utils.data", "ForeverDataIterator"),
    "AverageMeter": ("tllib.utils.meter", "AverageMeter"),
    "ProgressMeter": ("tllib.utils.meter", "ProgressMeter"),
    "accuracy": ("tllib.utils.metric", "accuracy"),
    "ConfusionMatrix": ("tllib.utils.metric", "ConfusionMatrix"),
    "collect_feature": ("tllib.utils.analysis", "collect_feature"),
    "tsne": ("tllib.utils.analysis.tsne", None),
    "a_distance": ("tllib.utils.analysis.a_distance", None),
    "lenet": ("tllib.vision.models.digits", "lenet"),
    "dtn": ("tllib.vision.models.digits", "dtn"),
    "MarginDisparityDiscrepancy": ("tllib.alignment.mdd", "ClassificationMarginDisparityDiscrepancy"),
    "MDDClassifier": ("tllib.alignment.mdd", "ImageClassifier"),
    "BatchSpectralPenalizationLoss": ("tllib.alignment.bsp", "BatchSpectralPenalizationLoss"),
    "BSPClassifier": ("tllib.alignment.bsp", "ImageClassifier"),
    # the datasets of tllib's adaptation scripts; -d names map to these
    **{name: ("tllib.vision.datasets." + module, name) for name, module in (
        ("Office31", "office31"), ("OfficeHome", "officehome"), ("VisDA2017", "visda2017"),
        ("DomainNet", "domainnet"), ("OfficeCaltech", "officecaltech"), ("PACS", "pacs"),
        ("ImageNetR", "imagenet_r"), ("ImageNetSketch", "imagenet_sketch"),
        ("MNIST", "digits"), ("USPS", "digits"), ("SVHN", "digits"),
        ("MNISTRGB", "digits"), ("USPSRGB", "digits"), ("SVHNRGB", "digits"))},
}
PIECES: Tuple[str, ...] = tuple(_TLLIB_SOURCES)
#: tllib's pieces that need source and target batches of one size -> why; the standalone ones take any sizes
#: and equal tllib's when the sizes agree
EQUAL_BATCHES_ONLY = {
    "DomainAdversarialLoss": "tllib's halves the joint batch",
    "MarginDisparityDiscrepancy": "tllib's adds the per-sample source and target terms",
}
#: tllib's pieces that need more samples than a small run may give -> (the fewest they take, why); the
#: standalone ones take any number (its t-SNE lowers the perplexity for a small set)
FEWEST_SAMPLES = {"tsne": (31, "tllib's keeps scikit-learn's perplexity of 30, which needs more samples")}
#: pieces only ``--phase analysis`` uses, imported from tllib when first looked up (their imports, scikit-learn
#: and matplotlib, are requirements of this package, so the choice of backend does not hang on them)
ON_FIRST_USE = frozenset({"tsne"})

__all__ = ["BACKEND", "ENV_VAR", "ON_FIRST_USE", "PIECES", "EQUAL_BATCHES_ONLY", "FEWEST_SAMPLES", "describe",
           "for_batches", "for_samples",
           "load_tllib", "restore_removed_symbols", "standalone", "BackendChoiceError", "TllibUnavailableError",
           *PIECES]


def restore_removed_symbols() -> List[str]:
    """Put back, only where absent, the three symbols tllib 0.4 imports or calls:
    ``torch.utils.data.dataset.T_co``, ``torchvision.models.resnet.model_urls`` and ``numpy.float``.

    Returns:
        the dotted names actually restored (empty when nothing was missing).
    """
    restored = []
    import torch.utils.data.dataset as dataset_module
    if not hasattr(dataset_module, "T_co"):
        dataset_module.T_co = typing.TypeVar("T_co", covariant=True)
        restored.append("torch.utils.data.dataset.T_co")

    try:
        import torchvision.models as tv_models
        import torchvision.models.resnet as resnet_module
    except ImportError:  # no torchvision: tllib.vision fails on its own, nothing to restore
        resnet_module = None
    if resnet_module is not None and not hasattr(resnet_module, "model_urls"):
        from .models import TLLIB_RESNETS   # the V1 URLs are those tllib's tables used
        urls = {}
        for arch, enum_name in TLLIB_RESNETS.items():
            weights = getattr(tv_models, enum_name, None)
            if weights is not None and hasattr(weights, "IMAGENET1K_V1"):
                urls[arch] = weights.IMAGENET1K_V1.url
        resnet_module.model_urls = urls
        restored.append("torchvision.models.resnet.model_urls")

    import numpy
    if not hasattr(numpy, "float"):
        numpy.float = float
        restored.append("numpy.float")
    return restored


def _register_tllib_package():
    """Make ``tllib`` importable as a package without executing its ``__init__``.

    Returns the package module (the real one if it was imported already).
    """
    if "tllib" in sys.modules:
        return sys.modules["tllib"]
    spec = importlib.util.find_spec("tllib")
    if spec is None or spec.submodule_search_locations is None:
        raise ModuleNotFoundError("No module named 'tllib'", name="tllib")
    package = importlib.util.module_from_spec(spec)  # sets __path__, __spec__, __file__; runs nothing
    package.__version__ = _read_version(spec)
    sys.modules["tllib"] = package
    return package


def _read_version(spec) -> str:
    try:
        from importlib.metadata import version
        return version("tllib")
    except Exception:
        pass
    try:  # the version string in tllib/__init__.py, read as text
        with open(spec.origin) as f:
            found = re.search(r"__version__\s*=\s*['\"]([^'\"]+)['\"]", f.read())
        return found.group(1) if found else "unknown version"
    except Exception:
        return "unknown version"


def _import_piece(name: str) -> object:
    module_name, attribute = _TLLIB_SOURCES[name]
    module = importlib.import_module(module_name)
    return module if attribute is None else getattr(module, attribute)


class _TllibPieces(dict):
    """tllib's pieces by name; a piece of :data:`ON_FIRST_USE` is imported when it is first looked up."""

    def __missing__(self, name: str) -> object:
        if name not in ON_FIRST_USE:
            raise KeyError(name)
        self[name] = piece = _import_piece(name)
        return piece


def load_tllib() -> Dict[str, object]:
    """tllib's versions of :data:`PIECES` by name, whatever :data:`BACKEND` is (for parity checks).

    Raises:
        ImportError (or whatever tllib's import raised) when tllib is not importable.
    """
    return _import_tllib()[0]


def _import_tllib() -> Tuple[Dict[str, object], object]:
    """Import the tllib pieces; on failure, leave ``sys.modules`` as it was and raise."""
    before = {name for name in sys.modules if name == "tllib" or name.startswith("tllib.")}
    try:
        package = _register_tllib_package()
        restore_removed_symbols()
        pieces = _TllibPieces((name, _import_piece(name)) for name in PIECES if name not in ON_FIRST_USE)
        return pieces, package
    except BaseException:
        for name in [n for n in sys.modules if (n == "tllib" or n.startswith("tllib.")) and n not in before]:
            del sys.modules[name]
        raise


def _choose() -> Tuple[str, Dict[str, object], str]:
    """Return (backend, pieces, description)."""
    choice = (os.environ.get(ENV_VAR, "auto") or "auto").strip().lower()
    if choice not in ("auto", "tllib", "standalone"):
        raise BackendChoiceError("{}={!r}: expected 'auto', 'tllib' or 'standalone'".format(ENV_VAR, choice))

    if choice != "standalone":
        try:
            pieces, package = _import_tllib()
        except Exception as error:
            detail = str(error) if isinstance(error, ImportError) else "{}: {}".format(type(error).__name__, error)
            if choice == "tllib":
                raise TllibUnavailableError("{}=tllib but tllib is not importable: {}; install it (README) or "
                                            "unset the variable".format(ENV_VAR, detail)) from error
            reason = "tllib not importable: {}".format(detail)
        else:
            location = os.path.dirname(getattr(package, "__file__", None) or list(package.__path__)[0])
            return "tllib", pieces, "tllib pieces: tllib {} at {}".format(
                getattr(package, "__version__", "unknown version"), location)
    else:
        reason = "forced by {}=standalone".format(ENV_VAR)

    pieces = {name: getattr(standalone, name) for name in _TLLIB_SOURCES}
    return "standalone", pieces, "tllib pieces: standalone (ila_tllib.standalone; {})".format(reason)


class BackendChoiceError(ValueError):
    """``ILA_TLLIB_BACKEND`` holds something other than auto, tllib or standalone."""


class TllibUnavailableError(ImportError):
    """``ILA_TLLIB_BACKEND=tllib`` but tllib does not import."""


_chosen: Optional[Tuple[str, Dict[str, object], str]] = None


def _choice() -> Tuple[str, Dict[str, object], str]:
    global _chosen
    if _chosen is None:
        _chosen = _choose()
    return _chosen


def describe() -> str:
    """One line for the run log saying where the tllib pieces come from."""
    return _choice()[2]


def for_batches(name: str, source_size: int, target_size: int) -> object:
    """Piece ``name`` for source and target batches of these sizes: the chosen one, or the standalone one
    where the chosen one is tllib's, needs batches of one size (:data:`EQUAL_BATCHES_ONLY`) and they differ;
    the run's output then says so."""
    piece, own = _choice()[1][name], getattr(standalone, name)
    if source_size != target_size and name in EQUAL_BATCHES_ONLY and piece is not own:
        print(f"{name}: the standalone one, as the source batch ({source_size}) and the target batch "
              f"({target_size}) differ ({EQUAL_BATCHES_ONLY[name]})")
        return own
    return piece


def for_samples(name: str, samples: int) -> object:
    """Piece ``name`` for ``samples`` inputs: the chosen one, or the standalone one where the chosen one is
    tllib's and takes more (:data:`FEWEST_SAMPLES`); the run's output then says so."""
    piece, own = _choice()[1][name], getattr(standalone, name)
    if name in FEWEST_SAMPLES and samples < FEWEST_SAMPLES[name][0] and piece is not own:
        print(f"{name}: the standalone one, as {samples} samples are fewer than {FEWEST_SAMPLES[name][0]} "
              f"({FEWEST_SAMPLES[name][1]})")
        return own
    return piece


def __getattr__(name: str):
    # PEP 562: pieces and BACKEND are looked up (and tllib imported) on first use, not at import
    if name == "BACKEND":
        return _choice()[0]
    if name in _TLLIB_SOURCES:
        return _choice()[1][name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
