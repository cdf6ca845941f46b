"""Zero-shot classification and retrieval: what a trained CLIP is for, measured.

Chapter 10 builds this file, following section 3.1 of the CLIP paper (Radford et al.,
2021). Zero-shot classification turns each class name into captions with prompt
templates ("a photo of the {}."), embeds them, averages the unit vectors of one class
(prompt ensembling, section 3.1.4) and picks, for each image, the class whose vector is
nearest. Retrieval ranks every caption for each image (image-to-text) and every image
for each caption (text-to-image); recall@K is the fraction of queries with a right
answer among the top K. An image with several captions counts as found by image-to-text
when any of its captions is in the top K, as the COCO and Flickr benchmarks count.

`neighbour_votes` ranks captions with no model at all, from the nearest training pictures
and their words: the yardstick that chapter 12 and `benchmarks/emoji_breakdown.py --pixels`
hold trained models against.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from miniclip.config import OPENAI_VOCAB_SIZE
from miniclip.image import ImageProcessor
from miniclip.tokenizer import Tokenizer

RECALL_KS = (1, 5, 10)
RETRIEVAL_LIMIT = 1000  # retrieval's default pool: its cost grows with the square of the pool

# Which split each built-in dataset is measured on: shapes' zero-shot test holds only
# colour-shape pairs never seen in training (and "test_seen", new images of the seen
# pairs, gives the same task for comparison); the others hold out whole images.
EVAL_SPLITS = {
    "shapes": {"zero_shot": "test", "zero_shot_seen": "test_seen", "retrieval": "val"},
    "fashion": {"zero_shot": "test", "retrieval": "test"},
    "emoji": {"retrieval": "test"},
    "folder": {"retrieval": "test"},
}


@dataclass
class Encoder:
    """A model with the tokenizer and image processor that feed it, on one device."""

    model: torch.nn.Module
    tokenizer: Tokenizer
    image_processor: ImageProcessor
    device: str = "cpu"
    batch_size: int = 256

    @torch.no_grad()
    def texts(self, texts: list[str]) -> torch.Tensor:
        """(len(texts), D) unit-length text features."""
        context_length = self.model.config.text.max_position_embeddings
        features = []
        for start in range(0, len(texts), self.batch_size):
            tokens = self.tokenizer(texts[start : start + self.batch_size],
                                    context_length=context_length, padding="longest")
            features.append(self.model.encode_text(tokens["input_ids"].to(self.device),
                                                   tokens["attention_mask"].to(self.device)))
        return F.normalize(torch.cat(features).float(), dim=-1).cpu()

    @torch.no_grad()
    def images(self, images: list) -> torch.Tensor:
        """(len(images), D) unit-length image features."""
        features = []
        for start in range(0, len(images), self.batch_size):
            pixels = self.image_processor(images[start : start + self.batch_size])["pixel_values"]
            features.append(self.model.encode_image(pixels.to(self.device)))
        return F.normalize(torch.cat(features).float(), dim=-1).cpu()


def class_vectors(encoder: Encoder, classnames: list[str], templates: list[str]) -> torch.Tensor:
    """(C, D): per class, the normalised mean of its prompts' unit vectors (prompt ensembling)."""
    prompts = [template.format(name) for name in classnames for template in templates]
    features = encoder.texts(prompts).view(len(classnames), len(templates), -1)
    return F.normalize(features.mean(dim=1), dim=-1)


