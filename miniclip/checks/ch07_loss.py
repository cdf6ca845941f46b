"""Checks of the contrastive loss (chapter 07): Figure 3 of the CLIP paper in numpy, the loss
in torch, and its gradient written by hand.

The numpy exercise and the gradient have no twin in the package (miniclip trains with the
torch loss and autograd), so their reference answers live here, for `show_solution`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from miniclip import loss as loss_module
from miniclip.checks.core import (
    CheckFailed,
    compare,
    describe,
    exercise,
    explained,
    randn,
)

__all__ = ["check_clip_loss", "check_clip_loss_gradient", "check_clip_loss_numpy"]


def log_softmax(logits: np.ndarray, axis: int) -> np.ndarray:
    """log(softmax(logits)) along `axis`, without overflow: the largest entry becomes 0 first."""
    shifted = logits - logits.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def cross_entropy(logits: np.ndarray, labels: np.ndarray, axis: int) -> float:
    """Mean over examples of -log softmax(logits)[label]; the softmax runs along `axis`, the
    examples along the other axis (the paper's `cross_entropy_loss(logits, labels, axis)`)."""
    log_probabilities = log_softmax(logits, axis)
    picked = np.take_along_axis(log_probabilities, np.expand_dims(labels, axis), axis)
    return float(-picked.mean())


def clip_loss_numpy(image_features: np.ndarray, text_features: np.ndarray, W_image: np.ndarray,
                    W_text: np.ndarray, t: float) -> float:
    """Figure 3 of the CLIP paper: the symmetric contrastive loss of n (image, text) pairs."""
    image_embeds = image_features @ W_image  # (n, d_e)
    text_embeds = text_features @ W_text  # (n, d_e)
    image_embeds = image_embeds / np.linalg.norm(image_embeds, axis=1, keepdims=True)
    text_embeds = text_embeds / np.linalg.norm(text_embeds, axis=1, keepdims=True)
    logits = image_embeds @ text_embeds.T * np.exp(t)  # (n, n): image i against text j
    labels = np.arange(len(logits))
    loss_image = cross_entropy(logits, labels, axis=0)  # softmax over images, for each text
    loss_text = cross_entropy(logits, labels, axis=1)  # softmax over texts, for each image
    return (loss_image + loss_text) / 2


def numpy_case(n: int, aligned: bool, seed: int) -> tuple[np.ndarray, ...]:
    """Features (n, 10) and (n, 8), projections to d_e = 4. Aligned: text j's embedding is image
    j's plus a little noise, as after training."""
    rng = np.random.default_rng(seed)
    image_features = rng.normal(size=(n, 10)) * rng.uniform(0.2, 5, size=(n, 1))
    W_image, W_text = rng.normal(size=(10, 4)), rng.normal(size=(8, 4))
    if aligned:
        target = image_features @ W_image + 0.1 * rng.normal(size=(n, 4))
        text_features = target @ np.linalg.pinv(W_text)  # so that text_features @ W_text = target
    else:
        text_features = rng.normal(size=(n, 8)) * rng.uniform(0.2, 5, size=(n, 1))
    return image_features, text_features, W_image, W_text


def symmetric(logits: torch.Tensor) -> torch.Tensor:
    """The mean of the cross-entropies of the rows and of the columns, targets on the diagonal."""
    targets = torch.arange(logits.size(0))
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.t(), targets)) / 2


