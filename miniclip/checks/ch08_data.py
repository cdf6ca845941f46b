"""Checks of the data pipeline: image preprocessing and batching (chapter 08)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from functools import cache

import numpy as np
import torch
from PIL import Image

from miniclip import image as image_module
from miniclip.checks.core import CheckFailed, compare, describe, exercise
from miniclip.image import CLIP_MEAN, CLIP_STD, ImageProcessor, to_rgb

__all__ = ["check_center_crop", "check_collate", "check_preprocess", "check_resize_shortest_edge"]

RESIZE_CASES = [((333, 17), 32), ((17, 333), 32), ((45, 29), 32), ((300, 200), 64), ((40, 40), 32),
                ((80, 49), 32)]  # 49 * (32 / 49) = 31.999...: a scale factor loses a pixel
CROP_CASES = [((37, 35), 32), ((32, 45), 32), ((50, 32), 32), ((64, 64), 64),
              ((40, 37), 31)]  # an odd size: half of it rounds
PREPROCESS_CASES = [("RGB", (333, 17)), ("L", (31, 30)), ("RGBA", (225, 223)), ("P", (50, 3)),
                    ("LA", (64, 48)), ("1", (1, 1))]


def picture(mode: str, width: int, height: int, seed: int = 0) -> Image.Image:
    """Random pixels in a PIL mode (alpha random too, so that transparency matters)."""
    rgba = np.random.default_rng(seed).integers(0, 256, (height, width, 4), dtype=np.uint8)
    image = Image.fromarray(rgba, "RGBA")
    if mode == "P":
        return image.convert("RGB").quantize(16)
    return image.convert(mode)


def pixels(image: Image.Image) -> torch.Tensor:
    """(H, W, C) float tensor of a PIL image's values, for comparisons."""
    return torch.from_numpy(np.asarray(image, dtype=np.float32).copy())


def size_mistake(got: tuple[int, int], mistakes: dict[tuple[int, int], str]) -> str:
    hint = mistakes.get(tuple(got))
    return f"\nHint: {hint}" if hint else ""


def pil_answer(what: str, got) -> Image.Image:
    if not isinstance(got, Image.Image):
        raise CheckFailed(f"{what} returned {describe(got)}; return a PIL image (Image.Image)")
    return got


# ---- resize_shortest_edge and center_crop --------------------------------------------------


@exercise("resize_shortest_edge", image_module.resize_shortest_edge)
def check_resize_shortest_edge(resize_shortest_edge: Callable) -> str:
    from transformers.image_transforms import get_resize_output_image_size

    for seed, ((width, height), size) in enumerate(RESIZE_CASES):
        image = picture("RGB", width, height, seed=seed)
        what = f"resize_shortest_edge({width}×{height} image, {size})"
        got = pil_answer(what, resize_shortest_edge(image, size))
        expected = image_module.resize_shortest_edge(image, size)
        hf_height, hf_width = get_resize_output_image_size(
            np.asarray(image), size, default_to_square=False, input_data_format="channels_last")
        if expected.size != (hf_width, hf_height):
            raise CheckFailed(f"{what}: miniclip and transformers disagree; please report this")
        short, long = sorted((width, height))
        rounded = round(size * long / short)
        wrong_sizes = {
            (size, size): "that squashes the image into a square; keep its aspect ratio, so "
                          "that only the shorter side becomes `size`.",
            (expected.size[1], expected.size[0]):
                "width and height are swapped: PIL sizes are (width, height).",
        }
        for rounding in (int, round):
            wrong_sizes[tuple(rounding(side * size / long) for side in (width, height))] = (
                "that makes the *longer* side `size`; CLIP makes the shorter side `size`, "
                "then crops the longer one.")
        scale = size / short
        scaled = (int(width * scale), int(height * scale))
        if scaled != expected.size:
            wrong_sizes[scaled] = (
                f"the shorter side came out {min(scaled)}, not {size}: {short} * ({size} / {short}) "
                f"= {short * scale!r} in floating point, which int() cuts down. Set the shorter side "
                "to exactly `size` and compute only the longer one: int(size * long / short).")
        if rounded != int(size * long / short):
            wrong_sizes[(rounded, size) if width > height else (size, rounded)] = (
                "the longer side was rounded; transformers truncates it: "
                "int(size * long / short).")
        if got.size != expected.size:
            raise CheckFailed(f"{what}: size {got.size} (width, height), expected {expected.size}"
                              + size_mistake(got.size, wrong_sizes))
        mistakes = [(pixels(image.resize(expected.size, resample)), hint) for resample, hint in [
            (Image.Resampling.BILINEAR, "that is bilinear resampling; CLIP's is bicubic "
                                        "(Image.Resampling.BICUBIC)."),
            (Image.Resampling.NEAREST, "that is nearest-neighbour resampling; CLIP's is bicubic "
                                       "(Image.Resampling.BICUBIC)."),
        ]]
        compare(f"{what}, pixels (height, width, channel)", pixels(got), pixels(expected),
                mistakes, atol=0.5, rtol=0)
    return ("shorter side to `size`, longer side truncated, bicubic; the sizes transformers "
            "computes (get_resize_output_image_size)")


