"""ila-tllib: ILA-DA (Instance-Level Affinity domain adaptation, CVPR 2021) as an extension of tllib."""
from .affinity import AffinityMiner, MinedAffinity, affinity_matrix, keep_top_fraction
from .distributed import (DistributedILALoss, all_gather_no_grad, gather_with_grad, is_distributed,
                          is_main_process, rank, reduce_mean, reduce_sum, world_size)
from .ila import ILALoss
from .losses import AffinityTripletLoss, MultiSampleContrastiveLoss, get_metric_loss
from .pseudo_labels import (ClassifierPseudoLabeller, ConsensusPseudoLabeller, KNNPseudoLabeller, PseudoLabels, get_pseudo_labeller,
                            knn_vote, similarity_ratio)
from .sampler import ClassBalancedSampler, RandomBatchSampler
from .similarity import CenteredCosineSimilarity, CosineSimilarity, InverseEuclideanSimilarity, get_similarity

__version__ = "0.1.0"

__all__ = [
    "ILALoss", "InverseEuclideanSimilarity", "CosineSimilarity", "CenteredCosineSimilarity", "get_similarity",
    "KNNPseudoLabeller", "ClassifierPseudoLabeller", "ConsensusPseudoLabeller", "PseudoLabels", "get_pseudo_labeller", "knn_vote",
    "similarity_ratio", "AffinityMiner", "MinedAffinity", "affinity_matrix", "keep_top_fraction",
    "MultiSampleContrastiveLoss", "AffinityTripletLoss", "get_metric_loss", "ClassBalancedSampler", "RandomBatchSampler",
    "DistributedILALoss", "gather_with_grad", "all_gather_no_grad", "is_distributed", "world_size", "rank",
    "is_main_process", "reduce_sum", "reduce_mean",
]
