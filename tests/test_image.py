"""ImageProcessor equals transformers' CLIPImageProcessor (PIL backend) on awkward inputs."""

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import CLIPImageProcessorPil

from miniclip.image import ImageProcessor, augment_image, random_affine

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


def dot(size: int = 48, at: tuple[int, int] = (24, 24), ground=(30, 60, 90)) -> Image.Image:
    """A white 4 x 4 square centred on `at` (x, y), on a plain ground."""
    image = Image.new("RGB", (size, size), ground)
    image.paste((255, 255, 255), (at[0] - 2, at[1] - 2, at[0] + 2, at[1] + 2))
    return image


def centroid(image: Image.Image) -> np.ndarray:
    """(x, y) of the bright pixels' centre, in the same frame as `dot`'s `at`."""
    bright = np.asarray(image.convert("L"), dtype=np.float64) > 160
    ys, xs = np.nonzero(bright)
    return np.array([xs.mean(), ys.mean()]) + 0.5  # pixel k covers [k, k + 1)


def test_random_affine_zooms_turns_and_moves_about_the_centre():
    rng = np.random.default_rng(0)
    still = random_affine(dot(at=(34, 24)), rng, scale=(1, 1), degrees=0, shift=0)
    assert np.array_equal(np.asarray(still), np.asarray(dot(at=(34, 24))))
    zoomed = random_affine(dot(at=(34, 24)), rng, scale=(2, 2), degrees=0, shift=0)
    np.testing.assert_allclose(centroid(zoomed), (44, 24), atol=0.5)  # 10 from the centre -> 20
    turned = [centroid(random_affine(dot(at=(40, 24)), np.random.default_rng(seed), scale=(1, 1),
                                     degrees=90, shift=0)) for seed in range(5)]
    for place in turned:  # as far from the centre as before...
        assert np.linalg.norm(place - 24) == pytest.approx(16, abs=0.7)
    assert np.ptp(np.array(turned), axis=0).max() > 8  # ...at angles that differ
    moved = random_affine(dot(), np.random.default_rng(1), scale=(1, 1), degrees=0, shift=0.2)
    offset = centroid(moved) - 24
    assert 1 < np.abs(offset).max() <= 0.2 * 48 + 0.5


def test_random_affine_fills_the_uncovered_corners_with_the_ground():
    image = dot(ground=(30, 60, 90))
    out = random_affine(image, np.random.default_rng(0), scale=(0.5, 0.5), degrees=30, shift=0)
    assert out.size == image.size and out.mode == "RGB"
    assert out.getpixel((0, 0)) == out.getpixel((47, 47)) == (30, 60, 90)


def test_augment_image_draws_each_kind_from_the_generator_it_is_given():
    image = picture("RGBA", 40, 40)
    assert augment_image(image, "none", np.random.default_rng(0)) is image
    for kind in ("crop", "affine"):
        first = augment_image(image, kind, np.random.default_rng(3))
        assert first.size == image.size and first.mode == "RGB"
        assert first == augment_image(image, kind, np.random.default_rng(3))
        assert first != augment_image(image, kind, np.random.default_rng(4))
    with pytest.raises(ValueError, match="'flip' is not one of"):
        augment_image(image, "flip", np.random.default_rng(0))
