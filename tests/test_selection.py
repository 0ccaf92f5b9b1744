"""ila_tllib.selection: each label-free score against a plain loop over its definition, and a hand-computed case."""
import math

import pytest
import torch

from ila_tllib.selection import (SCORES, better_of, information_maximisation, mean_entropy,
                                 soft_neighbourhood_density)


def _rows(probabilities):
    return [[float(v) for v in row] for row in probabilities]


def snd_loop(probabilities, temperature):
    """Saito et al.'s definition, one target and one neighbour at a time."""
    p = _rows(probabilities)
    unit = [[v / math.sqrt(sum(w * w for w in row)) for v in row] for row in p]
    total = 0.0
    for i, a in enumerate(unit):
        logits = [sum(x * y for x, y in zip(a, b)) / temperature for j, b in enumerate(unit) if j != i]
        top = max(logits)
        weights = [math.exp(z - top) for z in logits]
        shares = [w / sum(weights) for w in weights]
        total += -sum(s * math.log(s) for s in shares if s > 0)
    return total / len(unit)


def entropy_loop(row):
    return -sum(v * math.log(v) for v in row if v > 0)


def test_soft_neighbourhood_density_against_the_loop():
    generator = torch.Generator().manual_seed(0)
    probabilities = torch.randn(23, 5, generator=generator).mul(3).softmax(dim=1)
    for temperature in (0.05, 0.5):
        expected = snd_loop(probabilities, temperature)
        assert soft_neighbourhood_density(probabilities, temperature) == pytest.approx(expected, rel=1e-9)
        # the rows held at once change the memory, not the value; chunks that split the diagonal included
        assert soft_neighbourhood_density(probabilities, temperature, rows_per_chunk=4) == \
            pytest.approx(expected, rel=1e-9)


def test_soft_neighbourhood_density_by_hand():
    # three outputs, two identical and one orthogonal to them: the twins see each other at cos 1 and the third at
    # cos 0; the third sees both twins at cos 0, an even split
    p = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    tau = 0.5
    twin_share = math.exp(1 / tau) / (math.exp(1 / tau) + 1)
    twin_entropy = -(twin_share * math.log(twin_share) + (1 - twin_share) * math.log(1 - twin_share))
    assert soft_neighbourhood_density(p, tau) == pytest.approx((2 * twin_entropy + math.log(2)) / 3, rel=1e-12)
    with pytest.raises(ValueError):
        soft_neighbourhood_density(p[:1])


def test_entropy_and_information_maximisation_against_the_loop():
    generator = torch.Generator().manual_seed(1)
    probabilities = torch.randn(17, 4, generator=generator).mul(2).softmax(dim=1)
    rows = _rows(probabilities)
    entropy = sum(entropy_loop(r) for r in rows) / len(rows)
    mean_output = [sum(r[c] for r in rows) / len(rows) for c in range(4)]
    assert mean_entropy(probabilities) == pytest.approx(entropy, rel=1e-9)
    assert information_maximisation(probabilities) == pytest.approx(entropy_loop(mean_output) - entropy, rel=1e-9)


def test_information_maximisation_by_hand():
    # one-hot outputs spread evenly over two classes: no entropy per output, log 2 over their mean
    assert information_maximisation(torch.tensor([[1.0, 0.0], [0.0, 1.0]])) == pytest.approx(math.log(2))
    # every output the same uniform vector: log 2 both ways, nothing gained
    assert information_maximisation(torch.full((3, 2), 0.5)) == pytest.approx(0.0, abs=1e-12)


def test_better_of_follows_each_scores_direction():
    assert better_of("snd", 1.0, 2.0) == 1 and better_of("snd", 2.0, 1.0) == 0
    assert better_of("entropy", 1.0, 2.0) == 0 and better_of("entropy", 2.0, 1.0) == 1
    assert better_of("im", 0.3, 0.3) == 0          # a tie keeps the first
    assert set(SCORES) == {"snd", "entropy", "im"}
