"""examples/domain_adaptation/utils.py under tllib's names and signatures: a script written against tllib's
``utils.py`` runs on it unchanged."""
import os
import subprocess
import sys
import textwrap

import torchvision.transforms as T

from helpers import SCRIPTS, make_image_list, script_env

sys.path.insert(0, SCRIPTS)
import utils  # noqa: E402

from ila_tllib.datasets import build_domain, read_labels  # noqa: E402


def test_train_transform_takes_tllibs_keywords():
    plain = utils.get_train_transform('res.', random_horizontal_flip=False, resize_size=28)
    assert not any(isinstance(t, (T.RandomHorizontalFlip, T.ColorJitter)) for t in plain.transforms)
    jitter = utils.get_train_transform('res.', random_horizontal_flip=True, random_color_jitter=True, resize_size=28)
    names = [type(t).__name__ for t in jitter.transforms]
    assert names == ["ResizeImage", "RandomHorizontalFlip", "ColorJitter", "ToTensor", "Normalize"]
    assert jitter.transforms[2].brightness == (0.5, 1.5) and jitter.transforms[2].hue == (-0.5, 0.5)
    # an AutoAugment policy takes the jitter's place, before ToTensor
    policy = utils.get_train_transform(auto_augment='rand-m9-mstd0.5', random_color_jitter=True)
    names = [type(t).__name__ for t in policy.transforms]
    assert names[-3:] == ["RandAugment", "ToTensor", "Normalize"] and "ColorJitter" not in names


def test_get_dataset_has_tllibs_signature_and_returns(tmp_path):
    root = make_image_list(str(tmp_path / "data"))
    train_t = utils.get_train_transform('res.', random_horizontal_flip=False, resize_size=28)
    val_t = utils.get_val_transform('res.', 28)
    source, target, val, test, num_classes, names = utils.get_dataset('ImageList', root, ['src'], ['tgt'], train_t,
                                                                       val_t)
    alone = build_domain('ImageList', root, 'tgt')
    assert num_classes == len(names) == 3 and test is val
    # tllib's MultipleDomainsDataset: items end with the domain's number, sources from 0, targets after them
    assert len(source[0]) == 3 and source[0][2] == 0 and source[-1][2] == 0 and target[0][2] == 1
    assert target.domain_names == ['tgt'] and target.domain_ids == [1] and target[0][1] == alone[0][1]
    assert source.datasets[0].transform is train_t and target.datasets[0].transform is train_t
    assert val.datasets[0].transform is val_t
    assert read_labels(target.datasets[0]) == read_labels(alone) and len(val) == len(alone)


def test_a_script_written_against_tllibs_utils_runs(tmp_path):
    # the calls of tllib's scripts, in their order: transforms, datasets, backbone, source-only epoch, evaluation
    root = make_image_list(str(tmp_path / "data"))
    script = tmp_path / "erm.py"
    script.write_text(textwrap.dedent(f"""
        import argparse, sys
        import torch
        from torch.optim import SGD
        from torch.optim.lr_scheduler import LambdaLR
        from torch.utils.data import DataLoader
        sys.path.insert(0, {SCRIPTS!r})
        import utils
        from ila_tllib import backend

        args = argparse.Namespace(iters_per_epoch=3, print_freq=1, per_class_eval=True)
        train_t = utils.get_train_transform('res.', random_horizontal_flip=False, resize_size=32,
                                            norm_mean=(0.5,) * 3, norm_std=(0.5,) * 3)
        val_t = utils.get_val_transform('res.', 32, (0.5,) * 3, (0.5,) * 3)
        source, target, val, test, num_classes, args.class_names = utils.get_dataset(
            'ImageList', {root!r}, ['src'], ['tgt'], train_t, val_t)
        assert 'dtn' in utils.get_model_names()
        model = backend.ImageClassifier(utils.get_model('dtn', pretrain=False), num_classes, bottleneck_dim=16,
                                        pool_layer=torch.nn.Identity())
        optimizer = SGD(model.get_parameters(), 0.01, momentum=0.9)
        scheduler = LambdaLR(optimizer, lambda x: 1.0)
        source_iter = backend.ForeverDataIterator(DataLoader(source, batch_size=4, shuffle=True))
        utils.empirical_risk_minimization(source_iter, model, optimizer, scheduler, 0, args, 'cpu')
        acc = utils.validate(DataLoader(test, batch_size=4), model, args, 'cpu')
        print('returned', acc)
    """))
    env = script_env("standalone", PYTHONPATH=os.pathsep.join([os.path.dirname(SCRIPTS)] + sys.path))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Epoch: [0][0/3]" in done.stdout and "Epoch: [0][2/3]" in done.stdout and "Cls Acc" in done.stdout
    printed = [line for line in done.stdout.splitlines() if line.startswith(" * Acc@1")]
    returned = float(done.stdout.split("returned ")[1])
    assert len(printed) == 1 and abs(float(printed[0].split()[-1]) - returned) < 1e-3
    assert "global correct" in done.stdout   # the per-class table of --per-class-eval


def test_timm_cnns_give_feature_maps_as_tllibs_get_model_does():
    # tllib's get_model removes a timm model's classifier and global pool, so a CNN gives maps and the
    # classifier's default pool layer pools them; it gave pooled vectors, which that pool layer refuses
    import timm
    import torch
    from ila_tllib import backend
    images = torch.randn(2, 3, 64, 64)
    for arch, channels in (("resnet10t", 512), ("mobilenetv3_small_050", 1024)):
        backbone = utils.get_model(arch, pretrain=False).eval()
        pooled = timm.create_model(arch, pretrained=False, num_classes=0).eval()
        maps = backbone(images)
        assert maps.dim() == 4 and maps.shape[1] == backbone.out_features == channels
        if arch == "resnet10t":     # timm's own pooled vector is the mean of these maps
            pooled.load_state_dict(backbone.state_dict())
            assert torch.allclose(maps.mean((2, 3)), pooled(images), atol=1e-5)
        classifier = backend.ImageClassifier(backbone, 7, bottleneck_dim=16).eval()   # tllib's default pool layer
        assert classifier(images).shape == (2, 7)
    # a ViT has no maps: one vector per image, for --no-pool (pool_layer=Identity), as with the timm of tllib's day
    vit = utils.get_model("vit_tiny_patch16_224", pretrain=False).eval()
    tokens = torch.randn(2, 3, 224, 224)
    assert vit(tokens).shape == (2, vit.out_features) == (2, 192)
    classifier = backend.ImageClassifier(vit, 7, bottleneck_dim=16, pool_layer=torch.nn.Identity()).eval()
    assert classifier(tokens).shape == (2, 7)
