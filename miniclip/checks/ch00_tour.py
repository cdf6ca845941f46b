"""Check of chapter 00's warm-up: the probabilities of prompts, from unit embeddings.

The package has no function of its own for it (`CLIP.forward` computes the logits, a
caller takes their softmax), so the reference answer lives here, for `show_solution`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from miniclip.checks.core import CheckFailed, compare, describe, exercise, randn
from miniclip.config import CLIPConfig

__all__ = ["check_prompt_probabilities"]


def prompt_probabilities(image_embeds: torch.Tensor, text_embeds: torch.Tensor,
                            logit_scale: torch.Tensor) -> torch.Tensor:
    """(N, L): for each of N images, the softmax over L labels of exp(logit_scale) * cosine.

    image_embeds (N, D) and text_embeds (L, D) are unit vectors; logit_scale is CLIP's
    learnt log of the scale (a 0-dim tensor).
    """
    logits = logit_scale.exp() * image_embeds @ text_embeds.t()  # (N, L): logits_per_image
    return logits.softmax(dim=-1)  # each image's row sums to 1


def unit(*shape: int, seed: int) -> torch.Tensor:
    return F.normalize(randn(*shape, seed=seed), dim=-1)


@exercise("prompt_probabilities", prompt_probabilities)
def check_prompt_probabilities(probabilities_fn: Callable) -> str:
    from miniclip.model import CLIP

    for logit_scale, written in ((math.log(1 / 0.07), "ln(1/0.07)"), (math.log(100), "ln 100")):
        images, texts, scale = unit(3, 16, seed=1), unit(5, 16, seed=2), torch.tensor(logit_scale)
        inputs = (images.clone(), texts.clone(), scale.clone())
        call = f"prompt_probabilities(3 images, 5 labels, logit_scale={written})"
        got = probabilities_fn(*inputs)
        if isinstance(got, torch.Tensor) and got.shape == (5, 3):
            raise CheckFailed(f"{call}: shape (5, 3), expected (3, 5): one row per image, one "
                              "column per label. Hint: image_embeds @ text_embeds.t(), not the other "
                              "way round.")
        cosines = images @ texts.t()
        expected = prompt_probabilities(images, texts, scale)
        mistakes = [
            ((scale.exp() * cosines).softmax(dim=0),
             ("the softmax ran over the images (dim=0); each image chooses among the labels, so "
              "the softmax runs along a row: dim=-1.")),
            ((scale * cosines).softmax(dim=-1),
             "multiplied by logit_scale itself; it is the logarithm of the scale: use logit_scale.exp()."),
            (cosines.softmax(dim=-1),
             ("the cosines were not scaled: multiply them by logit_scale.exp() (1/0.07 at "
              "initialisation, up to 100 after training), or the softmax is nearly uniform.")),
            ((cosines / scale.exp()).softmax(dim=-1), "divided by exp(logit_scale); multiply by it."),
            (scale.exp() * cosines, "those are the logits; take their softmax over the labels."),
        ]
        compare(call, got, expected, mistakes)
        for name, before, after in zip(("image_embeds", "text_embeds", "logit_scale"),
                                       (images, texts, scale), inputs):
            if not torch.equal(before, after):
                raise CheckFailed(f"{call} changed its input {name} in place (an operator such as "
                                  "*= or /=); compute new tensors and leave the inputs as they were.")

    # The same numbers as a CLIP model's own logits, given the unit embeddings it computed.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        config = CLIPConfig.preset("tiny")
        model = CLIP(config).eval()
    pixels = randn(2, 3, config.vision.image_size, config.vision.image_size, seed=3)
    input_ids = torch.tensor([[49406, 320, 736, 7117, 49407], [49406, 320, 1746, 3999, 49407],
                              [49406, 320, 1901, 3999, 49407]])
    with torch.no_grad():
        output = model(input_ids, pixels)
        got = probabilities_fn(output.image_embeds, output.text_embeds, model.logit_scale)
    if not isinstance(got, torch.Tensor):
        raise CheckFailed(f"returned {describe(got)}; it should return a tensor of probabilities")
    compare("prompt_probabilities on a CLIP model's embeddings, against softmax(logits_per_image)",
            got, output.logits_per_image.softmax(dim=-1))
    return ("each image's softmax over the labels of exp(logit_scale) · cosine, equal to the "
            "softmax of a CLIP model's logits_per_image")
