"""Backbones as tllib's scripts build them: tllib's digit networks, tllib's ResNets (torchvision's, cut
before pooling, the classifier pools) and every timm model; each has ``out_features``. Whether the
classifier needs its pool layer is decided here too (:func:`gives_feature_maps`).

Which ImageNet weights a ResNet starts from is decided here: by default torchvision's
``IMAGENET1K_V1`` (``resnet50-0676ba61.pth``), the weights tllib's ResNets load and its published
tables were trained from; ``weights='default'`` takes torchvision's current default instead
(``IMAGENET1K_V2`` for ResNet-50/101/152, ResNeXt and Wide ResNet: a stronger start, so numbers no
longer compare with tllib's tables). The log names the file.

The ResNets are built here whether tllib is installed or not: tllib's differ only in keeping the
unused ``fc`` layer, which would make checkpoints depend on the backend.
"""
import os
from typing import Optional

import torch
import torch.nn as nn

from .logged_flags import TLLIB_RESNETS
from .torch_files import why_unreadable

__all__ = ["DIGIT_ARCHS", "TLLIB_RESNETS", "WEIGHTS", "digit_input_size", "image_mode", "get_model",
           "gives_feature_maps", "resnet_weights", "unknown_arch", "with_timm_feature_maps", "BackboneError"]

#: the digit backbones -> (the only side of square images their flatten layer accepts, the PIL mode they read)
DIGIT_ARCHS = {"lenet": (28, "L"), "dtn": (32, "RGB")}


def digit_input_size(arch: str) -> Optional[int]:
    """The image side a digit backbone needs; None for a backbone that pools (any size)."""
    return DIGIT_ARCHS[arch][0] if arch in DIGIT_ARCHS else None


def image_mode(arch: str) -> str:
    """The PIL mode of the images the backbone reads: 'L' (grey) for LeNet, 'RGB' for every other."""
    return DIGIT_ARCHS[arch][1] if arch in DIGIT_ARCHS else "RGB"


#: ``--weights`` choice -> torchvision weight enum member (for tllib's ResNets, :data:`TLLIB_RESNETS`).
WEIGHTS = {"v1": "IMAGENET1K_V1", "default": "DEFAULT"}


class BackboneError(ValueError):
    """A backbone that cannot be built or loaded; the message names the fix."""


def resnet_weights(arch: str, choice: str = "v1"):
    """The torchvision weight enum member ``--weights choice`` selects for ResNet ``arch``."""
    import torchvision.models as tvm
    return getattr(getattr(tvm, TLLIB_RESNETS[arch]), WEIGHTS[choice])


def _resnet(arch: str, weights) -> nn.Module:
    import torchvision.models as tvm
    net = tvm.get_model(arch, weights=weights)
    net.out_features = net.fc.in_features
    net.fc = nn.Identity()
    net.avgpool = nn.Identity()

    def features(x):   # tllib's ResNet backbones stop before pooling
        x = net.maxpool(net.relu(net.bn1(net.conv1(x))))
        return net.layer4(net.layer3(net.layer2(net.layer1(x))))
    net.forward = features
    return net


def unknown_arch(arch: str) -> Optional[str]:
    """The message for an ``-a`` that names no backbone (as tllib's ``choices`` would refuse it), else None."""
    if arch in DIGIT_ARCHS or arch in TLLIB_RESNETS:
        return None
    import timm   # only here: the digit and ResNet runs never import it
    # list_models() leaves out the names timm maps to others (tllib's ig_resnext101_32x8d); is_model() takes any
    # ".tag", so a tagged name must be one of timm's pretrained weights
    if timm.is_model(arch) and ("." not in arch or arch in timm.list_pretrained()):
        return None
    return (f"unknown architecture {arch!r}: use lenet, dtn, a torchvision ResNet (resnet18, resnet50, ...) or a "
            f"timm model name (timm.list_models())")


def _timm(arch: str, pretrained: bool) -> nn.Module:
    import timm
    problem = unknown_arch(arch)
    if problem:
        raise BackboneError(problem)
    # the model's own global pool (the average for CNNs, the class token for ViTs): one vector per image,
    # what tllib's ViT recipe (-a vit_base_patch16_224 --no-pool) got from the timm of its day; today's timm
    # leaves a ViT's tokens unpooled with global_pool=''
    net = timm.create_model(arch, pretrained=pretrained, num_classes=0)
    net.out_features = net.num_features
    return net


