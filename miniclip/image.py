"""Image preprocessing: from any PIL image to the normalised square tensor CLIP expects.

Chapter 08 ("Caption data") builds it. The steps are those of the CLIP paper's
released code and of `transformers.CLIPImageProcessor` (PIL backend), in order:

    convert to RGB -> resize the shortest edge (bicubic) -> centre crop -> rescale to [0, 1]
    -> normalise with CLIP's mean and std

so that `ImageProcessor()(images)["pixel_values"]` equals the Hugging Face output.
With `augment=True` the resize and centre crop are replaced by a random resized crop,
the light augmentation used when training on small data, drawn from a generator keyed
by (seed, epoch, DataLoader worker). `augment_image` draws the trainer's augmentations
(`--augment crop|affine`) from a generator the caller keys, one item at a time.
"""

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from miniclip.data.seeding import worker_rng

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode to RGB; transparent pixels are composited onto white, as transformers does."""
    if "A" in image.getbands() or image.info.get("transparency") is not None:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def resize_shortest_edge(image: Image.Image, size: int) -> Image.Image:
    """Bicubic resize so the shorter side is `size`; the longer side is truncated, not rounded."""
    width, height = image.size
    if width <= height:
        new_width, new_height = size, int(size * height / width)
    else:
        new_width, new_height = int(size * width / height), size
    return image.resize((new_width, new_height), Image.Resampling.BICUBIC)


def center_crop(image: Image.Image, size: int) -> Image.Image:
    """The central `size` x `size` square (the extra pixel of an odd margin goes right/bottom)."""
    width, height = image.size
    left, top = (width - size) // 2, (height - size) // 2
    return image.crop((left, top, left + size, top + size))


def random_resized_crop(
    image: Image.Image,
    size: int,
    rng: np.random.Generator,
    scale: tuple[float, float] = (0.9, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
) -> Image.Image:
    """A random crop covering `scale` of the area with aspect ratio in `ratio`, resized to `size`.

    The default scale (0.9, 1.0) is OpenCLIP's: mild, so that captions which name a
    position ("in the top left") stay true of the crop.
    """
    width, height = image.size
    for _ in range(10):
        area = width * height * rng.uniform(*scale)
        aspect = np.exp(rng.uniform(np.log(ratio[0]), np.log(ratio[1])))
        crop_width = round(np.sqrt(area * aspect))
        crop_height = round(np.sqrt(area / aspect))
        if 0 < crop_width <= width and 0 < crop_height <= height:
            left = int(rng.integers(0, width - crop_width + 1))
            top = int(rng.integers(0, height - crop_height + 1))
            box = (left, top, left + crop_width, top + crop_height)
            return image.resize((size, size), Image.Resampling.BICUBIC, box=box)
    return center_crop(resize_shortest_edge(image, size), size)  # no crop fitted: fall back


def random_affine(
    image: Image.Image,
    rng: np.random.Generator,
    scale: tuple[float, float] = (0.75, 1.1),
    degrees: float = 15.0,
    shift: float = 0.06,
) -> Image.Image:
    """The picture zoomed by a factor in `scale`, turned by up to `degrees` either way and
    moved by up to `shift` of its size, about its centre; the same size, the uncovered
    corners filled with the colour of its top-left pixel (the ground, in the built-in data).

    Stronger than the random crop: for a few thousand pictures, each seen once per epoch, a
    model that has to recognise a thing at any slight size, angle and place cannot learn the
    pictures pixel by pixel (the README's emoji results measure what it is worth).
    """
    width, height = image.size
    zoom = rng.uniform(*scale)
    angle = np.deg2rad(rng.uniform(-degrees, degrees))
    dx, dy = rng.uniform(-shift, shift, size=2) * (width, height)
    # PIL maps each output pixel (x, y) to the input pixel A @ (x, y, 1): the inverse map
    cos, sin = np.cos(angle) / zoom, np.sin(angle) / zoom
    cx, cy = width / 2, height / 2
    inverse = (cos, sin, cx - cos * (cx + dx) - sin * (cy + dy),
               -sin, cos, cy + sin * (cx + dx) - cos * (cy + dy))
    return image.transform((width, height), Image.Transform.AFFINE, inverse,
                           Image.Resampling.BICUBIC, fillcolor=image.getpixel((0, 0)))


AUGMENTATIONS = ("none", "crop", "affine")


def augment_image(image: Image.Image, kind: str, rng: np.random.Generator) -> Image.Image:
    """One of `AUGMENTATIONS` applied to a picture: "none" leaves it, "crop" is
    `random_resized_crop` to a square as wide as its shorter side, "affine" is
    `random_affine`, which keeps its size. The image processor then resizes as usual."""
    if kind not in AUGMENTATIONS:
        raise ValueError(f"augmentation {kind!r} is not one of {AUGMENTATIONS}")
    if kind == "none":
        return image
    image = to_rgb(image)
    if kind == "crop":
        return random_resized_crop(image, min(image.size), rng)
    return random_affine(image, rng)


class ImageProcessor:
    """Turns PIL images into CLIP's `pixel_values`, a float32 tensor (B, 3, size, size)."""

    def __init__(
        self,
        size: int = 224,
        mean: tuple[float, float, float] = CLIP_MEAN,
        std: tuple[float, float, float] = CLIP_STD,
        augment: bool = False,
        seed: int = 0,
    ):
        self.size = size
        self.image_mean, self.image_std = tuple(mean), tuple(std)  # Hugging Face's names
        self._mean = np.array(mean, dtype=np.float32)
        self._std = np.array(std, dtype=np.float32)
        self.augment = augment
        self.seed = seed
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Restart the random crops for `epoch`; each DataLoader worker draws its own."""
        self.epoch = epoch
        self._rng: np.random.Generator | None = None  # made on first use, in the worker

    def __call__(self, images: Image.Image | list[Image.Image]) -> dict[str, torch.Tensor]:
        if isinstance(images, Image.Image):
            images = [images]
        pixel_values = np.stack([self.process(image) for image in images])  # (B, 3, S, S)
        return {"pixel_values": torch.from_numpy(pixel_values)}

    def process(self, image: Image.Image) -> np.ndarray:
        """One image to a normalised (3, size, size) float32 array."""
        image = to_rgb(image)
        if self.augment:
            if self._rng is None:
                self._rng = worker_rng(self.seed, self.epoch)
            image = random_resized_crop(image, self.size, self._rng)
        else:
            image = center_crop(resize_shortest_edge(image, self.size), self.size)
        # rescale in float64 then round to float32, exactly as transformers does
        pixels = (np.asarray(image) * (1 / 255)).astype(np.float32)  # (S, S, 3)
        pixels = (pixels - self._mean) / self._std
        return pixels.transpose(2, 0, 1)  # (3, S, S)

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write `preprocessor_config.json` that `CLIPImageProcessor.from_pretrained` reads."""
        config = {
            "image_processor_type": "CLIPImageProcessor",
            "do_convert_rgb": True,
            "do_resize": True,
            "size": {"shortest_edge": self.size},
            "resample": int(Image.Resampling.BICUBIC),
            "do_center_crop": True,
            "crop_size": {"height": self.size, "width": self.size},
            "do_rescale": True,
            "rescale_factor": 1 / 255,
            "do_normalize": True,
            "image_mean": list(self.image_mean),
            "image_std": list(self.image_std),
        }
        path = Path(directory) / "preprocessor_config.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(config, indent=2) + "\n")
        return path
