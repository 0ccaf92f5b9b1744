"""What the hand-written backward passes of the ILA loss share."""
import functools

import torch

__all__ = ["first_order_only"]


def first_order_only(backward):
    """Mark a ``torch.autograd.Function.backward`` written by hand, without a graph of its own: asked for a
    graph (``create_graph=True``, for a second derivative) it raises instead of returning a gradient that
    later differentiation would take as a constant, a silently wrong second derivative."""
    @functools.wraps(backward)
    def checked(ctx, *grads):
        if torch.is_grad_enabled():
            raise RuntimeError("the ILA loss has no second derivative (its backward is written by hand): "
                               "differentiate it once, without create_graph=True")
        return backward(ctx, *grads)
    return checked
