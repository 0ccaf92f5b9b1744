"""Backbones as tllib's scripts build them: tllib's digit networks, torchvision ResNets (cut before
pooling, the classifier pools) and every timm model; each has ``out_features``."""
import os
from typing import Optional

import torch
import torch.nn as nn

__all__ = ["DIGIT_ARCHS", "get_model", "BackboneError"]

DIGIT_ARCHS = ("lenet", "dtn")


class BackboneError(ValueError):
    """A backbone that cannot be built or loaded; the message names the fix."""


def _torchvision_resnet(arch: str, weights) -> Optional[nn.Module]:
    import torchvision.models as tvm
    if arch not in tvm.list_models(module=tvm) or not arch.startswith(('resnet', 'resnext', 'wide_resnet')):
        return None
    net = tvm.get_model(arch, weights=weights)
    net.out_features = net.fc.in_features
    net.fc = nn.Identity()
    net.avgpool = nn.Identity()

    def features(x):   # tllib's ResNet backbones stop before pooling
        x = net.maxpool(net.relu(net.bn1(net.conv1(x))))
        return net.layer4(net.layer3(net.layer2(net.layer1(x))))
    net.forward = features
    return net


def _timm(arch: str, pretrained: bool) -> nn.Module:
    import timm
    if arch not in timm.list_models():
        raise BackboneError(f"unknown architecture {arch!r}: use lenet, dtn, a torchvision ResNet "
                            f"(resnet18, resnet50, ...) or a timm model name (timm.list_models())")
    net = timm.create_model(arch, pretrained=pretrained, num_classes=0, global_pool='')
    net.out_features = net.num_features
    return net


def get_model(arch: str, scratch: bool = False, pretrained: Optional[str] = None) -> nn.Module:
    """A backbone with ``out_features``: ImageNet weights unless ``scratch``; ``pretrained`` is a local
    state_dict of the backbone instead of a download."""
    from . import backend
    download = not (scratch or pretrained)
    try:
        if arch in DIGIT_ARCHS:
            backbone = getattr(backend, arch)(pretrained=False)
        else:
            backbone = _torchvision_resnet(arch, 'DEFAULT' if download else None) or _timm(arch, download)
    except BackboneError:
        raise
    except Exception as e:  # a failed weight download is the usual cause
        raise BackboneError(f"could not build {arch!r} with ImageNet weights ({type(e).__name__}: {e}). Without "
                            f"internet give --pretrained PATH (a local state_dict of the backbone) or --scratch") from None
    if pretrained:
        _load_local(backbone, arch, pretrained)
    return backbone


def _load_local(backbone: nn.Module, arch: str, path: str):
    if not os.path.isfile(path):
        raise BackboneError(f"--pretrained {path}: no such file")
    try:
        state = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as e:   # not a torch file, a truncated one, or pickled objects beyond tensors
        raise BackboneError(f"--pretrained {path}: cannot be read as a state_dict "
                            f"({type(e).__name__}: {str(e).splitlines()[0]})") from None
    if not isinstance(state, dict):
        raise BackboneError(f"--pretrained {path}: holds a {type(state).__name__}, not a state_dict")
    missing, unexpected = backbone.load_state_dict(state, strict=False)
    if len(unexpected) == len(state):
        raise BackboneError(f"--pretrained {path}: none of its keys fit the {arch!r} backbone "
                            f"(first: {next(iter(state), None)!r}); give a state_dict of the backbone itself")
    print(f"=> loaded pretrained weights from {path} (missing {len(missing)}, unexpected {len(unexpected)})")