@exercise("center_crop", image_module.center_crop)
def check_center_crop(center_crop: Callable) -> str:
    from transformers.image_transforms import center_crop as hf_center_crop

    for seed, ((width, height), size) in enumerate(CROP_CASES):
        image = picture("RGB", width, height, seed=10 + seed)
        what = f"center_crop({width}×{height} image, {size})"
        got = pil_answer(what, center_crop(image, size))
        expected = image_module.center_crop(image, size)
        theirs = hf_center_crop(np.asarray(image), (size, size), input_data_format="channels_last")
        if not np.array_equal(np.asarray(expected), theirs):
            raise CheckFailed(f"{what}: miniclip and transformers disagree; please report this")
        if got.size != (size, size):
            raise CheckFailed(f"{what}: size {got.size} (width, height), expected ({size}, {size}); "
                              "PIL's crop box is (left, top, right, bottom), right and bottom "
                              "excluded: right = left + size")
        left, top = (width - size) // 2, (height - size) // 2
        up_left, up_top = (width - size + 1) // 2, (height - size + 1) // 2
        mistakes = [
            (pixels(image.crop((up_left, up_top, up_left + size, up_top + size))),
             "the extra pixel of an odd margin went left or up; transformers puts it right and "
             "down: left = (width - size) // 2, top = (height - size) // 2."),
            (pixels(image.crop((top, left, top + size, left + size))),
             "left and top are swapped: PIL's crop box is (left, top, right, bottom), left "
             "from the width and top from the height."),
            (pixels(image.crop((0, 0, size, size))), "that is the top-left corner, not the centre."),
        ]
        rounded_left, rounded_top = round((width - size) / 2), round((height - size) / 2)
        if (rounded_left, rounded_top) not in ((left, top), (up_left, up_top)):  # one of each
            mistakes.append((pixels(image.crop((rounded_left, rounded_top, rounded_left + size,
                                                rounded_top + size))),
                             "Python's round() rounds halves to the even number, so an odd margin "
                             "goes left in one image and right in another: left = (width - size) "
                             "// 2, top = (height - size) // 2."))
        compare(f"{what}, pixels (row, column, channel)", pixels(got), pixels(expected), mistakes,
                atol=0.5, rtol=0)
    return ("the central square, the odd pixel right and down; equal to transformers' "
            "center_crop")


# ---- the whole preprocessing ---------------------------------------------------------------


