"""Endless iteration over a data loader."""
from typing import Any, Optional

import torch
from torch.utils.data import DataLoader

__all__ = ["ForeverDataIterator", "send_to_device"]


def send_to_device(data: Any, device) -> Any:
    """Move every tensor inside ``data`` (nested lists, tuples and dicts) to ``device``."""
    if isinstance(data, torch.Tensor):
        return data.to(device)
    if isinstance(data, (list, tuple)):
        moved = [send_to_device(x, device) for x in data]
        # namedtuples are rebuilt field by field, plain tuples and lists from the list
        return type(data)(*moved) if hasattr(data, "_fields") else type(data)(moved)
    if isinstance(data, dict):
        return type(data)((k, send_to_device(v, device)) for k, v in data.items())
    return data


class ForeverDataIterator:
    r"""An iterator that never stops: when ``data_loader`` is exhausted it starts it again
    (a shuffling loader reshuffles), so training can be counted in iterations, not epochs.

    Args:
        data_loader (torch.utils.data.DataLoader): the loader to cycle through
        device (torch.device, optional): if given, tensors in each batch are moved there

    ``len()`` is the loader's length (batches per pass).
    """

    def __init__(self, data_loader: DataLoader, device: Optional[torch.device] = None):
        self.data_loader = data_loader
        self.device = device
        self.iter = iter(self.data_loader)

    def __iter__(self):
        return self

    def __next__(self):
        try:
            data = next(self.iter)
        except StopIteration:
            self.iter = iter(self.data_loader)
            data = next(self.iter)
        if self.device is not None:
            data = send_to_device(data, self.device)
        return data

    def __len__(self) -> int:
        return len(self.data_loader)
