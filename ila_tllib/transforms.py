"""tllib's image transforms for domain adaptation (its scripts' ``--train-resizing``/``--val-resizing``).

=============  ===========================================  =====================================
resizing       training                                     validation
=============  ===========================================  =====================================
``default``    resize 256, random resized crop 224          resize 256, centre crop 224
``cen.crop``   resize 256, centre crop 224                  (not offered)
``ran.crop``   resize 256, random crop 224                  (not offered)
``res.``       resize to ``resize_size``                    resize to ``resize_size``
=============  ===========================================  =====================================

then an optional random horizontal flip (training), ``ToTensor`` and ``Normalize``.

"resize" is :class:`ResizeImage`, as tllib's: PIL's ``Image.resize`` with its default filter
(bicubic for grey and RGB images), to a square, ignoring the aspect ratio. torchvision's
``Resize`` would filter bilinearly and give different pixels.
"""
from PIL import Image
import torchvision.transforms as T

__all__ = ["TRAIN_RESIZINGS", "VAL_RESIZINGS", "ResizeImage", "get_train_transform", "get_val_transform",
           "draws_nothing_at_random"]

TRAIN_RESIZINGS = ("default", "cen.crop", "ran.crop", "res.")
VAL_RESIZINGS = ("default", "res.")


class ResizeImage:
    """Resize a PIL image to ``size`` x ``size`` with PIL's default filter, as tllib's ``ResizeImage``."""

    def __init__(self, size: int):
        self.size = (int(size), int(size))

    def __call__(self, image: Image.Image) -> Image.Image:
        return image.resize(self.size)   # no filter given: PIL's default, the one tllib gets

    def __repr__(self):
        return "{}(size={})".format(type(self).__name__, self.size)


def _resize(size):
    return ResizeImage(size)


def _unknown(flag, resizing, valid):
    return ValueError(f"unknown {flag} {resizing!r}; choose {' | '.join(valid)}")


def get_train_transform(resizing='default', scale=(0.08, 1.0), ratio=(3. / 4., 4. / 3.), hflip=True,
                        resize_size=224, norm_mean=(0.485, 0.456, 0.406), norm_std=(0.229, 0.224, 0.225)):
    steps = {
        'default': lambda: [_resize(256), T.RandomResizedCrop(224, scale=tuple(scale), ratio=tuple(ratio))],
        'cen.crop': lambda: [_resize(256), T.CenterCrop(224)],
        'ran.crop': lambda: [_resize(256), T.RandomCrop(224)],
        'res.': lambda: [_resize(resize_size)],
    }
    if resizing not in steps:
        raise _unknown('--train-resizing', resizing, TRAIN_RESIZINGS)
    chosen = steps[resizing]() + ([T.RandomHorizontalFlip()] if hflip else [])
    return T.Compose(chosen + [T.ToTensor(), T.Normalize(mean=norm_mean, std=norm_std)])


def get_val_transform(resizing='default', resize_size=224, norm_mean=(0.485, 0.456, 0.406),
                      norm_std=(0.229, 0.224, 0.225)):
    steps = {'default': lambda: [_resize(256), T.CenterCrop(224)], 'res.': lambda: [_resize(resize_size)]}
    if resizing not in steps:
        raise _unknown('--val-resizing', resizing, VAL_RESIZINGS)
    return T.Compose(steps[resizing]() + [T.ToTensor(), T.Normalize(mean=norm_mean, std=norm_std)])


# transforms that draw nothing at random: their output can be computed once per image
_DETERMINISTIC = (ResizeImage, T.Resize, T.CenterCrop, T.ToTensor, T.Normalize, T.Grayscale)


def draws_nothing_at_random(transform) -> bool:
    if isinstance(transform, T.Compose):
        return all(draws_nothing_at_random(t) for t in transform.transforms)
    return isinstance(transform, _DETERMINISTIC)
