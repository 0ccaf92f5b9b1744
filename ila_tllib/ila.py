"""ILA-DA's loss: similarity → affinity miner → metric loss, as one ``nn.Module``."""
from typing import Optional, Tuple, Union

import torch
import torch.nn as nn

from .affinity import DEFAULT_MU, AffinityMiner, MinedAffinity
from .fused import fused_ila_loss, fused_settings
from .losses import METRIC_LOSSES, anchors
from .memory import SourceFeatureBank
from .parts import build_part
from .pseudo_labels import PSEUDO_LABELLERS, KNNPseudoLabeller, check_label_range
from .similarity import get_similarity, is_builtin

__all__ = ["ILALoss"]


def _nan_if_not_finite(loss: torch.Tensor, f_s: torch.Tensor, f_t: torch.Tensor) -> torch.Tensor:
    """``loss``, or NaN where a feature is NaN or infinite (a diverged network): whichever path computed it
    and whatever it decided about that feature's row (a NaN distance can read as "not kept" and leave a
    finite loss). Without a host synchronisation; the gradient still flows into ``loss``."""
    # the largest |entry| times 0: 0 where all are finite, NaN where one is NaN or infinite (a maximum cannot
    # overflow, as a sum could in half precision); outside autograd, so the backward pass gains nothing
    with torch.no_grad():               # (an empty batch has no largest entry)
        zeros = [torch.linalg.vector_norm(f, float("inf")).mul_(0.0) for f in (f_s, f_t) if f.numel()]
    for zero in zeros:
        loss = loss + zero
    return loss


