"""BatchNorm statistics from tllib's rows only (``--ila-bn-statistics tllib``), against torch's own BatchNorm
run on those rows alone and a hand-written normalisation for the rows after them."""
import copy

import pytest
import torch
import torch.nn as nn

from ila_tllib.engine.batchnorm import batch_statistics_from

LAYERS = [lambda: nn.BatchNorm1d(5), lambda: nn.BatchNorm2d(3), lambda: nn.BatchNorm1d(5, momentum=None),
          lambda: nn.BatchNorm1d(5, affine=False)]


def _input(bn, n, seed):
    g = torch.Generator().manual_seed(seed)
    shape = (n, 5) if isinstance(bn, nn.BatchNorm1d) else (n, 3, 4, 4)
    return torch.randn(*shape, generator=g) * 3 + 1


def _with_weights(bn):
    if bn.affine:
        with torch.no_grad():
            bn.weight.uniform_(0.5, 2.0)
            bn.bias.uniform_(-1.0, 1.0)
    return bn


@pytest.mark.parametrize("make", LAYERS)
def test_leading_rows_are_normalised_exactly_as_batchnorm_on_them_alone(make):
    reference = _with_weights(make())
    ours = copy.deepcopy(reference)
    for step in range(3):                                  # running statistics accumulate alike
        x = _input(reference, 10, step).requires_grad_()
        x_ref = x.detach()[:6].clone().requires_grad_()
        expected = reference(x_ref)
        with batch_statistics_from(ours, 6):
            got = ours(x)
        torch.testing.assert_close(got[:6], expected, rtol=1e-5, atol=1e-5)
        upstream = torch.randn_like(expected)
        (got[:6] * upstream).sum().backward()
        (expected * upstream).sum().backward()
        torch.testing.assert_close(x.grad[:6], x_ref.grad, rtol=1e-4, atol=1e-5)
        assert x.grad[6:].abs().max() == 0                 # the extra rows do not shape the statistics
    torch.testing.assert_close(ours.running_mean, reference.running_mean)
    torch.testing.assert_close(ours.running_var, reference.running_var)
    assert int(ours.num_batches_tracked) == int(reference.num_batches_tracked) == 3
    if reference.affine:
        torch.testing.assert_close(ours.weight.grad, reference.weight.grad, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("make", LAYERS[:2])
def test_later_rows_use_the_leading_rows_statistics(make):
    bn = _with_weights(make())
    x = _input(bn, 9, 7)
    with batch_statistics_from(bn, 4):
        got = bn(x)
    dims = [0] + list(range(2, x.dim()))
    shape = [1, -1] + [1] * (x.dim() - 2)
    lead = x[:4]
    mean = lead.mean(dim=dims).view(shape)
    var = ((lead - mean) ** 2).mean(dim=dims).view(shape)   # biased, as BatchNorm normalises
    expected = (x - mean) / torch.sqrt(var + bn.eps) * bn.weight.view(shape) + bn.bias.view(shape)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_eval_mode_and_the_layer_after_the_block_are_untouched():
    net = nn.Sequential(nn.Linear(4, 5), _with_weights(nn.BatchNorm1d(5)))
    plain = copy.deepcopy(net)
    x = _input(net[1], 8, 3)[:, :4]
    with batch_statistics_from(net, 3):
        net.eval()
        plain.eval()
        torch.testing.assert_close(net(x), plain(x))        # eval: running statistics, as always
        net.train()
        plain.train()
        net(x)
    assert "forward" not in vars(net[1])                  # the class's forward again
    plain(x[:3])
    torch.testing.assert_close(net(x), plain(x))            # and full-batch statistics again


def test_float64_layers_keep_float64():
    reference = _with_weights(nn.BatchNorm2d(3)).double()
    ours = copy.deepcopy(reference)
    x = _input(reference, 7, 4).double()
    expected = reference(x[:5])
    with batch_statistics_from(ours, 5):
        got = ours(x)
    assert got.dtype == torch.float64
    torch.testing.assert_close(got[:5], expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ours.running_var, reference.running_var, rtol=1e-12, atol=1e-12)


def test_one_leading_row_is_an_error_as_in_batchnorm():
    bn = nn.BatchNorm1d(5)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        bn(torch.randn(1, 5))
    with batch_statistics_from(bn, 1), pytest.raises(ValueError, match="more than 1 value per channel"):
        bn(torch.randn(4, 5))


def test_a_forward_set_on_the_instance_before_the_block_comes_back():
    bn = nn.BatchNorm1d(5)
    own = bn.forward = lambda x: x * 0                    # e.g. another tool's wrapper
    with batch_statistics_from(bn, 3):
        assert bn.forward is not own
    assert bn.forward is own


def test_no_rows_leaves_every_layer_as_it_is():
    torch.manual_seed(0)
    x = torch.randn(8, 3)
    plain, within = nn.BatchNorm1d(3), nn.BatchNorm1d(3)
    with batch_statistics_from(within, None):
        out = within(x)
    assert torch.equal(out, plain(x)) and torch.equal(within.running_mean, plain.running_mean)
    assert within.forward.__func__ is nn.BatchNorm1d.forward