def normalised(image: Image.Image, size: int, mean=CLIP_MEAN, std=CLIP_STD, scale: float = 1 / 255,
               rgb: Callable = to_rgb, squash: bool = False, crop_first: bool = False) -> torch.Tensor:
    """The preprocessing with knobs that reproduce common mistakes; (3, size, size)."""
    image = rgb(image)
    if squash:
        image = image.resize((size, size), Image.Resampling.BICUBIC)
    elif crop_first:
        short = min(image.size)
        image = image_module.resize_shortest_edge(image_module.center_crop(image, short), size)
    else:
        image = image_module.center_crop(image_module.resize_shortest_edge(image, size), size)
    values = np.asarray(image, dtype=np.float32) * scale
    values = (values - np.array(mean, dtype=np.float32)) / np.array(std, dtype=np.float32)
    return torch.from_numpy(values.transpose(2, 0, 1).copy())


def preprocess(image: Image.Image, size: int) -> torch.Tensor:
    """The reference answer: any PIL image to CLIP's normalised (3, size, size) float32 tensor."""
    image = image_module.center_crop(image_module.resize_shortest_edge(to_rgb(image), size), size)
    values = np.asarray(image, dtype=np.float32) / 255  # (size, size, 3), in [0, 1]
    mean, std = np.array(CLIP_MEAN, dtype=np.float32), np.array(CLIP_STD, dtype=np.float32)
    values = (values - mean) / std
    return torch.from_numpy(values.transpose(2, 0, 1).copy())  # (3, size, size)


@exercise("preprocess", preprocess)
def check_preprocess(preprocess: Callable) -> str:
    from transformers import CLIPImageProcessorPil

    size = 32
    theirs = CLIPImageProcessorPil(size={"shortest_edge": size}, crop_size={"height": size, "width": size})
    for seed, (mode, (width, height)) in enumerate(PREPROCESS_CASES):
        image = picture(mode, width, height, seed=20 + seed)
        what = f"preprocess({mode} image {width}×{height}, size={size})"
        got = preprocess(image, size)
        if isinstance(got, np.ndarray):
            raise CheckFailed(f"{what} returned a numpy array ({got.dtype}, shape {got.shape}); "
                              "return a torch tensor: torch.from_numpy(array)")
        if isinstance(got, torch.Tensor) and tuple(got.shape) == (size, size, 3):
            raise CheckFailed(f"{what}: shape {tuple(got.shape)}, expected (3, {size}, {size})\n"
                              "Hint: PIL and numpy put channels last, (H, W, C); CLIP wants them "
                              "first: .transpose(2, 0, 1) on the array (or .permute on a tensor).")
        if isinstance(got, torch.Tensor) and got.is_floating_point() and got.dtype != torch.float32:
            hint = ("np.asarray(image) / 255 and the tuples CLIP_MEAN and CLIP_STD give float64; "
                    "read the pixels with np.asarray(image, dtype=np.float32) and the constants "
                    "with np.array(..., dtype=np.float32), or end with .float()."
                    if got.dtype == torch.float64 else "end with .float(); a model in another "
                    "precision casts its inputs itself.")
            raise CheckFailed(f"{what}: dtype {got.dtype}, expected torch.float32, the dtype of "
                              f"the model's weights\nHint: {hint}")
        expected = theirs(image, return_tensors="pt")["pixel_values"][0]
        channels_last = expected.permute(1, 2, 0)  # (H, W, C), as the pixels come from PIL
        mistakes = [
            (channels_last.reshape(3, size, size),
             ("reshape(3, H, W) keeps the values in their (H, W, C) order and cuts them into three "
              "blocks, each mixing the channels; move the channel axis instead: "
              ".transpose(2, 0, 1) on the array (or .permute(2, 0, 1) on a tensor).")),
            (expected.transpose(1, 2),
             ("height and width are swapped: transpose(2, 1, 0) gives (C, W, H), the image "
              "mirrored along its diagonal; transpose(2, 0, 1) keeps rows as rows.")),
            (normalised(image, size, mean=(0, 0, 0), std=(1, 1, 1)),
             "not normalised: subtract CLIP_MEAN and divide by CLIP_STD, channel by channel."),
            (normalised(image, size, scale=1.0),
             "not rescaled: divide the 0-255 values by 255 before normalising."),
            (normalised(image, size, mean=CLIP_STD, std=CLIP_MEAN),
             "mean and std are swapped: (x - mean) / std."),
            (normalised(image, size, rgb=lambda picture: picture.convert("RGB")),
             "transparent pixels kept their hidden colour: image.convert('RGB') drops the "
             "alpha channel; to_rgb lays the image on white first, as transformers does."),
            (normalised(image, size, squash=True),
             "the image was squashed to a square; resize the shortest edge, then crop."),
            (normalised(image, size, crop_first=True),
             "cropped before resizing; resize the shortest edge to `size` first, then crop."),
        ]
        compare(f"{what}, against transformers' CLIPImageProcessor", got, expected, mistakes,
                atol=1e-5, rtol=0)
        compare(f"{what}, against miniclip's ImageProcessor", got,
                ImageProcessor(size)(image)["pixel_values"][0], atol=1e-5, rtol=0)
    modes = ", ".join(mode for mode, _ in PREPROCESS_CASES)
    return (f"equal to transformers' CLIPImageProcessor (PIL backend) on modes {modes} "
            "and odd sizes")


