"""Checks of zero-shot classification and retrieval (chapter 10): prompt ensembling, zero-shot
accuracy and recall@K both ways, against `miniclip.evaluate`.

A model would make the checks slow and tie them to one checkpoint, so they run on a stand-in:
`FakeEncoder` gives every text and every image a fixed random unit vector (images may be
placed near a class on purpose), with the methods of `miniclip.evaluate.Encoder`.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from miniclip import evaluate
from miniclip.checks.core import CheckFailed, compare, describe, exercise, explained, randn

__all__ = ["check_class_vectors", "check_recall_at_k",
           "check_zero_shot_accuracy"]


class FakeEncoder:
    """Stands in for `miniclip.evaluate.Encoder`: `texts` and `images` return (N, dim) unit
    vectors, the same vector for the same text or image every time."""

    def __init__(self, dim: int = 8, images: dict[str, torch.Tensor] | None = None):
        self.dim = dim
        self.known_images = images or {}

    def vector(self, key: str) -> torch.Tensor:
        return randn(self.dim, seed=zlib.crc32(key.encode()))

    def texts(self, texts: list[str]) -> torch.Tensor:
        return F.normalize(torch.stack([self.vector("text: " + text) for text in texts]), dim=-1)

    def images(self, images: list) -> torch.Tensor:
        rows = [self.known_images.get(image, self.vector(f"image: {image}")) for image in images]
        return F.normalize(torch.stack(rows), dim=-1)


class FakeDataset:
    """Stands in for a one-shape split of `shapes`: item i is (image name, [caption]), `label(i)`
    the index of its class in `classnames`."""

    templates = ("a photo of the {}.", "the {}.")

    def __init__(self, classnames: list[str], labels: list[int]):
        self.classnames, self.labels = classnames, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[str, list[str]]:
        if not 0 <= i < len(self.labels):
            raise IndexError(f"item {i} of a dataset of length {len(self.labels)}")
        return f"image {i}", [f"the {self.classnames[self.labels[i]]}."]

    def label(self, i: int) -> int:
        return self.labels[i]


# ---- prompt ensembling --------------------------------------------------------------------


@exercise("class_vectors", evaluate.class_vectors)
def check_class_vectors(class_vectors_fn: Callable) -> str:
    encoder = FakeEncoder()
    cases = [
        (["red circle", "blue square", "green star"],
         ["a photo of the {}.", "the {}.", "a drawing of the {}.", "a picture of the {}."]),
        (["red circle", "blue square", "green star", "purple cross", "yellow diamond"],
         ["a photo of the {}.", "the {} on a noisy background."]),
        (["red circle", "blue square"], ["a photo of the {}."]),
    ]
    for classnames, templates in cases:
        classes, prompts = len(classnames), len(templates)
        call = f"class_vectors(encoder, {classes} class names, {prompts} templates)"
        got = class_vectors_fn(encoder, list(classnames), list(templates))
        expected = evaluate.class_vectors(encoder, classnames, templates)  # (C, D)
        if isinstance(got, torch.Tensor) and got.shape == expected.t().shape != expected.shape:
            raise CheckFailed(f"{call}: shape {tuple(got.shape)}, expected {tuple(expected.shape)}: "
                              "one row per class. Hint: OpenAI's notebook stacks the class vectors "
                              "along dim=1, giving (D, C); return (C, D), the orientation of text "
                              "features.")
        if isinstance(got, torch.Tensor) and got.shape == (prompts, encoder.dim) != expected.shape:
            raise CheckFailed(f"{call}: shape {tuple(got.shape)}, expected {tuple(expected.shape)}: "
                              "one vector per template. Hint: average over the templates of each "
                              "class, not over the classes.")
        by_class = encoder.texts([t.format(name) for name in classnames for t in templates])
        by_template = encoder.texts([t.format(name) for t in templates for name in classnames])
        grouped = by_class.view(classes, prompts, -1)  # (C, P, D)
        mistakes = [
            (grouped.mean(dim=1),
             ("the mean of unit vectors is shorter than 1; normalise it again (F.normalize(..., "
              "dim=-1)) so that every class vector has length 1 and none wins by its length.")),
            (F.normalize(grouped.mean(dim=1), dim=0),
             "normalised along dim=0, across classes; normalise each class vector (a row): dim=-1."),
            (grouped[:, 0],
             "only the first template was used; embed every template and average them."),
            (F.normalize(by_class.view(prompts, classes, -1).mean(dim=0), dim=-1),
             ("the prompts were listed class by class but grouped template by template: the "
              "order in which you format the prompts and the order of your view() must agree.")),
            (F.normalize(by_template.view(classes, prompts, -1).mean(dim=1), dim=-1),
             ("the prompts were listed template by template but grouped class by class: the "
              "order in which you format the prompts and the order of your view() must agree.")),
        ]
        compare(call, got, expected, mistakes)
        if not torch.allclose(got.norm(dim=-1), torch.ones(classes), atol=1e-5):
            raise CheckFailed(f"{call}: the class vectors should have length 1")
    return ("each class the normalised mean of its prompts' unit vectors, for 3 × 4, 5 × 2 and "
            "2 × 1 classes × templates")


# ---- zero-shot accuracy -------------------------------------------------------------------


OTHER_TEMPLATES = ("a drawing of a {}.", "a {} on a plain background.", "one {}.")
# (seed, limit, templates): the last case passes templates other than the dataset's own, so that
# an answer reading dataset.templates instead of its argument shows
ACCURACY_CASES = [(1, None, FakeDataset.templates), (2, 7, FakeDataset.templates),
                  (3, 100, FakeDataset.templates), (6, 10, OTHER_TEMPLATES)]


def accuracy_case(seed: int, templates: Sequence[str] = FakeDataset.templates
                  ) -> tuple[FakeEncoder, FakeDataset]:
    """12 images of 4 classes, each near its class's vector (made from `templates`) or, for
    some, near another's."""
    classnames = ["red circle", "blue square", "green star", "yellow cross"]
    labels = [0, 1, 2, 3, 0, 1, 2, 3, 3, 2, 1, 0]
    encoder = FakeEncoder()
    vectors = evaluate.class_vectors(encoder, classnames, list(templates))
    generator = torch.Generator().manual_seed(seed)
    looks_like = [label if torch.rand((), generator=generator) < 0.6 else (label + 1) % 4
                  for label in labels]
    encoder.known_images = {
        f"image {i}": vectors[like] + 0.3 * torch.randn(encoder.dim, generator=generator)
        for i, like in enumerate(looks_like)}
    return encoder, FakeDataset(classnames, labels)