@exercise("clip_loss_numpy", clip_loss_numpy)
def check_clip_loss_numpy(clip_loss_numpy_fn: Callable) -> str:
    from transformers.models.clip.modeling_clip import image_text_contrastive_loss

    for n, aligned, t, name in [(6, False, math.log(1 / 0.07), "random features, t = ln(1/0.07)"),
                                (5, True, math.log(100), "matching pairs, t = ln 100")]:
        arrays = numpy_case(n, aligned, seed=70 + n)
        image_features, text_features, W_image, W_text = (torch.from_numpy(a) for a in arrays)
        image_projected, text_projected = image_features @ W_image, text_features @ W_text
        image_embeds = F.normalize(image_projected, dim=1)
        text_embeds = F.normalize(text_projected, dim=1)
        cosines = image_embeds @ text_embeds.t()  # (n, n), the paper's orientation
        targets = torch.arange(n)
        logits = cosines * math.exp(t)
        mistakes = [
            (symmetric(image_projected @ text_projected.t() * math.exp(t)),
             ("the embeddings were not normalised: divide each row by its length, "
              "np.linalg.norm(x, axis=1, keepdims=True).")),
            (symmetric(F.normalize(image_projected, dim=0) @ F.normalize(text_projected, dim=0).t()
                       * math.exp(t)),
             ("normalised along axis 0, across the batch; each embedding (a row) must have "
              "length 1: axis=1.")),
            (symmetric(F.normalize(image_features, dim=1) @ W_image
                       @ (F.normalize(text_features, dim=1) @ W_text).t() * math.exp(t)),
             ("normalised the features before projecting them; project first, then normalise "
              "the embeddings, which the cosine compares.")),
            (symmetric(cosines * t),
             "multiplied by t; t is the logarithm of the scale: multiply by np.exp(t)."),
            (symmetric(cosines / math.exp(t)), "divided by np.exp(t); multiply by it."),
            (symmetric(cosines), ("the scale was lost: multiply the cosines by np.exp(t), after "
                                  "normalising (normalising undoes a scale applied before it).")),
            (F.cross_entropy(logits, targets),
             ("only the loss over each image's softmax (axis=1); average it with the loss over "
              "each text's softmax (axis=0).")),
            (F.cross_entropy(logits.t(), targets),
             ("only the loss over each text's softmax (axis=0); average it with the loss over "
              "each image's softmax (axis=1).")),
            (2 * symmetric(logits), "the sum of the two losses; the paper takes their mean, / 2."),
        ]
        what = f"clip_loss_numpy(...) for n = {n}, {name}"
        got = clip_loss_numpy_fn(*arrays, t)
        try:
            got_tensor = torch.as_tensor(np.asarray(got, dtype=np.float64))
        except (TypeError, ValueError):
            raise CheckFailed(f"{what} returned {describe(got)}; return a number") from None
        if got_tensor.dim() != 0:
            raise CheckFailed(f"{what} returned an array of shape {tuple(got_tensor.shape)}; "
                              "return one number, the mean of the two losses")
        if not torch.isfinite(got_tensor):
            raise CheckFailed(f"{what} returned {float(got_tensor)}: the softmax overflowed (the "
                              f"logits reach {math.exp(t):.0f}, and np.exp(89) is already inf in "
                              "float32). Subtract each row's maximum from the logits before np.exp: "
                              "the softmax is unchanged and nothing overflows.")
        expected = loss_module.clip_loss(logits.t())
        compare(what, got_tensor, expected, mistakes, atol=1e-8, rtol=1e-5)
        compare(f"{what}, against transformers' image_text_contrastive_loss", got_tensor,
                image_text_contrastive_loss(logits), atol=1e-8, rtol=1e-5)
    return ("project, normalise, scale by exp(t), then the mean of both cross-entropies; equal to "
            "miniclip's clip_loss and transformers' loss")


@exercise("clip_loss", loss_module.clip_loss)
def check_clip_loss(clip_loss: Callable) -> str:
    from transformers.models.clip.modeling_clip import image_text_contrastive_loss

    logits = randn(5, 5, seed=16) * 3
    targets = torch.arange(5)
    rows, columns = F.cross_entropy(logits, targets), F.cross_entropy(logits.t(), targets)
    mistakes = [
        (rows,
         ("that is only the text-to-image direction (rows); average it with the "
          "image-to-text one, the cross-entropy of the columns (logits.t()).")),
        (columns,
         ("that is only the image-to-text direction (columns); average it with the "
          "cross-entropy of the rows.")),
        (rows + columns, "the sum of the two directions; CLIP takes their mean, (a + b) / 2."),
        (F.cross_entropy(logits, targets, reduction="sum") / 2
         + F.cross_entropy(logits.t(), targets, reduction="sum") / 2,
         "summed over the batch; average over it (cross_entropy's default reduction)."),
    ]
    what = "clip_loss(logits_per_text) for a 5 x 5 matrix"
    leaf = logits.clone().requires_grad_()
    with torch.enable_grad(), explained(what, RuntimeError, "in-place", (
            "an in-place operation (logits -= ..., logits.sub_(...)) overwrote the logits, which "
            "autograd needs; write logits = logits - ... (F.cross_entropy already subtracts each "
            "row's maximum).")):
        got = clip_loss(leaf)
    compare(what, got, loss_module.clip_loss(logits), mistakes, atol=1e-6)
    compare(f"{what}, against transformers' image_text_contrastive_loss", got,
            image_text_contrastive_loss(logits), atol=1e-6)
    if not got.requires_grad:
        raise CheckFailed(f"{what}: the loss does not require grad, so autograd cannot "
                          "differentiate it and training would learn nothing\nHint: .detach(), "
                          ".item(), numpy and torch.tensor(...) cut the graph; compute the loss "
                          "from the logits with torch operations only.")
    got.backward()
    if leaf.grad is None:
        raise CheckFailed(f"{what}: the loss requires grad but does not depend on the logits "
                          "(their .grad stays None after backward()); compute it from the logits "
                          "themselves, not from a new tensor made of their values.")
    expected = logits.clone().requires_grad_()
    loss_module.clip_loss(expected).backward()
    compare(f"the gradient of {what} with respect to the logits", leaf.grad, expected.grad,
            atol=1e-6)
    uniform = clip_loss(torch.zeros(8, 8))
    compare("clip_loss(zeros(8, 8)) should be ln 8: a uniform guess among 8", uniform,
            torch.tensor(math.log(8)), atol=1e-6)
    capped = logits_at_the_cap(6, seed=17)
    what = "clip_loss(logits_per_text) for 6 x 6 logits of 100 x cosines (the scale's cap)"
    got = clip_loss(capped)
    overflowed(what, got)
    compare(what, got, loss_module.clip_loss(capped), atol=1e-5)
    return ("the mean of both cross-entropies, equal to transformers' contrastive loss; "
            "ln(N) at uniform logits; finite at the scale's cap")