# ---- batching ------------------------------------------------------------------------------


def collate(items: list[tuple[Image.Image, list[str]]], tokenizer, image_processor: Callable,
            context_length: int) -> dict[str, torch.Tensor]:
    """The reference answer: first captions, cut to context_length, padded to the longest row."""
    rows = []
    for _, captions in items:
        ids = tokenizer.encode(captions[0])[: context_length - 2]  # room for <sot> and <eot>
        rows.append([tokenizer.bos_token_id, *ids, tokenizer.eos_token_id])
    length = max(len(row) for row in rows)
    input_ids = torch.tensor([row + [tokenizer.pad_token_id] * (length - len(row)) for row in rows])
    attention_mask = torch.tensor([[1] * len(row) + [0] * (length - len(row)) for row in rows])
    pixel_values = image_processor([image for image, _ in items])["pixel_values"]
    return {"pixel_values": pixel_values, "input_ids": input_ids, "attention_mask": attention_mask}


BATCHES = {32: (2, 8, 4, 6, 11, 10), 16: (2, 0, 4, 5)}  # context_length: shapes items


@cache
def shapes_setting() -> tuple[list, object]:
    """The first 64 shapes items and a small BPE learnt from their captions."""
    from miniclip.data import load_dataset
    from miniclip.tokenizer import Tokenizer

    shapes = load_dataset("shapes", image_size=40, length=64)
    items = [shapes[i] for i in range(64)]
    return items, Tokenizer.train([caption for _, captions in items for caption in captions], 600)


def padded_wrong(items, tokenizer, context_length: int, pad: int | None = None, longest=True,
                 keep_eos=True, left=False) -> tuple[torch.Tensor, torch.Tensor]:
    """input_ids and attention_mask built with knobs that reproduce common mistakes."""
    rows = []
    for _, captions in items:
        row = [tokenizer.bos_token_id, *tokenizer.encode(captions[0]), tokenizer.eos_token_id]
        rows.append([*row[:context_length - 1], tokenizer.eos_token_id] if keep_eos
                    and len(row) > context_length else row[:context_length])
    length = max(map(len, rows)) if longest else context_length
    pad = tokenizer.pad_token_id if pad is None else pad
    ids, mask = [], []
    for row in rows:
        filler = [pad] * (length - len(row))
        ids.append(filler + row if left else row + filler)
        ones, zeros = [1] * len(row), [0] * (length - len(row))
        mask.append(zeros + ones if left else ones + zeros)
    return torch.tensor(ids), torch.tensor(mask)


