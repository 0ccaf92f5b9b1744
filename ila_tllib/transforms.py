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
           "output_size", "draws_nothing_at_random"]

#: tllib's crop: its resizings (but ``res.``) resize to 256, then crop this square
CROP = 224


class ResizeImage:
    """Resize a PIL image to ``size`` x ``size`` with PIL's default filter, as tllib's ``ResizeImage``."""

    def __init__(self, size: int):
        self.size = (int(size), int(size))

    def __call__(self, image: Image.Image) -> Image.Image:
        return image.resize(self.size)   # no filter given: PIL's default, the one tllib gets

    def __repr__(self):
        return "{}(size={})".format(type(self).__name__, self.size)


#: --train-resizing -> its steps, from (--resize-size, --scale, --ratio)
TRAIN_STEPS = {
    'default': lambda size, scale, ratio: [ResizeImage(256),
                                           T.RandomResizedCrop(CROP, scale=tuple(scale), ratio=tuple(ratio))],
    'cen.crop': lambda size, scale, ratio: [ResizeImage(256), T.CenterCrop(CROP)],
    'ran.crop': lambda size, scale, ratio: [ResizeImage(256), T.RandomCrop(CROP)],
    'res.': lambda size, scale, ratio: [ResizeImage(size)],
}
#: --val-resizing -> its steps, from --resize-size
VAL_STEPS = {'default': lambda size: [ResizeImage(256), T.CenterCrop(CROP)], 'res.': lambda size: [ResizeImage(size)]}
TRAIN_RESIZINGS, VAL_RESIZINGS = tuple(TRAIN_STEPS), tuple(VAL_STEPS)


def output_size(resizing: str, resize_size: int) -> int:
    """The side of the square images a resizing gives: ``--resize-size`` for ``res.``, tllib's crop otherwise."""
    return resize_size if resizing == 'res.' else CROP


def _unknown(flag, resizing, valid):
    return ValueError(f"unknown {flag} {resizing!r}; choose {' | '.join(valid)}")


def _one_step(steps: list):
    """A resizing as one step, as tllib composes it: its own ``Compose`` when it has two steps, so that the
    log's ``train_transform:`` line reads as tllib's."""
    return steps[0] if len(steps) == 1 else T.Compose(steps)


def get_train_transform(resizing='default', scale=(0.08, 1.0), ratio=(3. / 4., 4. / 3.), hflip=True,
                        resize_size=224, norm_mean=(0.485, 0.456, 0.406), norm_std=(0.229, 0.224, 0.225)):
    if resizing not in TRAIN_STEPS:
        raise _unknown('--train-resizing', resizing, TRAIN_RESIZINGS)
    chosen = [_one_step(TRAIN_STEPS[resizing](resize_size, scale, ratio))] + ([T.RandomHorizontalFlip()] if hflip
                                                                              else [])
    return T.Compose(chosen + [T.ToTensor(), T.Normalize(mean=norm_mean, std=norm_std)])


def get_val_transform(resizing='default', resize_size=224, norm_mean=(0.485, 0.456, 0.406),
                      norm_std=(0.229, 0.224, 0.225)):
    if resizing not in VAL_STEPS:
        raise _unknown('--val-resizing', resizing, VAL_RESIZINGS)
    return T.Compose([_one_step(VAL_STEPS[resizing](resize_size)), T.ToTensor(),
                      T.Normalize(mean=norm_mean, std=norm_std)])


# transforms that draw nothing at random: their output can be computed once per image
_DETERMINISTIC = (ResizeImage, T.Resize, T.CenterCrop, T.ToTensor, T.Normalize, T.Grayscale)


def draws_nothing_at_random(transform) -> bool:
    if isinstance(transform, T.Compose):
        return all(draws_nothing_at_random(t) for t in transform.transforms)
    return isinstance(transform, _DETERMINISTIC)
