"""The resizing of tllib's transforms, checked against PIL itself (tllib need not be installed)."""
import numpy as np
import pytest
import torch
import torchvision.transforms as T
from PIL import Image

from ila_tllib.transforms import ResizeImage, draws_nothing_at_random, get_train_transform, get_val_transform


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_resize_is_pils_bicubic_to_a_square(mode):
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 255, (37, 50) + ((3,) if mode == "RGB" else ()), dtype=np.uint8), mode)
    for size in (28, 64):
        resized = ResizeImage(size)(image)
        expected = image.resize((size, size), Image.Resampling.BICUBIC)   # PIL's default for L and RGB
        assert resized.size == (size, size) and np.array_equal(np.asarray(resized), np.asarray(expected))
        bilinear = T.Resize((size, size))(image)                            # what torchvision's Resize gives
        assert not np.array_equal(np.asarray(resized), np.asarray(bilinear))


def test_transforms_resize_before_cropping_and_cache_recognises_them():
    image = Image.fromarray(np.random.default_rng(1).integers(0, 255, (300, 260, 3), dtype=np.uint8))
    val = get_val_transform("default")
    expected = T.Compose([T.CenterCrop(224), T.ToTensor(), T.Normalize((0.485, 0.456, 0.406),
                                                                         (0.229, 0.224, 0.225))])(
        image.resize((256, 256), Image.Resampling.BICUBIC))
    assert torch.equal(val(image), expected)
    assert "ResizeImage(size=(256, 256))" in repr(val)     # tllib's line in the log
    # --cache-images transforms an image once only when nothing is drawn at random
    assert draws_nothing_at_random(val) and draws_nothing_at_random(get_train_transform("res.", hflip=False))
    assert draws_nothing_at_random(get_train_transform("cen.crop", hflip=False))
    assert not draws_nothing_at_random(get_train_transform("res."))          # flips
    assert not draws_nothing_at_random(get_train_transform("ran.crop", hflip=False))


@pytest.mark.parametrize("hflip", [False, True])
def test_cached_images_are_decoded_once_and_give_the_same_tensors(tmp_path, hflip):
    # --cache-images: each file read once over two passes; a transform that draws nothing runs once too
    from helpers import make_image_list
    from ila_tllib.datasets import ImageListDomains
    from ila_tllib.engine.data import cache_images

    root = make_image_list(tmp_path / "data", per_class=2)
    transform = get_train_transform('res.', hflip=hflip, resize_size=28, norm_mean=(0.5,), norm_std=(0.5,))

    def build():
        dataset = ImageListDomains(root, "src", transform=transform, mode="L")
        reads = []
        load = dataset.loader
        dataset.loader = lambda path: reads.append(path) or load(path)
        return dataset, reads
    plain, plain_reads = build()
    cached, cached_reads = build()
    cache_images(cached)
    for _ in range(2):
        for i in range(len(plain)):
            torch.manual_seed(i)
            expected = plain[i][0]
            torch.manual_seed(i)
            torch.testing.assert_close(cached[i][0], expected, rtol=0, atol=0)
    assert len(plain_reads) == 2 * len(plain) and sorted(cached_reads) == sorted(set(plain_reads))
    assert (cached.transform is None) == (not hflip)      # folded into the cache only when nothing is random
