"""The checks of chapter 08 accept the reference and reject plausible wrong answers, saying why."""

import matplotlib
import numpy as np
import pytest
import torch
from check_cases import reference_and_wrong_answer_tests
from PIL import Image

from miniclip import checks, plots_training
from miniclip.checks.ch08_data import collate
from miniclip.data import load_dataset
from miniclip.image import CLIP_MEAN, CLIP_STD, ImageProcessor, center_crop, resize_shortest_edge, to_rgb


def preprocess(image, size):
    return torch.from_numpy(ImageProcessor(size).process(image))


REFERENCES = [
    (checks.check_resize_shortest_edge, resize_shortest_edge),
    (checks.check_center_crop, center_crop),
    (checks.check_preprocess, preprocess),
    (checks.check_collate, collate),
]


# ---- wrong answers ----------------------------------------------------------------------


def resize_with(rounding=int, longest=False, swap=False, resample=Image.Resampling.BICUBIC):
    def wrong(image, size):
        width, height = image.size
        short, long = sorted((width, height))
        if longest:
            new = (rounding(width * size / long), rounding(height * size / long))
        else:
            other = rounding(size * long / short)
            new = (other, size) if width > height else (size, other)
        if swap:
            new = new[::-1]
        return image.resize(new, resample)
    return wrong


def resize_by_scale_factor(image, size):
    """Both sides times size / short: 49 * (32 / 49) is 31.999..., which int() makes 31."""
    width, height = image.size
    scale = size / min(width, height)
    return image.resize((int(width * scale), int(height * scale)), Image.Resampling.BICUBIC)


WRONG_RESIZES = {
    "rounded": (resize_with(rounding=round), "truncates"),
    "scale factor": (resize_by_scale_factor, "came out 31, not 32"),
    "longest edge": (resize_with(longest=True), "*longer* side"),
    "swapped": (resize_with(swap=True), "swapped"),
    "squashed": (lambda image, size: image.resize((size, size), Image.Resampling.BICUBIC),
                 "squashes"),
    "bilinear": (resize_with(resample=Image.Resampling.BILINEAR), "bilinear"),
    "numpy array": (lambda image, size: np.asarray(resize_shortest_edge(image, size)),
                    "return a PIL image"),
}


def crop_with(offset=0, swap=False, corner=False, extra=0):
    def wrong(image, size):
        width, height = image.size
        left, top = (width - size + offset) // 2, (height - size + offset) // 2
        if swap:
            left, top = top, left
        if corner:
            left = top = 0
        return image.crop((left, top, left + size + extra, top + size + extra))
    return wrong


def rounded_crop(image, size):
    """Python's round() sends one odd margin left (2.5 -> 2) and another right (1.5 -> 2)."""
    width, height = image.size
    left, top = round((width - size) / 2), round((height - size) / 2)
    return image.crop((left, top, left + size, top + size))