@cache
def hugging_face_batch(context_length: int) -> dict[str, torch.Tensor]:
    """CLIPProcessor's batch of the same items: CLIPTokenizer on the same vocabulary."""
    from transformers import CLIPImageProcessorPil, CLIPProcessor, CLIPTokenizer

    shapes, tokenizer = shapes_setting()
    items = [shapes[i] for i in BATCHES[context_length]]
    with tempfile.TemporaryDirectory() as folder:
        tokenizer.save_pretrained(folder)
        hf_tokenizer = CLIPTokenizer.from_pretrained(folder)
    processor = CLIPProcessor(image_processor=CLIPImageProcessorPil(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}), tokenizer=hf_tokenizer)
    return dict(processor(text=[captions[0] for _, captions in items],
                          images=[image for image, _ in items], padding=True, truncation=True,
                          max_length=context_length, return_tensors="pt"))


@exercise("collate", collate)
def check_collate(collate_fn: Callable) -> str:
    from miniclip.data import Collate

    shapes, tokenizer = shapes_setting()
    image_processor = ImageProcessor(32)
    lengths = {}
    for context_length, chosen in BATCHES.items():
        items = [shapes[i] for i in chosen]
        what = (f"collate({len(items)} shapes items, tokenizer, ImageProcessor(32), "
                f"context_length={context_length})")
        got = collate_fn(items, tokenizer, image_processor, context_length)
        if not isinstance(got, dict) or set(got) != {"pixel_values", "input_ids", "attention_mask"}:
            keys = sorted(got) if isinstance(got, dict) else describe(got)
            raise CheckFailed(f"{what} returned {keys}; return a dict with the keys "
                              "'pixel_values', 'input_ids' and 'attention_mask'")
        expected = Collate(tokenizer, image_processor, context_length, caption="first",
                           padding="longest")(items)
        wrong = {
            "zeros": padded_wrong(items, tokenizer, context_length, pad=0),
            "max_length": padded_wrong(items, tokenizer, context_length, longest=False),
            "lost eos": padded_wrong(items, tokenizer, context_length, keep_eos=False),
            "left": padded_wrong(items, tokenizer, context_length, left=True),
        }
        compare(f"{what}['input_ids']", got["input_ids"], expected["input_ids"], [
            (wrong["zeros"][0], "padded with 0; pad with tokenizer.pad_token_id (CLIP's is "
                                "<|endoftext|>), as transformers does."),
            (wrong["max_length"][0], "padded to context_length; pad to the longest row of the "
                                     "batch, which is shorter and faster."),
            (wrong["lost eos"][0], "a caption cut to context_length lost its <|endoftext|>: cut "
                                   "the caption's own ids to context_length - 2, then add <sot> "
                                   "and <eot>; the text tower pools at <eot>."),
            (wrong["left"][0], "padded on the left; CLIP pads on the right, after <|endoftext|>."),
        ], exact_dtype=True)
        compare(f"{what}['attention_mask']", got["attention_mask"], expected["attention_mask"], [
            (1 - expected["attention_mask"], "inverted: 1 on tokens, 0 on padding."),
            ((expected["input_ids"] != tokenizer.pad_token_id).long(),
             ("built as input_ids != pad_token_id, which also hides each caption's own "
              "<|endoftext|>: CLIP pads with that same token, and the text tower pools there. "
              "Build the mask from each row's length.")),
            (wrong["left"][1], "padded on the left; CLIP pads on the right."),
        ], exact_dtype=True)
        compare(f"{what}['pixel_values']", got["pixel_values"], expected["pixel_values"],
                exact_dtype=True)
        theirs = hugging_face_batch(context_length)
        for key in ("input_ids", "attention_mask", "pixel_values"):
            compare(f"{what}['{key}'], against transformers' CLIPProcessor", got[key], theirs[key],
                    atol=1e-5, rtol=0)
        lengths[context_length] = expected["attention_mask"].sum(dim=1).tolist()
    return (f"rows of {lengths[32]} tokens padded to {max(lengths[32])}; long captions cut to "
            f"{max(lengths[16])} with <|endoftext|> kept; equal to miniclip's Collate and "
            "transformers' CLIPProcessor")