class ILALoss(nn.Module):
    r"""Instance-level affinity loss of ILA-DA (Sung et al., CVPR 2021)

    For a labelled source batch :math:`\{(f_i, y_i)\}` and an unlabelled target batch :math:`\{f_j\}`:

    1. :math:`\phi_{ij} = 1 / (1 + \lVert f_i - f_j \rVert_2)` (Eq. 6);
    2. :math:`\hat y_j` = majority label of the ``k`` most similar sources (ties → smallest label);
    3. :math:`\Gamma_j` = sum of the top-``m`` like over the top-``m`` unlike similarities (Eq. 7);
       the :math:`\mathrm{round}(\mu N_t)` targets with the largest :math:`\Gamma_j` are kept;
    4. :math:`A_{ij} = \pm 1` by label agreement for kept targets, 0 otherwise;
    5. the multi-sample contrastive loss over :math:`A` (Eq. 4–5), averaged over sources that have both
       a positive and a negative.

    Steps 2–4 carry no gradient; step 5 back-propagates into both :math:`f_s` and :math:`f_t`.
    Each step is a swappable part: ``similarity``, ``pseudo_labeller``, ``metric_loss``.

    **Fused path.** When the parts are exactly the paper's — :class:`InverseEuclideanSimilarity`,
    :class:`KNNPseudoLabeller` and :class:`MultiSampleContrastiveLoss` with ``reduction='mean'`` and a
    temperature of at least 1/700, not subclasses — and the target batch is not empty, the loss runs as one
    autograd node with a hand-written backward (:mod:`ila_tllib.fused`): the same decisions, loss and
    gradients from far fewer tensor operations, computed in float64 whatever the input dtype (float32 loses
    short distances) and returned in the input dtype or float32, whichever is wider (as the composable
    path's similarity computes). Any other part, or ``fused=False``, takes the
    composable path. The rule is checked at every call, so parts swapped after construction are honoured.

    A NaN or infinite feature makes the loss NaN on both paths, so that a diverged network shows at once.

    Ties: a tied kNN vote goes to the smallest label (both paths). Which of several sources tied in
    :math:`\phi` at the k-th place votes, and which of several targets tied in :math:`\Gamma` at the μ cut
    is kept, is ``torch.topk``'s choice (PyTorch does not specify it); the counts are always ``k`` and
    :math:`\mathrm{round}(\mu N_t)`.

    The parts are given either by name, with their settings, or as modules; a setting next to a
    module, or next to a name whose part does not take it (``k`` with ``pseudo_labeller='classifier'``,
    ``temperature`` with ``metric_loss='triplet'``), is an error (it would be silently ignored).

    Args:
        k (int, optional): neighbours of the kNN vote, for ``pseudo_labeller='knn'``. Default: 5
        mu (float): fraction of targets kept, in (0, 1]. Default: 0.67
        m (int, optional): top-m of the ratio test; ``None`` = the largest per-class count of the
            source batch (its samples per class when class-balanced). Default: ``None``
        ratio_terms (str, optional): a name of :data:`~ila_tllib.pseudo_labels.RATIO_TERMS`, for the kNN
            labellers: ``'top-m'`` (Eq. 7) or ``'matched'`` (as many unlike terms as like ones; the same on
            a class-balanced batch, and the composable path). Default: ``'top-m'``
        temperature (float, optional): :math:`\tau` dividing :math:`\phi`, for the MSC losses.
            Default: 1.0
        similarity (str or nn.Module): a name of :data:`~ila_tllib.similarity.SIMILARITIES`
            (``'inverse_euclidean'``, the paper's; ``'cosine'``; ``'centered_cosine'``) or a module
            ``(a, b) -> (N_a, N_b)`` whose values are never negative (a negative one is refused: it would
            invert the ratio test).
        mining_similarity (str or nn.Module, optional): the similarity of steps 2–3 only (the kNN vote and
            Γ), as ``similarity``; step 5 still contrasts with ``similarity``. Takes the composable path.
            Default: ``None`` (``similarity``)
        pseudo_labeller (str or nn.Module): a name of :data:`~ila_tllib.pseudo_labels.PSEUDO_LABELLERS`
            (``'knn'``, the paper's; ``'classifier'``, Table 4 (b); ``'consensus'``, the kNN vote kept only
            where the classifier agrees) or a module.
        metric_loss (str or nn.Module): a name of :data:`~ila_tllib.losses.METRIC_LOSSES`
            (``'msc'``, the paper's; ``'msc-push'`` and ``'msc-pull'``, MSC moving only its −1 or +1 pairs;
            ``'triplet'``, Table 4 (a)) or a module.
        fused (bool): use the fused path when the parts allow it (see above). Default: ``True``
        source_bank (int): with a value :math:`B > 0`, the pseudo-labeller also reads the :math:`B` most recent
            source features of every class from earlier calls (:class:`~ila_tllib.memory.SourceFeatureBank`,
            detached): the kNN vote and Γ see :math:`N_s + B C` sources, with ``m`` = their largest per-class
            count unless given. The loss contrasts the current batch only (unless ``bank_anchors``), and the
            composable path is taken. Needs ``num_classes``. Default: 0 (the current batch only, as the paper)
        bank_anchors (bool): with a source bank, the loss contrasts the bank's features too: they join the
            sources of Eq. 4–5 after the batch's, with their affinity rows, as constants (their gradient
            reaches the targets only). The bank keeps the features that decide: with ``mining_features``,
            those (of ``f_t``'s width). ``affinity`` and ``num_anchors`` still cover the batch's sources.
            Default: ``False``
        detach_source (bool): the loss treats ``f_s`` as constants, so that its gradient reaches the target
            features only (the values and decisions are unchanged; an ablation). Default: ``False``

    Inputs:
        - f_s (tensor): source features :math:`(N_s, D)`
        - y_s (tensor): source labels :math:`(N_s,)`
        - f_t (tensor): target features :math:`(N_t, D)`
        - logits_t (tensor, optional): target logits :math:`(N_t, C)`, needed by the classifier labeller
        - num_classes (int, optional): number of classes (else ``y_s.max() + 1``)
        - mining_features (pair of tensors, optional): :math:`(N_s, D')` and :math:`(N_t, D')` features of the
          same samples from which steps 1–4 decide (detached; e.g. a slowly moving copy of the network's);
          step 5 still contrasts ``f_s`` and ``f_t``. Takes the composable path.

    Shape:
        - Output: scalar.

    After each call the decisions for that batch are available as ``pseudo_labels`` :math:`(N_t,)`,
    ``ratio`` :math:`(N_t,)` (Γ, or the confidence for the classifier labeller), ``kept``
    :math:`(N_t,)` bool and ``affinity`` :math:`(N_s, N_t)` — all detached — and ``num_anchors``,
    the number of sources that entered the loss. On the fused path ``kept`` and ``affinity`` are built when
    first read (reading them costs nothing in the loss's own forward and backward).
    """

    def __init__(self, k: Optional[int] = None, mu: float = DEFAULT_MU, m: Optional[int] = None,
                 temperature: Optional[float] = None, similarity: Union[str, nn.Module] = "inverse_euclidean",
                 pseudo_labeller: Union[str, nn.Module, None] = "knn",
                 metric_loss: Union[str, nn.Module, None] = "msc", fused: bool = True, source_bank: int = 0,
                 ratio_terms: Optional[str] = None, bank_anchors: bool = False, detach_source: bool = False,
                 mining_similarity: Union[str, nn.Module, None] = None):
        super().__init__()
        if bank_anchors and not source_bank:
            raise ValueError("bank_anchors contrasts the source bank's features: give source_bank > 0")
        self.fused, self.bank_anchors, self.detach_source = fused, bank_anchors, detach_source
        self.bank = SourceFeatureBank(source_bank) if source_bank else None
        pseudo_labeller, metric_loss = pseudo_labeller or "knn", metric_loss or "msc"
        self.similarity = get_similarity(similarity)
        self.mining_similarity = None if mining_similarity is None else get_similarity(mining_similarity)
        # settings left None are not given: each part keeps its constructor's default
        labeller = build_part(PSEUDO_LABELLERS, pseudo_labeller, "pseudo-labeller", k=k, m=m, ratio_terms=ratio_terms)
        self.miner = AffinityMiner(labeller, mu)
        self.metric_loss = build_part(METRIC_LOSSES, metric_loss, "metric loss", temperature=temperature)
        self.last = None

    def forward(self, f_s: torch.Tensor, y_s: torch.Tensor, f_t: torch.Tensor,
                logits_t: Optional[torch.Tensor] = None, num_classes: Optional[int] = None,
                mining_features: Optional[Tuple[torch.Tensor, torch.Tensor]] = None) -> torch.Tensor:
        if f_s.dim() != 2 or f_t.dim() != 2 or f_s.shape[1] != f_t.shape[1]:
            raise ValueError(f"expected f_s (N_s, D) and f_t (N_t, D), got {tuple(f_s.shape)} and {tuple(f_t.shape)}")
        if y_s.shape != (f_s.shape[0],):
            raise ValueError(f"y_s must have shape ({f_s.shape[0]},), got {tuple(y_s.shape)}")
        if y_s.dtype.is_floating_point or y_s.dtype.is_complex or y_s.dtype == torch.bool:
            raise ValueError(f"y_s must hold integer class labels, got {y_s.dtype}")
        y_s = y_s.long()       # int8 or int16 labels index as int64 do
        if num_classes is not None:
            if isinstance(num_classes, bool) or not float(num_classes).is_integer():
                raise ValueError(f"num_classes must be a whole number of classes, got {num_classes!r}")
            num_classes = int(num_classes)      # 4.0, or a 0-d tensor, counts as 4 on both paths
        if logits_t is not None and (logits_t.dim() != 2 or logits_t.shape[0] != f_t.shape[0]):
            raise ValueError(f"logits_t must hold one row of class scores per target, shape ({f_t.shape[0]}, C), "
                             f"got {tuple(logits_t.shape)}")
        if logits_t is not None and num_classes is not None and logits_t.shape[1] != num_classes:
            raise ValueError(f"logits_t has {logits_t.shape[1]} class scores per target, num_classes is "
                             f"{num_classes}: give the classifier's logits for the same classes")
        if mining_features is not None:
            shapes = tuple(tuple(g.shape) for g in mining_features)
            if tuple(g.shape[0] for g in mining_features) != (len(f_s), len(f_t)) or \
                    any(g.dim() != 2 for g in mining_features) or shapes[0][1:] != shapes[1][1:]:
                raise ValueError(f"mining_features must be ({len(f_s)}, D') source and ({len(f_t)}, D') target "
                                 f"features of one width D', got {shapes}")
            if self.bank_anchors and shapes[0][1] != f_s.shape[1]:
                raise ValueError(f"bank_anchors contrasts the bank's features with f_t, and the bank keeps the "
                                 f"features that decide: mining_features of width {shapes[0][1]} cannot meet f_t "
                                 f"of width {f_s.shape[1]}; give mining features of f_t's width, or no bank_anchors")
        if self.detach_source:
            f_s = f_s.detach()
        settings = fused_settings(self.similarity, self.miner, self.metric_loss) if self.fused else None
        if (settings is not None and f_t.shape[0] > 0 and self.bank is None and mining_features is None
                and self.mining_similarity is None):
            loss, self.last = fused_ila_loss(f_s, y_s, f_t, num_classes=num_classes, **settings)
            return _nan_if_not_finite(loss, f_s, f_t)
        if len(y_s):           # the fused path checks them in its own single transfer
            check_label_range(*torch.stack((y_s.min(), y_s.max())).tolist(), num_classes)
        similarity_st = self.similarity(f_s, f_t)                       # (N_s, N_t), with gradient
        self.last, bank_rows = self._mine(similarity_st, f_s, y_s, f_t, logits_t, num_classes, mining_features)
        affinity = self.last.affinity.to(similarity_st.dtype)
        if self.bank_anchors and bank_rows is not None:                 # (N_s + M, N_t): batch, then bank
            bank_f, bank_affinity = bank_rows
            similarity_st = torch.cat((similarity_st, self.similarity(bank_f.to(f_t.dtype), f_t)))
            affinity = torch.cat((affinity, bank_affinity.to(affinity.dtype)))
        return _nan_if_not_finite(self.metric_loss(similarity_st, affinity), f_s, f_t)

    @torch.no_grad()
    def _mine(self, similarity_st, f_s, y_s, f_t, logits_t, num_classes, mining_features):
        """The batch's decisions, and the bank's features with their affinity rows (``None`` without a
        filled bank)."""
        # the features that decide: given ones (e.g. a slowly moving copy's), else the loss's own; and the
        # similarity that decides: its own, else the loss's
        decide = self.similarity if self.mining_similarity is None else self.mining_similarity
        if mining_features is None and self.mining_similarity is None:
            g_s, g_t, voters_st = f_s.detach(), f_t.detach(), similarity_st.detach()
        else:
            g_s, g_t = (g.detach() for g in (mining_features or (f_s, f_t)))
            voters_st = decide(g_s, g_t)
        voter_labels, bank_f = y_s, None
        if self.bank is not None:
            if num_classes is None:
                raise ValueError("a source bank needs num_classes: call the loss as loss(f_s, y_s, f_t, num_classes=C)")
            bank_f, bank_y = self.bank.to(g_s.device).entries()
            if len(bank_y):                                             # (N_s + M, N_t): batch, then bank
                voters_st = torch.cat((voters_st, decide(bank_f.to(g_t.dtype), g_t)))
                voter_labels = torch.cat((y_s, bank_y))
            self.bank.push(g_s, y_s, num_classes)
        if isinstance(self.miner.pseudo_labeller, KNNPseudoLabeller) and not is_builtin(decide) \
                and voters_st.numel() and bool(voters_st.min() < 0):
            # one host synchronisation, for similarities of one's own only: the built-in ones cannot be negative
            raise ValueError(f"the similarity {type(decide).__name__} gives negative values (down to "
                             f"{voters_st.min().item():.3g}): the ratio test (Eq. 7) divides sums of similarities "
                             f"and would keep the least reliable targets; map it to non-negative values, e.g. "
                             f"(1 + cos) / 2 for a cosine or 1 / (1 + d) for a distance d")
        decided = self.miner(voters_st.t(), voter_labels, logits_t, num_classes)
        bank_rows = (bank_f, decided.affinity[len(y_s):]) if bank_f is not None and len(bank_f) else None
        return (MinedAffinity(decided.pseudo_labels, decided.score, decided.kept, decided.affinity[:len(y_s)]),
                bank_rows)

    # what was decided for the latest batch, for logs and figures
    @property
    def pseudo_labels(self):
        return None if self.last is None else self.last.pseudo_labels

    @property
    def ratio(self):
        """The latest batch's score of each target, as its pseudo-labeller ranks them: Γ (Eq. 7) for the kNN
        vote (−inf for a target the classifier disagrees with, under consensus); the softmax confidence
        for the classifier's labels."""
        return None if self.last is None else self.last.score

    @property
    def kept(self):
        return None if self.last is None else self.last.kept

    @property
    def affinity(self):
        return None if self.last is None else self.last.affinity

    @property
    def num_anchors(self) -> int:
        if self.last is None:
            return 0
        if hasattr(self.last, "num_anchors"):   # the fused path counted them
            return self.last.num_anchors
        return int(anchors(self.last.affinity).sum().item())