def as_number(what: str, value) -> torch.Tensor:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.detach().float().reshape(())
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return torch.tensor(float(value))
    raise CheckFailed(f"{what} returned {describe(value)}; it should return one number, a fraction "
                      "between 0 and 1 (a Python float: .item())")


def top1(encoder: FakeEncoder, dataset: FakeDataset, templates: list[str], count: int) -> float:
    """The accuracy over the first `count` items, computed the long way (for the mistakes)."""
    vectors = evaluate.class_vectors(encoder, dataset.classnames, templates)
    guesses = (encoder.images([dataset[i][0] for i in range(count)]) @ vectors.t()).argmax(dim=1)
    return sum(int(guesses[i]) == dataset.label(i) for i in range(count)) / count


@exercise("zero_shot_accuracy", evaluate.zero_shot_accuracy)
def check_zero_shot_accuracy(accuracy_fn: Callable) -> str:
    for seed, limit, templates in ACCURACY_CASES:
        encoder, dataset = accuracy_case(seed, templates)
        templates = list(templates)
        others = "" if templates == list(dataset.templates) else " other than dataset.templates"
        call = (f"zero_shot_accuracy(encoder, dataset of 12 images, {len(templates)} templates"
                f"{others}, limit={limit})")
        limit_hint = "a limit larger than the data set means all of it: range(min(limit, len(dataset)))."
        argmax_hint = ("the (images, classes) similarities give each image's class by argmax over "
                       "the classes, dim=1; dim=0 gives each class's best image.")
        with explained(call, IndexError, "dataset of length", limit_hint), \
                explained(call, RuntimeError, "size of tensor", argmax_hint):
            got = as_number(call, accuracy_fn(encoder, dataset, templates, limit))
        expected = torch.tensor(evaluate.zero_shot_accuracy(encoder, dataset, templates, limit))
        count = len(dataset) if limit is None else min(limit, len(dataset))
        mistakes = [
            (torch.tensor(top1(encoder, dataset, templates, len(dataset))),
             "counted every image; with a limit, use only the first min(limit, len(dataset))."),
            (torch.tensor(top1(encoder, dataset, templates[:1], count)),
             "only the first template was used; pass all of `templates` to class_vectors."),
            (100 * expected, "that is a percentage; return the fraction of images, between 0 and 1."),
            (1 - expected, "that is the error rate; return the fraction of images classified right."),
        ]
        if others:
            mistakes.append((torch.tensor(top1(encoder, dataset, list(dataset.templates), count)),
                             ("the class vectors were made from dataset.templates; use the "
                              "`templates` argument, which may be another list (one template "
                              "alone, or the 80 of ImageNet).")))
        compare(call, got, expected, mistakes)
    return "the fraction of images whose nearest class vector is their label, with and without a limit"


