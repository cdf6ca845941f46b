"""ImageProcessor equals transformers' CLIPImageProcessor (PIL backend) on awkward inputs."""

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import CLIPImageProcessorPil

from miniclip.image import ImageProcessor

SIZES = [(1, 1), (3, 50), (333, 17), (32, 32), (225, 223), (31, 30)]  # (width, height)
CLIP_SIZES = [(1, 1), (224, 224), (225, 223), (300, 200), (199, 301), (31, 30)]


def picture(mode: str, width: int, height: int, seed: int = 0) -> Image.Image:
    """Random pixels in any PIL mode; 'PT' is a palette image with a transparent colour."""
    rgba = np.random.default_rng(seed).integers(0, 256, (height, width, 4), dtype=np.uint8)
    image = Image.fromarray(rgba, "RGBA")
    if mode in ("P", "PT"):
        image = image.convert("RGB").quantize(16)
        if mode == "PT":
            image.info["transparency"] = 3
        return image
    return image.convert(mode)


def hugging_face(size: int) -> CLIPImageProcessorPil:
    return CLIPImageProcessorPil(
        size={"shortest_edge": size}, crop_size={"height": size, "width": size}
    )


def assert_equal_to_transformers(images: list[Image.Image], size: int) -> None:
    expected = hugging_face(size)(images, return_tensors="pt")["pixel_values"]
    got = ImageProcessor(size)(images)["pixel_values"]
    assert got.shape == (len(images), 3, size, size) and got.dtype == torch.float32
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("mode", ["RGB", "L", "P", "PT", "RGBA", "LA", "CMYK", "1", "I"])
def test_equals_transformers_on_odd_sizes_and_modes(mode):
    assert_equal_to_transformers(
        [picture(mode, w, h, seed=k) for k, (w, h) in enumerate(SIZES)], 32
    )


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA"])
def test_equals_transformers_at_clip_size(mode):
    images = [picture(mode, w, h, seed=k) for k, (w, h) in enumerate(CLIP_SIZES)]
    assert_equal_to_transformers(images, 224)


def test_single_image_gives_a_batch_of_one():
    got = ImageProcessor(16)(picture("RGB", 40, 20))["pixel_values"]
    assert got.shape == (1, 3, 16, 16)


def test_transparent_pixels_become_white_as_in_transformers():
    clear = Image.new("RGBA", (8, 8), (255, 0, 0, 0))
    white = ImageProcessor(8)(Image.new("RGB", (8, 8), "white"))["pixel_values"]
    torch.testing.assert_close(ImageProcessor(8)(clear)["pixel_values"], white)


def test_saved_config_loads_in_transformers_to_the_same_processor(tmp_path):
    mean, std = (0.5, 0.25, 0.125), (0.2, 0.3, 0.4)
    ImageProcessor(48, mean=mean, std=std).save_pretrained(tmp_path)
    loaded = CLIPImageProcessorPil.from_pretrained(tmp_path)
    assert loaded.size["shortest_edge"] == 48 and loaded.crop_size["height"] == 48
    assert list(loaded.image_mean) == list(mean) and list(loaded.image_std) == list(std)
    images = [picture("RGBA", 70, 51), picture("L", 49, 90)]
    torch.testing.assert_close(
        ImageProcessor(48, mean=mean, std=std)(images)["pixel_values"],
        loaded(images, return_tensors="pt")["pixel_values"],
        atol=1e-5,
        rtol=0,
    )


def test_augmentation_is_random_but_seeded():
    images = [picture("RGB", 120, 90, seed=k) for k in range(4)]
    plain = ImageProcessor(32)(images)["pixel_values"]
    first = ImageProcessor(32, augment=True, seed=1)(images)["pixel_values"]
    again = ImageProcessor(32, augment=True, seed=1)(images)["pixel_values"]
    other = ImageProcessor(32, augment=True, seed=2)(images)["pixel_values"]
    assert first.shape == plain.shape
    torch.testing.assert_close(first, again)
    assert not torch.equal(first, plain) and not torch.equal(first, other)
    next_epoch = ImageProcessor(32, augment=True, seed=1)
    next_epoch.set_epoch(1)
    assert not torch.equal(next_epoch(images)["pixel_values"], first)
