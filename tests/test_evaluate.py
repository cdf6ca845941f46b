"""The no-model yardstick of retrieval: nearest training pictures vote with their words."""

import pytest
import torch
from PIL import Image

from miniclip.evaluate import caption_words, neighbour_votes


def square(rgb) -> Image.Image:
    return Image.new("RGB", (48, 48), rgb)


TRAIN = [(square((230, 30, 30)), ["red apple"]), (square((30, 30, 230)), ["blue whale"]),
         (square((30, 200, 30)), ["green apple", "an emoji for fruit"])]
IMAGES = [square((210, 40, 40)), square((40, 40, 210))]  # near the red one, near the blue one
TEXTS = ["blue fish", "red cherry", "an emoji of a green fruit", "the yak emoji"]


def test_caption_words_leave_out_the_template_words():
    assert caption_words("An emoji of a red apple") == {"red", "apple"}
    assert caption_words("keycap: 6") == {"keycap", "6"}


def test_the_nearest_picture_votes_for_the_texts_that_share_its_words():
    scores = neighbour_votes(TRAIN, IMAGES, TEXTS, neighbours=1)
    assert scores.shape == (2, 4)
    assert scores[0].argmax() == 1 and scores[1].argmax() == 0  # "red ...", "blue ..."
    assert scores[0, 0] < 1e-5 and scores[:, 3].max() < 1e-5  # no shared word, no vote


def test_more_neighbours_bring_more_words():
    # The red picture's second nearest is the green one (the blue one is farther from red
    # once the mean is taken away), whose "green" and "fruit" now count.
    assert neighbour_votes(TRAIN, IMAGES, TEXTS, neighbours=1)[0, 2] < 1e-5
    assert neighbour_votes(TRAIN, IMAGES, TEXTS, neighbours=2)[0, 2] > 1e-3


def test_rare_words_count_more():
    train = [(square((230, 30, 30)), ["red apple"]), (square((200, 60, 60)), ["red heart"]),
             (square((30, 30, 230)), ["blue whale"])]
    # The nearest picture is the apple; each text shares one word with its caption, and
    # "apple" (one training caption) is rarer than "red" (two).
    scores = neighbour_votes(train, [square((230, 30, 30))], ["red kite", "apple kite"], neighbours=1)
    assert scores[0, 1] > scores[0, 0] > 1e-3


def test_a_given_similarity_picks_the_neighbours_instead_of_the_pixels():
    # Pixel for pixel the red picture is nearest the red apple; a similarity that calls it
    # most like the blue whale makes the whale's words vote instead.
    alike = torch.tensor([[0.0, 1.0, 0.5], [1.0, 0.0, 0.5]])  # (images, training pictures)
    scores = neighbour_votes(TRAIN, IMAGES, TEXTS, neighbours=1, similarity=alike)
    assert scores[0].argmax() == 0 and scores[1].argmax() == 1  # "blue fish", "red cherry"
    assert scores[0, 1] < 1e-5


def test_a_similarity_of_the_wrong_shape_is_refused():
    with pytest.raises(ValueError, match=r"\(images, training pictures\) = \(2, 3\), got \(3, 2\)"):
        neighbour_votes(TRAIN, IMAGES, TEXTS, similarity=torch.zeros(3, 2))


class CountingEncoder:
    """Random unit features; remembers how many images each call embedded."""

    def __init__(self):
        self.calls = []

    def images(self, images):
        self.calls.append(len(images))
        return torch.nn.functional.normalize(torch.randn(len(images), 8), dim=-1)

    def texts(self, texts):
        return torch.nn.functional.normalize(torch.randn(len(texts), 8), dim=-1)


class TwelveSquares:
    classnames = ("red", "blue")
    templates = ("a {} square.", "a {} thing.")

    def __len__(self):
        return 12

    def __getitem__(self, i):
        return square((230, 30, 30)), [f"square {i}"]

    def label(self, i):
        return i % 2


def test_zero_shot_takes_the_whole_split_and_retrieval_the_first_thousand(monkeypatch):
    import miniclip.evaluate as evaluate

    monkeypatch.setattr(evaluate, "RETRIEVAL_LIMIT", 5)  # the default pool, made small
    encoder = CountingEncoder()
    evaluate.evaluate(encoder, "fashion", lambda split: TwelveSquares())
    assert encoder.calls == [12, 5]  # zero-shot on all 12 test images, retrieval on 5
    encoder.calls.clear()
    evaluate.evaluate(encoder, "fashion", lambda split: TwelveSquares(), limit=3)
    assert encoder.calls == [3, 3]  # a limit caps both


def test_the_shipped_model_loads_from_anywhere_with_its_own_vocabulary(tmp_path, monkeypatch):
    import shutil

    from miniclip.shipped import SHIPPED, load_shipped

    monkeypatch.chdir(tmp_path)
    model, tokenizer, processor = load_shipped()
    assert tokenizer.vocab_size == model.config.text.vocab_size < 1000  # learnt from the captions
    assert processor.size == model.config.vision.image_size
    with pytest.raises(FileNotFoundError, match="the shipped checkpoint is missing from"):
        load_shipped(tmp_path / "nowhere")
    shutil.copytree(SHIPPED, tmp_path / "copy")
    (tmp_path / "copy" / "vocab.json").unlink()  # not OpenAI's 49,408 tokens in its place
    with pytest.raises(FileNotFoundError, match="has no vocab.json"):
        load_shipped(tmp_path / "copy")
