"""ila-tllib: ILA-DA (Instance-Level Affinity domain adaptation, CVPR 2021) as an extension of tllib.

The names below are loaded on first use, so that a reader of logs (``python -m ila_tllib.tables``, the
benchmarks' tables) does not pay for importing torch.
"""
import importlib

__version__ = "0.1.0"

#: public name -> the submodule that defines it
_EXPORTS = {
    **dict.fromkeys(["AffinityMiner", "MinedAffinity", "affinity_matrix", "keep_top_fraction"], "affinity"),
    **dict.fromkeys(["DistributedILALoss", "all_gather_no_grad", "gather_with_grad", "is_distributed",
                     "is_main_process", "rank", "reduce_mean", "reduce_sum", "world_size"], "distributed"),
    "ILALoss": "ila",
    **dict.fromkeys(["AffinityTripletLoss", "MultiSampleContrastiveLoss", "PullOnlyMSCLoss", "PushOnlyMSCLoss",
                     "get_metric_loss", "METRIC_LOSSES"], "losses"),
    **dict.fromkeys(["ClassifierPseudoLabeller", "ConsensusPseudoLabeller", "KNNPseudoLabeller", "PseudoLabels",
                     "get_pseudo_labeller", "knn_vote", "similarity_ratio", "PSEUDO_LABELLERS"], "pseudo_labels"),
    **dict.fromkeys(["ClassBalancedSampler", "RandomBatchSampler"], "sampler"),
    **dict.fromkeys(["CenteredCosineSimilarity", "CosineSimilarity", "InverseEuclideanSimilarity",
                     "get_similarity", "SIMILARITIES"], "similarity"),
}

__all__ = list(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module("." + _EXPORTS[name], __name__), name)
    globals()[name] = value   # looked up once
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
