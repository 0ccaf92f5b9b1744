"""Proxy A-distance between source and target features (Ben-David et al., 2007)."""
import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["ANet", "calculate"]


class ANet(nn.Module):
    r"""Linear domain classifier :math:`\sigma(w^\top f + b)`, the probability of *source*.

    Args:
        in_feature (int): feature dimension

    Shape:
        - Inputs: :math:`(N, \text{in\_feature})`
        - Outputs: :math:`(N, 1)`
    """

    def __init__(self, in_feature: int):
        super().__init__()
        self.layer = nn.Linear(in_feature, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.layer(x))


def calculate(source_feature: torch.Tensor, target_feature: torch.Tensor, device, progress: bool = True,
              training_epochs: int = 10, batch_size: int = 2, lr: float = 0.01):
    r"""Proxy A-distance :math:`\hat d_A = 2 (1 - 2 \epsilon)`.

    A linear domain classifier (:class:`ANet`, source 1, target 0) is trained with plain SGD on a
    random 80% of the pooled features; :math:`\epsilon` is its error on the other 20% after the
    last of the ``training_epochs`` epochs (tllib's recipe: batches of 2, lr 0.01, no momentum).
    Indistinguishable domains give about 0, linearly separable ones 2.

    Args:
        source_feature (tensor): :math:`(N_s, F)`
        target_feature (tensor): :math:`(N_t, F)`
        device (torch.device): where to train
        progress (bool, optional): print each epoch's accuracy and A-distance. Default: True
        training_epochs (int, optional): epochs of training. Default: 10
        batch_size (int, optional): SGD mini-batch size. Default: 2
        lr (float, optional): SGD learning rate. Default: 0.01

    Returns:
        the A-distance, a 0-dim tensor on ``device`` as tllib's (so a log prints ``A-distance = tensor(...)``
        with either backend); 2.0 without a training epoch, as tllib's.
    """
    features = torch.cat([source_feature, target_feature], dim=0).detach().float().to(device)
    labels = torch.cat([torch.ones(len(source_feature), 1), torch.zeros(len(target_feature), 1)]).to(device)
    order = torch.randperm(len(features)).to(device)
    n_train = int(0.8 * len(features))
    train_idx, val_idx = order[:n_train], order[n_train:]
    if len(val_idx) == 0:
        raise ValueError("need at least 5 features in total to hold out a test split")

    anet = ANet(features.size(1)).to(device)
    optimizer = torch.optim.SGD(anet.parameters(), lr=lr)
    a_distance = 2.0
    for epoch in range(training_epochs):
        anet.train()
        for batch in train_idx[torch.randperm(n_train).to(device)].split(batch_size):
            loss = F.binary_cross_entropy(anet(features[batch]), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        anet.eval()
        with torch.no_grad():
            pred = (anet(features[val_idx]) >= 0.5).float()
            accuracy = 100 * (pred == labels[val_idx]).float().mean()
        a_distance = 2 * (1 - 2 * (1 - accuracy / 100))
        if progress:   # 0-dim tensors format as their numbers: the line reads as tllib's
            print("epoch {} accuracy: {} A-dist: {}".format(epoch, accuracy, a_distance))
    return a_distance
