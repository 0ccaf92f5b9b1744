"""Feature analysis: collect features, then plot them (:mod:`.tsne`) or measure the A-distance (:mod:`.a_distance`)."""
from typing import Optional

import torch
import torch.nn as nn
from torch.utils.data import DataLoader

from . import a_distance, tsne

__all__ = ["collect_feature", "tsne", "a_distance"]


def collect_feature(data_loader: DataLoader, feature_extractor: nn.Module, device: torch.device,
                    max_num_features: Optional[int] = None) -> torch.Tensor:
    r"""Run ``feature_extractor`` (in eval mode, without gradients) over a loader.

    Args:
        data_loader (torch.utils.data.DataLoader): yields batches whose first item is the input
        feature_extractor (torch.nn.Module): maps inputs to features
        device (torch.device): where to run it
        max_num_features (int, optional): stop after this many *batches*. Default: all

    Returns:
        the features of all visited samples, concatenated on the CPU, :math:`(N, F)`.
    """
    feature_extractor.eval()
    batches = data_loader
    try:  # a progress bar when tqdm is around
        from tqdm import tqdm
        batches = tqdm(data_loader)
    except ImportError:
        pass
    features = []
    with torch.no_grad():
        for i, data in enumerate(batches):
            if max_num_features is not None and i >= max_num_features:
                break
            inputs = data[0] if isinstance(data, (list, tuple)) else data
            features.append(feature_extractor(inputs.to(device)).cpu())
    return torch.cat(features, dim=0)
