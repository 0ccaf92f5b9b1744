"""What a run's logged flags mean, readable without torch (so that reading logs into tables does not
import it): the ILA flags added after the first release, the ``--arch`` values that are tllib's
ResNets, and the lines that the engine prints and the log readers look for."""

import re
from typing import Dict, Optional

__all__ = ["FLAGS_ADDED_LATER", "FOLLOWED_BEFORE", "with_flags_added_later", "TLLIB_RESNETS", "HISTORY_PREFIX",
           "RESUMED_PREFIX", "METHOD_PREFIX", "is_ila_term_flag", "ILA_SUMMARY", "read_ila_summary", "comparable"]

#: how a resumed run's log says so (``=> resumed from PATH: epoch E, iteration I, best_acc1 A``)
RESUMED_PREFIX = "=> resumed from "

#: the line naming the method a log's run trained (``method: cdan``): what ``python -m ila_tllib.tables`` files
#: it under
METHOD_PREFIX = "method: "

#: the log line that sums up ILA's decisions over an epoch's batches (``ila_tllib.engine.ila_term``); each
#: value may be ``n/a``, where no batch gave it (no kept target, no +1 pair...). Written and read only here
ILA_SUMMARY = ("ILA: {empty} of {batches} batches had nothing to contrast; pseudo-label precision {precision_kept} "
               "kept / {precision_all} all, ratio AUC {auc}, kept {kept} targets per batch, wrong +1 affinities "
               "{wrong_positive}, weight {weight}")


def _fields_read(template: str) -> "re.Pattern":
    """A pattern matching ``template`` with each ``{name}`` read as a group of that name: a number (with
    ``%`` for a share) or ``n/a``."""
    parts = re.split(r"\{(\w+)\}", template)     # literal, name, literal, name, ...
    return re.compile("".join(re.escape(part) if i % 2 == 0 else rf"(?P<{part}>[\d.]+%?|n/a)"
                              for i, part in enumerate(parts)) + r"\s*$")


_ILA_SUMMARY_LINE = _fields_read(ILA_SUMMARY)


def read_ila_summary(line: str) -> Optional[Dict[str, Optional[float]]]:
    """The values of an :data:`ILA_SUMMARY` line (percentages as numbers, ``n/a`` as None), else None."""
    found = _ILA_SUMMARY_LINE.match(line)
    if found is None:
        return None
    return {name: None if value == "n/a" else float(value.rstrip("%")) for name, value in found.groupdict().items()}


#: the log line of a run resumed with other values of flags a resume may change (``--lr`` ...): every value
#: each had (``flags over the run: --lr 0.01 -> 0.005``); ``python -m ila_tllib.tables`` gives it its own row
HISTORY_PREFIX = "flags over the run: "

#: ILA flags added after the first release -> the value that means "off", the behaviour runs had before them:
#: a log or a resume checkpoint written without the flag reads as this value (a flag missing here would file
#: the runs before it with the runs that set it: the tables split rows only on flags every run logged)
FLAGS_ADDED_LATER = {"ila_source_bank": 0, "ila_mining_ema": 0.0, "ila_mining_average": "network",
                     "ila_ratio_terms": "top-m", "ila_bank_anchors": False, "ila_detach_source": False,
                     "ila_source_sampling": "balanced", "ila_spectral_form": "bsp",
                     "ila_mining_similarity": "inverse_euclidean", "ila_spectral_schedule": "constant",
                     "ila_spectral_domains": "both", "ila_spectral_penalty": 0.0, "ila_bn_statistics": "all",
                     "ila_features": "bottleneck"}     # MDD's own: where ILA reads its features

#: flags added later whose value, before them, was another flag's: ILA mined with its own --similarity
#: (the value in FLAGS_ADDED_LATER is for a run that logged neither)
FOLLOWED_BEFORE = {"ila_mining_similarity": "similarity"}


def comparable(value):
    """A flag's value as two runs' values are compared (hashable: a table's key): a list and a tuple of the
    same values are the same value, as argparse gives a tuple default and a list where the flag is typed."""
    return tuple(map(comparable, value)) if isinstance(value, (list, tuple)) else value


def with_flags_added_later(flags: Dict[str, object]) -> Dict[str, object]:
    """A run's logged or saved ``flags``, completed with the value of each flag added after they were
    written: the behaviour the run had."""
    before = {dest: flags.get(FOLLOWED_BEFORE.get(dest), off) for dest, off in FLAGS_ADDED_LATER.items()}
    return {**before, **flags}


#: the flags of ILA's term without the ``ila_`` prefix (the paper's names): with ILA off (``--ila-trade-off 0``)
#: they, and every ``ila_*`` flag, change nothing
_ILA_TERM_FLAGS = {"k", "mu", "samples_per_class", "classes_per_batch", "similarity", "pseudo_label", "metric_loss"}


def is_ila_term_flag(dest: str) -> bool:
    """Whether ``dest`` shapes only ILA's term (a baseline run is the same run whatever its value). Not
    ``--balanced-source`` nor ``--pretrain-iters``: they change a baseline's training too."""
    return dest.startswith("ila_") or dest in _ILA_TERM_FLAGS


#: tllib's ResNets (``tllib.vision.models``) and the torchvision weight enum of each.
TLLIB_RESNETS = {
    "resnet18": "ResNet18_Weights", "resnet34": "ResNet34_Weights", "resnet50": "ResNet50_Weights",
    "resnet101": "ResNet101_Weights", "resnet152": "ResNet152_Weights",
    "resnext50_32x4d": "ResNeXt50_32X4D_Weights", "resnext101_32x8d": "ResNeXt101_32X8D_Weights",
    "wide_resnet50_2": "Wide_ResNet50_2_Weights", "wide_resnet101_2": "Wide_ResNet101_2_Weights",
}