def with_timm_feature_maps(net: nn.Module) -> nn.Module:
    """``net`` (a timm model built by :func:`get_model`) as tllib's ``utils.get_model`` gives it: a CNN without
    its pool and flatten, so that it returns feature maps ``(N, C, H, W)`` and a classifier's default pool
    layer pools them; ``out_features`` is their C. A model without such maps (a ViT's tokens, a Swin's
    channels-last maps) keeps one vector per image, for ``pool_layer=nn.Identity()`` (tllib's ``--no-pool``),
    what tllib got for them from the timm of its day. Found by one forward pass of a blank image."""
    size = (getattr(net, "pretrained_cfg", None) or {}).get("input_size", (3, 224, 224))
    was_training = net.training
    net.eval()      # BatchNorm would refuse a batch of one in training mode
    try:
        with torch.no_grad():
            features = net.forward_features(torch.zeros(1, *size))
            if features.dim() != 4 or features.shape[1] != net.num_features:
                return net
            net.reset_classifier(0, '')      # tllib's own step: no classifier, no global pool
            net.out_features = net(torch.zeros(1, *size)).shape[1]   # MobileNetV3's head convolution widens it
    finally:
        net.train(was_training)
    return net


def gives_feature_maps(arch: str) -> bool:
    """Whether backbone ``arch`` gives feature maps, which the classifier's pool layer turns into one vector
    per image (tllib's ResNets); the digit networks and timm's models give that vector themselves."""
    return arch in TLLIB_RESNETS


def get_model(arch: str, scratch: bool = False, pretrained: Optional[str] = None, weights: str = "v1") -> nn.Module:
    """A backbone with ``out_features``: ImageNet weights unless ``scratch``; ``pretrained`` is a local
    state_dict of the backbone instead of a download; ``weights`` (``v1`` | ``default``) picks a
    ResNet's torchvision weights (see the module docstring). Prints which weights it starts from."""
    from . import backend
    if weights not in WEIGHTS:
        raise BackboneError(f"--weights {weights!r}: choose {' | '.join(WEIGHTS)}")
    download = not (scratch or pretrained)
    try:
        if arch in DIGIT_ARCHS:
            backbone = getattr(backend, arch)(pretrained=False)
            note = f"none ({arch} has no pretrained weights)" if download else None
        elif arch in TLLIB_RESNETS:
            chosen = resnet_weights(arch, weights) if download else None
            backbone = _resnet(arch, chosen)
            note = f"torchvision {chosen.name}, {os.path.basename(chosen.url)}" + (
                " (the V1 weights tllib's tables use)" if chosen.name == "IMAGENET1K_V1" else "") if download else None
        else:
            backbone = _timm(arch, download)
            cfg = getattr(backbone, "pretrained_cfg", None) or {}
            note = f"timm's pretrained {arch} ({cfg.get('hf_hub_id') or cfg.get('url') or 'its default tag'})" \
                if download else None
    except BackboneError:
        raise
    except Exception as e:  # a failed weight download is the usual cause
        raise BackboneError(f"could not build {arch!r} with ImageNet weights ({type(e).__name__}: {e}). Without "
                            f"internet give --pretrained PATH (a local state_dict of the backbone) or --scratch") from None
    if pretrained:
        _load_local(backbone, arch, pretrained)
    else:
        print(f"=> backbone weights: {note or 'none (--scratch)'}")
    return backbone


def _load_local(backbone: nn.Module, arch: str, path: str):
    if os.path.isdir(path):
        raise BackboneError(f"--pretrained {path} is a folder: give the file of the backbone's weights in it "
                            f"(torch.save(backbone.state_dict(), PATH))")
    if not os.path.isfile(path):
        raise BackboneError(f"--pretrained {path}: no such file")
    try:
        state = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as e:   # not a torch file, a truncated or empty one, or pickled objects beyond tensors
        raise BackboneError(f"--pretrained {path} {why_unreadable(path, e)}: give a file written by "
                            f"torch.save(backbone.state_dict(), PATH)") from None
    if not isinstance(state, dict):
        raise BackboneError(f"--pretrained {path}: holds a {type(state).__name__}, not a state_dict")
    own = backbone.state_dict()
    resized = [k for k in state if k in own and tuple(getattr(state[k], "shape", ())) != tuple(own[k].shape)]
    if resized:    # load_state_dict would raise on these even with strict=False
        k = resized[0]
        raise BackboneError(f"--pretrained {path}: {len(resized)} of its weights have another shape than the "
                            f"{arch!r} backbone's (e.g. {k} {list(getattr(state[k], 'shape', ()))}, here "
                            f"{list(own[k].shape)}); give the weights of an {arch!r} backbone, or the -a they fit")
    missing, unexpected = backbone.load_state_dict(state, strict=False)
    if len(unexpected) == len(state):
        raise BackboneError(f"--pretrained {path}: none of its keys fit the {arch!r} backbone "
                            f"(first: {next(iter(state), None)!r}); give a state_dict of the backbone itself")
    print(f"=> loaded pretrained weights from {path} (missing {len(missing)}, unexpected {len(unexpected)})")