def half_sizes_crop(image, size):
    """From the centre, half the size each way: one pixel short when the size is odd."""
    x, y = image.size[0] // 2, image.size[1] // 2
    return image.crop((x - size // 2, y - size // 2, x + size // 2, y + size // 2))


WRONG_CROPS = {
    "rounded halves": (rounded_crop, "rounds halves to the even number"),
    "odd pixel up-left": (crop_with(offset=1), "right and down"),
    "swapped": (crop_with(swap=True), "swapped"),
    "corner": (crop_with(corner=True), "top-left corner"),
    "one too many": (crop_with(extra=1), "right = left + size"),
    "half the size from the centre": (half_sizes_crop, "center_crop(40×37 image, 31): size (30, 30)"),
}


def preprocess_with(mean=CLIP_MEAN, std=CLIP_STD, scale=1 / 255, rgb=to_rgb, channels_last=False,
                    squash=False, dtype=np.float32, to_channels_first=None, tensor=True):
    def wrong(image, size):
        image = rgb(image)
        if squash:
            image = image.resize((size, size), Image.Resampling.BICUBIC)
        else:
            image = center_crop(resize_shortest_edge(image, size), size)
        values = (np.asarray(image, dtype=dtype) * scale - np.array(mean, dtype)) / np.array(std, dtype)
        if not channels_last:
            values = (to_channels_first or (lambda v: v.transpose(2, 0, 1)))(values).copy()
        return torch.from_numpy(values) if tensor else values
    return wrong


WRONG_PREPROCESSING = {
    "not normalised": (preprocess_with(mean=(0, 0, 0), std=(1, 1, 1)), "not normalised"),
    "not rescaled": (preprocess_with(scale=1.0), "not rescaled"),
    "mean and std swapped": (preprocess_with(mean=CLIP_STD, std=CLIP_MEAN), "swapped"),
    "alpha dropped": (preprocess_with(rgb=lambda image: image.convert("RGB")), "drops the alpha"),
    "channels last": (preprocess_with(channels_last=True), "channels"),
    "squashed": (preprocess_with(squash=True), "squashed"),
    "float64": (preprocess_with(dtype=np.float64), "dtype torch.float64, expected torch.float32"),
    "float16": (preprocess_with(dtype=np.float16), "weights\nHint: end with .float(); a model"),
    "a numpy array": (preprocess_with(tensor=False), "return a torch tensor"),
    "reshaped to channels first": (
        preprocess_with(to_channels_first=lambda v: v.reshape(3, *v.shape[:2])), "reshape(3, H, W)"),
    "height and width swapped": (
        preprocess_with(to_channels_first=lambda v: v.transpose(2, 1, 0)), "(C, W, H)"),
}


def collate_with(pad=None, longest=True, keep_eos=True, inverted=False, dtype=None,
                 mask_from_ids=False):
    def wrong(items, tokenizer, image_processor, context_length):
        rows = []
        for _, captions in items:
            row = [tokenizer.bos_token_id, *tokenizer.encode(captions[0]), tokenizer.eos_token_id]
            if keep_eos and len(row) > context_length:
                row = [*row[: context_length - 1], tokenizer.eos_token_id]
            rows.append(row[:context_length])
        length = max(map(len, rows)) if longest else context_length
        filler = tokenizer.pad_token_id if pad is None else pad
        ids = torch.tensor([row + [filler] * (length - len(row)) for row in rows], dtype=dtype)
        mask = torch.tensor([[1] * len(row) + [0] * (length - len(row)) for row in rows], dtype=dtype)
        if mask_from_ids:  # hides <|endoftext|> too: it is also the padding token
            mask = (ids != tokenizer.pad_token_id).long()
        return {"pixel_values": image_processor([image for image, _ in items])["pixel_values"],
                "input_ids": ids, "attention_mask": 1 - mask if inverted else mask}
    return wrong


def collate_list(items, tokenizer, image_processor, context_length):
    return list(collate(items, tokenizer, image_processor, context_length).values())


WRONG_COLLATES = {
    "padded with zeros": (collate_with(pad=0), "padded with 0"),
    "padded to context_length": (collate_with(longest=False), "longest row"),
    "eos cut off": (collate_with(keep_eos=False), "lost its <|endoftext|>"),
    "mask inverted": (collate_with(inverted=True), "inverted"),
    "float ids and mask": (collate_with(dtype=torch.float32),
                           "['input_ids']: dtype torch.float32, expected torch.int64"),
    "mask from the pad id": (collate_with(mask_from_ids=True), "input_ids != pad_token_id"),
    "int32 ids and mask": (collate_with(dtype=torch.int32),
                           "['input_ids']: dtype torch.int32, expected torch.int64 (token ids"),
    "a list": (collate_list, "return a dict"),
}

WRONG_ANSWERS = [
    (checks.check_resize_shortest_edge, WRONG_RESIZES),
    (checks.check_center_crop, WRONG_CROPS),
    (checks.check_preprocess, WRONG_PREPROCESSING),
    (checks.check_collate, WRONG_COLLATES),
]


test_reference_passes_with_one_line, test_wrong_answer_fails_and_says_why = reference_and_wrong_answer_tests(
    REFERENCES, WRONG_ANSWERS)


def test_failure_names_the_case_and_the_entry():
    with pytest.raises(checks.CheckFailed) as failure:
        checks.check_center_crop(WRONG_CROPS["corner"][0])
    message = str(failure.value)
    assert message.startswith("center_crop: center_crop(37×35 image, 32), pixels"), message
    assert "expected" in message


def test_unfinished_exercise_prints_a_line_instead_of_raising(capsys):
    def preprocess(image, size):
        raise NotImplementedError("Your code here")

    checks.check_preprocess(preprocess)
    assert capsys.readouterr().out.startswith("⏳ preprocess: not written yet")


def test_show_solution_prints_the_reference(capsys):
    checks.show_solution("collate")
    assert capsys.readouterr().out.startswith("# miniclip/checks/ch08_data.py\ndef collate(")
    checks.show_solution("preprocess")
    assert capsys.readouterr().out.startswith("# miniclip/checks/ch08_data.py\ndef preprocess(")


# ---- figures ------------------------------------------------------------------------------


def test_dataset_figure_is_closed_and_titled():
    figure = plots_training.dataset_figure(load_dataset("shapes", length=8, image_size=32), 4)
    assert not matplotlib.pyplot.fignum_exists(figure.number)
    assert "4 of 8" in figure._suptitle.get_text()


def test_preprocessing_figure_shows_each_stage_with_its_size():
    image = Image.new("RGB", (90, 60), "red")
    figure = plots_training.preprocessing_figure(image, 32)
    titles = [axis.get_title() for axis in figure.axes if axis.get_title()]
    assert any("90 × 60" in title for title in titles), titles
    assert any("48 × 32" in title for title in titles), titles
    assert any("32 × 32" in title for title in titles), titles