# ---- recall@K ------------------------------------------------------------------------------


def recalls(found_i2t: Callable, found_t2i: Callable, similarity: torch.Tensor,
            owners: torch.Tensor, ks: Sequence[int]) -> dict[str, float]:
    """A recall dict from two functions (similarity, owners, k) -> which queries succeeded."""
    results = {f"i2t_recall@{k}": found_i2t(similarity, owners, k).float().mean().item() for k in ks}
    results.update({f"t2i_recall@{k}": found_t2i(similarity, owners, k).float().mean().item()
                    for k in ks})
    return results


def top(scores: torch.Tensor, k: int, largest: bool = True) -> torch.Tensor:
    return scores.topk(min(k, scores.size(1)), dim=1, largest=largest).indices


def any_caption(similarity, owners, k, largest=True):
    is_caption = owners[None, :] == torch.arange(similarity.size(0))[:, None]  # (N_i, N_t)
    return is_caption.gather(1, top(similarity, k, largest)).any(dim=1)


def own_image(similarity, owners, k, largest=True):
    return (top(similarity.t(), k, largest) == owners[:, None]).any(dim=1)


def first_caption(similarity, owners, k):
    firsts = torch.tensor([int((owners == i).nonzero()[0]) for i in range(similarity.size(0))])
    return (top(similarity, k) == firsts[:, None]).any(dim=1)


def every_caption(similarity, owners, k):
    is_caption = owners[None, :] == torch.arange(similarity.size(0))[:, None]
    in_top = torch.zeros_like(is_caption).scatter(1, top(similarity, k), True)
    return (in_top | ~is_caption).all(dim=1)


def per_caption(similarity, owners, k):
    """For each caption, is it among its image's top K texts (recall averaged over captions)."""
    in_top = torch.zeros_like(similarity, dtype=torch.bool).scatter(1, top(similarity, k), True)
    return in_top[owners, torch.arange(len(owners))]


def capped_at_images(similarity, owners, k):
    """Image-to-text with K capped at the number of images, where the texts are ranked."""
    return any_caption(similarity, owners, min(k, similarity.size(0)))


def distinct_images(similarity, owners, k):
    """Image-to-text looking at the first K *images* of the ranked texts, not the first K texts."""
    found = []
    for image, row in enumerate(similarity):
        ranked = owners[row.argsort(descending=True)].tolist()
        distinct = list(dict.fromkeys(ranked))  # images in order of their best caption
        found.append(image in distinct[:k])
    return torch.tensor(found)


def t2i_per_image(similarity, owners, ks):
    """Text-to-image averaged per image: the mean over images of the share of its captions that
    find it (the benchmark counts each caption once)."""
    results = {}
    for k in ks:
        found = own_image(similarity, owners, k).float()
        shares = [found[owners == image].mean() for image in range(similarity.size(0))]
        results[f"t2i_recall@{k}"] = torch.stack(shares).mean().item()
    return results


def diagonal(similarity, owners, k):
    return own_image(similarity, torch.arange(similarity.size(1)), k)


def diagonal_i2t(similarity, owners, k):
    return any_caption(similarity, torch.arange(similarity.size(1)), k)