def logits_at_the_cap(n: int, seed: int) -> torch.Tensor:
    """100 x the cosines of n texts and n images, the diagonal pairs alike: logits as CLIP's
    capped scale makes them, where exp() overflows float32 (exp(89) is inf)."""
    images = randn(n, 8, seed=seed)
    texts = images + 0.5 * randn(n, 8, seed=seed + 1)
    return 100 * F.normalize(texts, dim=-1) @ F.normalize(images, dim=-1).t()


def overflowed(what: str, got) -> None:
    """A softmax written as exp(x) / sum(exp(x)) gives inf and NaN at the cap: say so."""
    if isinstance(got, torch.Tensor) and got.is_floating_point() and not torch.isfinite(got).all():
        raise CheckFailed(f"{what}: the result holds inf or NaN\nHint: exp() of a logit near 100 "
                          "overflows float32 (exp(89) is already inf). F.cross_entropy, "
                          "log_softmax and softmax subtract each row's maximum first, which leaves "
                          "the softmax unchanged; use them rather than exp(x) / exp(x).sum().")


def clip_loss_gradient(logits_per_text: torch.Tensor) -> torch.Tensor:
    """d clip_loss / d logits for an (N, N) matrix: (P_rows - I + P_columns - I) / (2 N)."""
    n = logits_per_text.size(0)
    identity = torch.eye(n, dtype=logits_per_text.dtype)
    text_term = logits_per_text.softmax(dim=1) - identity  # each text's softmax over images
    image_term = logits_per_text.softmax(dim=0) - identity  # each image's softmax over texts
    return (text_term + image_term) / (2 * n)


@exercise("clip_loss_gradient", clip_loss_gradient)
def check_clip_loss_gradient(gradient_fn: Callable) -> str:
    from transformers.models.clip.modeling_clip import image_text_contrastive_loss

    for what, logits in [("a random 5 x 5 matrix", randn(5, 5, seed=71) * 3),
                         ("a 4 x 4 matrix of zeros (uniform logits)", torch.zeros(4, 4)),
                         ("6 x 6 logits of 100 x cosines (the scale's cap)",
                          logits_at_the_cap(6, seed=72))]:
        n = logits.size(0)
        leaf = logits.clone().requires_grad_()
        loss_module.clip_loss(leaf).backward()
        expected = leaf.grad
        identity = torch.eye(n)
        rows, columns = logits.softmax(dim=1) - identity, logits.softmax(dim=0) - identity
        mistakes = [
            (rows / n, ("only the text-to-image term, softmax over rows; the loss averages two "
                        "cross-entropies, so add the image-to-text term, softmax over columns.")),
            (rows / (2 * n), ("only the text-to-image term (rows); add the image-to-text one, "
                              "softmax over columns (dim=0).")),
            (columns / (2 * n), "only the image-to-text term (columns); add the one over rows."),
            ((rows + columns) / 2,
             "not divided by N: each cross-entropy is a mean over N rows, so each term has a 1/N."),
            ((rows + columns) / n, "not halved: the loss is the mean of the two directions, (a + b) / 2."),
            (-(rows + columns) / (2 * n),
             ("the sign is flipped: raising the right logit lowers the loss, so the diagonal "
              "gradient is negative: softmax - one-hot.")),
            ((rows + logits.t().softmax(dim=1) - identity) / (2 * n),
             ("the column term is transposed: softmax(logits.t(), dim=1) has one row per image; "
              "transpose it back, or use softmax(dim=0).")),
        ]
        call = f"clip_loss_gradient(logits) for {what}"
        with torch.no_grad():
            got = gradient_fn(logits.clone())
        overflowed(call, got)
        compare(call, got, expected, mistakes, atol=1e-6, rtol=1e-5)
        theirs = logits.clone().requires_grad_()
        image_text_contrastive_loss(theirs).backward()
        compare(f"{call}, against autograd through transformers' loss", got, theirs.grad,
                atol=1e-6, rtol=1e-5)
    return "(softmax over rows + softmax over columns - 2 I) / 2N, equal to autograd's gradient"
