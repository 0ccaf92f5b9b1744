"""A class-balanced memory of recent source features, for the kNN vote.

ILA-DA's vote reads one class-balanced source batch: with ``m`` samples per class (2 on Office-31, 4 on
digits), a target's ``k`` nearest sources come from very few candidates per class. The bank keeps the
``size`` most recent features of every class, detached, so the vote (and the ratio Γ) can read them next
to the current batch. By default the contrastive loss still contrasts the current batch only (the bank's
features carry no gradient); with :class:`~ila_tllib.ila.ILALoss`'s ``bank_anchors`` they join its sources
as constants, whose gradient reaches the targets only.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["SourceFeatureBank", "rank_within_class"]


def rank_within_class(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    r"""For every row, how many earlier rows carry the same label (0 for a class's first row).

    Inputs:
        - labels (tensor): :math:`(N,)` long, in :math:`[0, C)`

    Shape:
        - Output: :math:`(N,)` long
    """
    labels = labels.long()                                        # one_hot takes int64 labels only
    seen = F.one_hot(labels, num_classes).cumsum(dim=0)          # (N, C): rows of each class so far
    return seen.gather(1, labels[:, None]).squeeze(1) - 1


class SourceFeatureBank(nn.Module):
    r"""A ring buffer of the ``size`` most recent source features of each class.

    :meth:`push` writes a batch's features (detached); :meth:`entries` returns every filled slot with its
    class. The buffers are allocated at the first push (the number of classes and the feature width are
    known then) and travel in ``state_dict``, so a resumed run votes with the same memory.

    Args:
        size (int): features kept per class, at least 1.

    Shape:
        - features buffer: :math:`(C, \text{size}, D)`; ``filled`` and ``pointer``: :math:`(C,)`, the filled
          slots of each class and where its next feature goes.
    """

    def __init__(self, size: int):
        super().__init__()
        if size < 1:
            raise ValueError(f"a source bank keeps at least one feature per class, got size={size}")
        self.size = size
        self.register_buffer("features", torch.zeros(0, size, 0))
        self.register_buffer("filled", torch.zeros(0, dtype=torch.long))
        self.register_buffer("pointer", torch.zeros(0, dtype=torch.long))

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        saved = state_dict.get(prefix + "features")
        if saved is not None and saved.dim() == 3 and saved.shape[1] != self.size:
            error_msgs.append(f"the saved source bank keeps {saved.shape[1]} features per class, this one {self.size}")
            return
        # the saved bank may already be allocated while this one is not: take its shapes first
        for name in ("features", "filled", "pointer"):
            saved = state_dict.get(prefix + name)
            if saved is not None:
                current = getattr(self, name)
                setattr(self, name, torch.zeros(saved.shape, dtype=saved.dtype, device=current.device))
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)

    def entries(self):
        """``(features (M, D), labels (M,))`` of the filled slots, class by class."""
        num_classes = self.features.shape[0]
        filled = torch.arange(self.size, device=self.filled.device)[None, :] < self.filled[:, None]
        labels = torch.arange(num_classes, device=self.filled.device)[:, None].expand(-1, self.size)
        return self.features[filled], labels[filled]

    @torch.no_grad()
    def push(self, f: torch.Tensor, y: torch.Tensor, num_classes: int):
        """Write the rows of ``f`` (labels ``y``) into their classes' rings, oldest slots first; of more than
        ``size`` rows of one class only the last ``size`` stay."""
        if not torch.is_inference_mode_enabled():
            # buffers written under torch.inference_mode() are inference tensors, which cannot be written to
            # outside it: the bank carries on in ordinary copies
            for name in ("features", "filled", "pointer"):
                if getattr(self, name).is_inference():
                    setattr(self, name, getattr(self, name).clone())
        if self.features.shape[0] != num_classes or self.features.shape[2] != f.shape[1]:
            if self.filled.sum() > 0:
                raise ValueError(f"the source bank holds {self.features.shape[0]} classes of width "
                                 f"{self.features.shape[2]}; got {num_classes} classes of width {f.shape[1]}")
            self.features = f.new_zeros(num_classes, self.size, f.shape[1])
            self.filled = torch.zeros(num_classes, dtype=torch.long, device=f.device)
            self.pointer = torch.zeros(num_classes, dtype=torch.long, device=f.device)
        y = y.long()                                      # int32 labels index as int64 ones do
        counts = torch.bincount(y, minlength=num_classes)
        rank = rank_within_class(y, num_classes)
        last = rank >= counts[y] - self.size              # earlier rows would be overwritten in the same write
        slot = (self.pointer[y] + rank) % self.size
        self.features[y[last], slot[last]] = f.detach()[last].to(self.features.dtype)
        self.pointer = (self.pointer + counts) % self.size
        self.filled = (self.filled + counts).clamp(max=self.size)

    def extra_repr(self):
        return f"size={self.size}"