def recall_case(images: int, caption_counts: list[int], noise: float, seed: int
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Unit image and text features; text j is a noisy copy of image owners[j]; the captions
    of an image are scattered through the list, not side by side."""
    image_features = F.normalize(randn(images, 16, seed=seed), dim=-1)
    owners = torch.tensor([i for i, count in enumerate(caption_counts) for _ in range(count)])
    owners = owners[torch.randperm(len(owners), generator=torch.Generator().manual_seed(seed))]
    noise_vectors = randn(len(owners), 16, seed=seed + 1) * noise
    text_features = F.normalize(image_features[owners] + noise_vectors, dim=-1)
    return image_features, text_features, owners


# (images, captions per image, noise, ks, seed): seeds chosen so that each known mistake gives
# recalls of its own in the first two cases (tests/test_checks_ch10.py makes sure).
RECALL_CASES = [
    (5, [3, 1, 4, 2, 2], 0.9, (1, 3, 10), 101),
    (8, [3, 2, 3, 2, 3, 2, 3, 2], 1.2, (1, 2, 5), 101),
    (6, [1] * 6, 1.0, (1, 2), 102),
    (20, [3] * 20, 1.2, (1, 5), 7),  # another image's captions fill some top 5s
]
RECALL_CASE_NAMES = [
    "5 images with 1 to 4 captions each (12 texts), K = 1, 3, 10",
    "8 images with 2 to 3 captions each (20 texts), K = 1, 2, 5",
    "6 images with one caption each, K = 1, 2",
    "20 images with 3 captions each (60 texts), K = 1, 5",
]


def check_recall_dict(call: str, got, expected: dict[str, float],
                      mistakes: list[tuple[str, dict[str, float], str]]) -> None:
    if not isinstance(got, dict):
        raise CheckFailed(f"{call} returned {describe(got)}; it should return a dict such as "
                          "{'i2t_recall@1': 0.5, ..., 't2i_recall@1': 0.4, ...}")
    if set(got) != set(expected):
        raise CheckFailed(f"{call} returned the keys {sorted(got)}; expected {sorted(expected)}")
    for key in expected:  # i2t first, then t2i
        got_value = as_number(f"{call}[{key!r}]", got[key])
        if abs(got_value.item() - expected[key]) <= 1e-6:
            continue
        direction = key.split("_")[0]
        keys = [k for k in expected if k.startswith(direction)]
        hint = next((hint for prefix, wrong, hint in mistakes if prefix == direction and all(
            abs(float(got[k]) - wrong[k]) <= 1e-6 for k in keys)), None)
        raise CheckFailed(f"{call}[{key!r}] is {got_value.item():.6g}, expected {expected[key]:.6g}"
                          + (f"\nHint: {hint}" if hint else ""))


@exercise("recall_at_k", evaluate.recall_at_k)
def check_recall_at_k(recall_fn: Callable) -> str:
    for what, (images, counts, noise, ks, seed) in zip(RECALL_CASE_NAMES, RECALL_CASES):
        image_features, text_features, owners = recall_case(images, counts, noise, seed)
        call = f"recall_at_k for {what}"
        try:
            got = recall_fn(image_features.clone(), text_features.clone(), owners.clone(), ks)
        except RuntimeError as error:
            if "out of range" in str(error):
                raise CheckFailed(f"{call} raised RuntimeError: {error}\nHint: K can exceed the "
                                  "number of images or texts (K = 10 with 5 images); rank at most "
                                  "all of them: topk(min(k, n)).") from None
            raise
        expected = evaluate.recall_at_k(image_features, text_features, owners, ks)
        similarity = image_features @ text_features.t()

        def wrong(i2t, t2i):
            return recalls(i2t, t2i, similarity, owners, ks)  # noqa: B023 (used at once)

        swapped = {key.replace("i2t", "x").replace("t2i", "i2t").replace("x", "t2i"): value
                   for key, value in expected.items()}
        lowest = wrong(lambda s, o, k: any_caption(s, o, k, largest=False),
                       lambda s, o, k: own_image(s, o, k, largest=False))
        mistakes = [
            ("i2t", swapped, ("the two directions are swapped: image-to-text ranks the texts for "
                              "each image (rows of image_features @ text_features.t()).")),
            ("t2i", swapped, ("the two directions are swapped: text-to-image ranks the images for "
                              "each text (rows of text_features @ image_features.t()).")),
            ("i2t", lowest, "ranked the least similar first; topk(largest=True) picks the most similar."),
            ("t2i", lowest, "ranked the least similar first; topk(largest=True) picks the most similar."),
            ("i2t", wrong(first_caption, own_image),
             ("only each image's first caption counted; an image is found when ANY of its "
              "captions is among its top K texts.")),
            ("i2t", wrong(every_caption, own_image),
             ("an image counted as found only when ALL its captions are in its top K; one is "
              "enough (the COCO and Flickr convention).")),
            ("i2t", wrong(per_caption, own_image),
             ("averaged over captions; image-to-text recall has one query per image: the mean "
              "over images of 'some caption is in the top K'.")),
            ("i2t", wrong(capped_at_images, own_image),
             ("K was capped at the number of images; image-to-text ranks the texts, so cap K at "
              "the number of texts: topk(min(k, len(text_features))).")),
            ("i2t", wrong(diagonal_i2t, own_image),
             ("text j was taken to belong to image j, as in a training batch; here it belongs to "
              "image text_to_image[j], and an image has several captions.")),
            ("t2i", wrong(any_caption, diagonal),
             ("text j was taken to belong to image j, as in a training batch; here it belongs to "
              "image text_to_image[j].")),
            ("i2t", wrong(distinct_images, own_image),
             ("looked at the first K distinct images among the ranked texts; recall@K looks at "
              "the first K texts, even when several are captions of one other image.")),
            ("t2i", t2i_per_image(similarity, owners, ks),
             ("averaged per image (the share of each image's captions that find it); "
              "text-to-image has one query per caption: average over all captions.")),
        ]
        check_recall_dict(call, got, expected, mistakes)
    return ("image-to-text (any caption in the top K) and text-to-image recall@K, with captions "
            "scattered, several per image, and K larger than the number of images")
