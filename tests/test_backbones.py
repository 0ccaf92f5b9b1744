"""The classifier's pool layer: tllib's ResNets give feature maps, which it averages; lenet and timm's models
give one vector per image themselves, with or without --no-pool (tllib's ViT recipe passes it). Built as the
scripts build it (their parser and build_classifier), in process: a ViT script run costs seconds more."""
import pytest
import torch

from ila_tllib.engine import get_parser
from ila_tllib.engine.run import build_classifier

import ila_dann


def classifier(arch, *extra):
    args = get_parser(ila_dann.DANN()).parse_args(["root", "-s", "a", "-t", "b", "-a", arch, "--scratch", *extra])
    torch.manual_seed(0)
    return build_classifier(args, ila_dann.DANN(), 5, torch.device("cpu")).eval()


def features(model, x):
    return model.pool_layer(model.backbone(x))


@pytest.mark.parametrize("extra", [[], ["--no-pool"]])
def test_a_vit_gives_its_class_token_after_the_last_norm(standalone_pieces, extra):
    # what tllib's recipe got from a ViT: the class token of the normed last layer, the input of its head
    model = classifier("vit_tiny_patch16_224", *extra)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        tokens = model.backbone.forward_features(x)             # (2, 1 + 196, 192)
        torch.testing.assert_close(features(model, x), tokens[:, 0])
        assert model(x).shape == (2, 5)


@pytest.mark.parametrize("extra", [[], ["--no-pool"]])
def test_a_timm_cnn_gives_the_average_of_its_last_maps(standalone_pieces, extra):
    model = classifier("resnet10t", *extra)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        maps = model.backbone.forward_features(x)               # (2, 512, 2, 2)
        torch.testing.assert_close(features(model, x), maps.mean(dim=(2, 3)))


def test_lenet_needs_no_flag_and_a_resnet_pools_its_maps(standalone_pieces):
    # (a ResNet with --no-pool stops at the flag check: tests/test_input_errors.py)
    x = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(features(classifier("lenet"), x), features(classifier("lenet", "--no-pool"), x))
    with torch.no_grad():
        maps = classifier("resnet18")
        y = torch.randn(2, 3, 64, 64)
        torch.testing.assert_close(features(maps, y), maps.backbone(y).mean(dim=(2, 3)))


def test_a_checkpoint_of_tllibs_resnet_loads_without_its_unused_fc_layer(tmp_path):
    # tllib's ResNet backbones keep torchvision's fc layer, unused: its best.pth holds backbone.fc.* as well
    from ila_tllib.engine.checkpoint import load_weights
    from ila_tllib.engine.errors import UsageError
    trained, fresh = classifier("resnet18"), classifier("resnet18")
    with torch.no_grad():
        for p in trained.parameters():
            p.add_(0.01)
    state = dict(trained.state_dict(), **{"backbone.fc.weight": torch.randn(1000, 512),
                                          "backbone.fc.bias": torch.randn(1000)})
    torch.save(state, tmp_path / "best.pth")
    load_weights(fresh, str(tmp_path / "best.pth"), "--phase test", "FIX")
    for name, tensor in trained.state_dict().items():
        assert torch.equal(fresh.state_dict()[name], tensor), name
    # any other key the model lacks is still refused
    torch.save(dict(state, **{"head.extra": torch.zeros(1)}), tmp_path / "other.pth")
    with pytest.raises(UsageError, match=r"1 not in this model, e.g. head.extra"):
        load_weights(fresh, str(tmp_path / "other.pth"), "--phase test", "FIX")