def zero_shot_predictions(
    encoder: Encoder, dataset, template_sets: dict[str, list[str]], limit: int | None = None
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Per named set of templates, the class predicted for each of the first `limit` images,
    choosing among all classnames; and the images' labels. The images are embedded once."""
    count = len(dataset) if limit is None else min(limit, len(dataset))
    images = [dataset[i][0] for i in range(count)]
    labels = torch.tensor([dataset.label(i) for i in range(count)])
    features = encoder.images(images)
    predictions = {name: (features @ class_vectors(encoder, dataset.classnames, templates).t()).argmax(dim=1)
                   for name, templates in template_sets.items()}
    return predictions, labels


def zero_shot_accuracy(encoder: Encoder, dataset, templates: list[str], limit: int | None = None) -> float:
    """Top-1 accuracy of choosing, for each image, among all of `dataset.classnames`."""
    predictions, labels = zero_shot_predictions(encoder, dataset, {"these templates": templates}, limit)
    return (predictions["these templates"] == labels).float().mean().item()


def per_class_accuracy(predictions: torch.Tensor, labels: torch.Tensor, classnames: list[str]
                       ) -> dict[str, dict[str, Any]]:
    """For each class among `labels`: its accuracy, its image count and what it is most taken for.

    One number hides where zero-shot fails: on shapes a run can name five held-out pairs
    well and one almost never.
    """
    table = {}
    for label in labels.unique().tolist():
        chosen = predictions[labels == label]
        wrong = chosen[chosen != label]
        table[classnames[label]] = {
            "accuracy": round((chosen == label).float().mean().item(), 4),
            "images": len(chosen),
            "most_taken_for": classnames[wrong.mode().values.item()] if len(wrong) else None,
        }
    return table


def recall_at_k(
    image_features: torch.Tensor, text_features: torch.Tensor, text_to_image: torch.Tensor,
    ks: tuple[int, ...] = RECALL_KS,
) -> dict[str, float]:
    """Image-to-text and text-to-image recall@K; text j is a caption of image text_to_image[j]."""
    similarity = image_features @ text_features.t()  # (N_images, N_texts)
    results = {}
    for k in ks:
        results[f"i2t_recall@{k}"] = captions_found(similarity, text_to_image, k).float().mean().item()
    for k in ks:
        top_images = similarity.t().topk(min(k, similarity.size(0)), dim=1).indices  # (N_texts, k)
        found = (top_images == text_to_image[:, None]).any(dim=1)
        results[f"t2i_recall@{k}"] = found.float().mean().item()
    return results


def captions_found(similarity: torch.Tensor, text_to_image: torch.Tensor, k: int) -> torch.Tensor:
    """For each image (a row of scores against every text), whether one of its own captions
    (text j is a caption of image text_to_image[j]) is among its k best texts: (N_images,) bool."""
    top_texts = similarity.topk(min(k, similarity.size(1)), dim=1).indices  # (N_images, k)
    return (text_to_image[top_texts] == torch.arange(len(similarity))[:, None]).any(dim=1)


def caption_pool(dataset, limit: int | None = None) -> tuple[list, list[str], torch.Tensor]:
    """The first `limit` items as (images, every caption of each, the image of each caption)."""
    count = len(dataset) if limit is None else min(limit, len(dataset))
    images, texts, owners = [], [], []
    for i in range(count):
        image, captions = dataset[i]
        images.append(image)
        texts.extend(captions)
        owners.extend([i] * len(captions))
    return images, texts, torch.tensor(owners)


def retrieval(encoder: Encoder, dataset, limit: int | None = None) -> dict[str, float]:
    """recall@1, 5, 10 both ways over the first `limit` items of `dataset`, all captions kept."""
    images, texts, owners = caption_pool(dataset, limit)
    return recall_at_k(encoder.images(images), encoder.texts(texts), owners)


# --- a yardstick without a model -----------------------------------------------------

FILLER = {"a", "an", "and", "emoji", "for", "of", "the", "with"}  # words of the caption templates


def caption_words(caption: str) -> set[str]:
    """The words of a caption that say something: "an emoji of a red apple" -> {"red", "apple"}."""
    return set(re.findall(r"[a-z0-9]+", caption.lower())) - FILLER


def pixel_similarity(train, images: list, size: int = 24) -> torch.Tensor:
    """(len(images), len(train)) cosine similarity of the pictures at `size` x `size` pixels,
    less the mean training picture."""
    processor = ImageProcessor(size)
    train_pixels = processor([train[i][0] for i in range(len(train))])["pixel_values"].flatten(1)
    pixels = processor(images)["pixel_values"].flatten(1)
    mean = train_pixels.mean(dim=0)
    return F.normalize(pixels - mean, dim=1) @ F.normalize(train_pixels - mean, dim=1).t()


def neighbour_votes(train, images: list, texts: list[str], neighbours: int = 5,
                    similarity: torch.Tensor | None = None) -> torch.Tensor:
    """(len(images), len(texts)) scores that rank texts for images with no model and no training.

    Each image's `neighbours` nearest training pictures (`pixel_similarity`) vote for the
    texts that share words with their captions; each word counts by its rarity in the
    training captions (inverse document frequency), as a share of all the text's words. A
    word no training caption has weighs as much as one that a single caption has, and
    gets no vote. It measures what the training pictures and their words alone say about
    new pictures: a trained model that ranks no better has learnt no more than that.

    `similarity`, (len(images), len(train)), picks the neighbours instead of the pixels:
    a trained image tower's cosine similarities ask whether the pictures it finds alike
    say more than the pictures alike pixel for pixel.
    """
    known = [set().union(*map(caption_words, train[i][1])) for i in range(len(train))]
    frequency = Counter(word for words in known for word in words)
    weight = {word: math.log(len(train) / count) for word, count in frequency.items()}
    text_words = [caption_words(text) for text in texts]
    totals = [sum(weight.get(word, math.log(len(train))) for word in words) or 1.0
              for words in text_words]
    if similarity is None:
        similarity = pixel_similarity(train, images)
    elif similarity.shape != (len(images), len(train)):
        raise ValueError(f"similarity must be (images, training pictures) = {(len(images), len(train))}, "
                         f"got {tuple(similarity.shape)}")
    nearest = similarity.topk(neighbours, dim=1).indices
    scores = torch.zeros(len(images), len(texts))
    for i, row in enumerate(nearest.tolist()):
        for j, words in enumerate(text_words):
            scores[i, j] = sum(weight[word] for n in row for word in words & known[n]) / totals[j]
    # Many texts share a score (zero, often): break ties at random, not by the texts' order.
    return scores + 1e-6 * torch.rand(scores.shape, generator=torch.Generator().manual_seed(0))


def evaluate(encoder: Encoder, data: str, load, limit: int | None = None) -> dict[str, Any]:
    """Every metric for dataset `data`; `load(split)` returns one of its splits.

    `limit` caps the images of every measurement; by default zero-shot classification
    takes its whole split (Fashion-MNIST's 10,000 test images) and retrieval the first
    `RETRIEVAL_LIMIT`.

    With a zero-shot split, "zero_shot_per_class" gives each class's accuracy (see
    `per_class_accuracy`), last so that the headline numbers print first. For shapes,
    "zero_shot_seen_top1" is the same measure on new images of the pairs seen in training.
    """
    splits = EVAL_SPLITS.get(data, {"retrieval": "test"})
    results: dict[str, Any] = {"zero_shot_top1": None, "zero_shot_top1_single_prompt": None}
    if "zero_shot" in splits:
        dataset = load(splits["zero_shot"])
        template_sets = {"zero_shot_top1": dataset.templates,  # prompt ensembling
                         "zero_shot_top1_single_prompt": dataset.templates[:1]}
        chosen, labels = zero_shot_predictions(encoder, dataset, template_sets, limit)
        for key, predictions in chosen.items():
            results[key] = (predictions == labels).float().mean().item()
    if "zero_shot_seen" in splits:
        seen = load(splits["zero_shot_seen"])
        results["zero_shot_seen_top1"] = zero_shot_accuracy(encoder, seen, seen.templates, limit)
    results.update(retrieval(encoder, load(splits["retrieval"]), limit or RETRIEVAL_LIMIT))
    results = {key: round(value, 4) if isinstance(value, float) else value
               for key, value in results.items()}  # a measure on thousands of images has no more digits
    if "zero_shot" in splits:
        results["zero_shot_per_class"] = per_class_accuracy(chosen["zero_shot_top1"], labels,
                                                            dataset.classnames)
    return results


def load_run(run_dir: str | Path) -> tuple[torch.nn.Module, Tokenizer, dict]:
    """The newest intact checkpoint of a training run: model, tokenizer, training settings."""
    from miniclip.checkpoint import latest_checkpoint
    from miniclip.model import CLIP

    found = latest_checkpoint(Path(run_dir) / "checkpoints")
    if found is None:
        raise FileNotFoundError(f"no intact checkpoint under {Path(run_dir) / 'checkpoints'}; "
                                "train first: python -m miniclip train --out RUN_DIR")
    checkpoint, state = found
    model = CLIP.from_pretrained(checkpoint)
    return model, checkpoint_tokenizer(checkpoint, model.config.text.vocab_size), state["train"]


def checkpoint_tokenizer(folder: str | Path, vocab_size: int = OPENAI_VOCAB_SIZE) -> Tokenizer:
    """The tokenizer saved in a model folder, or OpenAI's when the folder has none; `vocab_size`
    is the model's, which a folder without its own vocabulary must have OpenAI's of."""
    folder = Path(folder)
    if (folder / "vocab.json").exists():
        return Tokenizer.from_pretrained(folder)
    if vocab_size != OPENAI_VOCAB_SIZE:
        raise FileNotFoundError(f"{folder} has no vocab.json, and its model reads a vocabulary of "
                                f"{vocab_size:,} tokens, not OpenAI's {OPENAI_VOCAB_SIZE:,}: the "
                                "folder is incomplete")
    return Tokenizer.from_openai()


def evaluate_run(run_dir: str | Path, data: str | None = None, limit: int | None = None,
                 device: str = "cpu", options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Measure a run's newest checkpoint; write RUN_DIR/eval.json and its figures.

    `data` defaults to the data set trained on, with its options; `options` (a `root`, say,
    where the data now lies) are added to those, or are the options of another `data`.
    """
    from miniclip.data import load_dataset
    from miniclip.report import retrieval_grid, similarity_figure

    run_dir = Path(run_dir)
    model, tokenizer, settings = load_run(run_dir)
    model.to(device).eval()
    data = data or settings["data"]
    options = {**(settings["data_options"] if data == settings["data"] else {}), **(options or {})}
    if data == "shapes":
        options.setdefault("image_size", model.config.vision.image_size)

    def load(split: str):
        return load_dataset(data, split=split, seed=settings["seed"], **options)

    encoder = Encoder(model, tokenizer, ImageProcessor(model.config.vision.image_size), device)
    results: dict[str, Any] = {"data": data, **evaluate(encoder, data, load, limit)}
    (run_dir / "eval.json").write_text(results_json(results) + "\n")  # before the figures
    retrieval_set = load(EVAL_SPLITS.get(data, {"retrieval": "test"})["retrieval"])
    figures = {"similarity": similarity_figure(encoder, retrieval_set),
               "retrieval": retrieval_grid(encoder, retrieval_set, pool=min(200, limit or 200))}
    for name, figure in figures.items():
        figure.savefig(run_dir / f"{name}_{data}.png", dpi=110)
    return results


def results_json(results: dict[str, Any]) -> str:
    """`results` as JSON, a line per metric and a line per class of "zero_shot_per_class"."""
    lines = []
    for key, value in results.items():
        if isinstance(value, dict):
            rows = [f"  {json.dumps(name)}: {json.dumps(row)}" for name, row in value.items()]
            lines.append(f" {json.dumps(key)}: {{\n" + ",\n".join(rows) + "\n }")
        else:
            lines.append(f" {json.dumps(key)}: {json.dumps(value)}")
    return "{\n" + ",\n".join(lines) + "\n}"
