"""Wrong inputs raise errors that say what was expected and what came."""

import pytest
import torch

from miniclip import CLIP, CLIPConfig


@pytest.fixture(scope="module")
def model():
    return CLIP(CLIPConfig.preset("tiny")).eval()


def texts(n=2, length=5):
    ids = torch.randint(1, 1000, (n, length))
    ids[:, -1] = 49407
    return ids


def test_wrong_image_size(model):
    with pytest.raises(ValueError, match=r"\(batch, 3, 72, 72\).*\(2, 3, 32, 32\)"):
        model.encode_image(torch.randn(2, 3, 32, 32))


def test_wrong_channel_count(model):
    with pytest.raises(ValueError, match=r"\(2, 1, 72, 72\)"):
        model.encode_image(torch.randn(2, 1, 72, 72))


def test_integer_pixels(model):
    with pytest.raises(ValueError, match="floating point.*uint8"):
        model.encode_image(torch.zeros(2, 3, 72, 72, dtype=torch.uint8))


def test_text_longer_than_position_table(model):
    with pytest.raises(ValueError, match="40 tokens.*holds 32"):
        model.encode_text(texts(length=40))


def test_token_ids_out_of_range(model):
    ids = texts()
    ids[0, 1] = 50000
    with pytest.raises(ValueError, match=r"\[0, 49408\).*50000"):
        model.encode_text(ids)


def test_text_without_end_of_text_token(model):
    ids = texts()
    ids[1, -1] = 5
    with pytest.raises(ValueError, match=r"rows \[1\].*end-of-text"):
        model.encode_text(ids)


def test_attention_mask_of_another_shape(model):
    with pytest.raises(ValueError, match=r"attention_mask has shape \(2, 4\)"):
        model.encode_text(texts(), torch.ones(2, 4, dtype=torch.long))


def test_loss_needs_as_many_texts_as_images(model):
    with pytest.raises(ValueError, match="3 texts and 2 images"):
        model(texts(n=3), torch.randn(2, 3, 72, 72), return_loss=True)


def test_float_token_ids(model):
    with pytest.raises(ValueError, match="integer token ids"):
        model.encode_text(texts().float())
