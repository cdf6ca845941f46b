"""Chapter 07's checks accept the reference and reject plausible wrong answers, saying why;
its figures and temperature explorer draw what they say."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from check_cases import reference_and_wrong_answer_tests

from miniclip import checks, plots_loss, widgets_loss
from miniclip.checks.ch07_loss import clip_loss_gradient, clip_loss_numpy, cross_entropy
from miniclip.loss import clip_loss

# ---- wrong answers ----------------------------------------------------------------------


def numpy_loss(normalise_axis=1, normalise_first=False, scale=np.exp, directions="both",
               reduce="mean", scale_first=False):
    """Figure 3 of the paper with one step changed."""
    def wrong(image_features, text_features, W_image, W_text, t):
        factor = scale(t)
        if scale_first:  # the scale goes into the image embeddings, and normalising drops it
            W_image, factor = W_image * factor, 1.0
        if normalise_first:
            image_features = image_features / np.linalg.norm(image_features, axis=1, keepdims=True)
            text_features = text_features / np.linalg.norm(text_features, axis=1, keepdims=True)
        image_embeds, text_embeds = image_features @ W_image, text_features @ W_text
        if normalise_axis is not None and not normalise_first:
            image_embeds = image_embeds / np.linalg.norm(image_embeds, axis=normalise_axis, keepdims=True)
            text_embeds = text_embeds / np.linalg.norm(text_embeds, axis=normalise_axis, keepdims=True)
        logits = image_embeds @ text_embeds.T * factor
        labels = np.arange(len(logits))
        losses = {"images": cross_entropy(logits, labels, axis=0),
                  "texts": cross_entropy(logits, labels, axis=1)}
        if directions != "both":
            return losses[directions]
        total = losses["images"] + losses["texts"]
        return total if reduce == "sum" else total / 2
    return wrong


def per_example_losses(image_features, text_features, W_image, W_text, t):
    image_embeds = image_features @ W_image
    text_embeds = text_features @ W_text
    image_embeds /= np.linalg.norm(image_embeds, axis=1, keepdims=True)
    text_embeds /= np.linalg.norm(text_embeds, axis=1, keepdims=True)
    logits = image_embeds @ text_embeds.T * np.exp(t)
    return -np.diag(logits - np.log(np.exp(logits).sum(axis=1, keepdims=True)))


WRONG_NUMPY_LOSSES = {
    "not normalised": (numpy_loss(normalise_axis=None), "not normalised"),
    "normalised across the batch": (numpy_loss(normalise_axis=0), "axis 0"),
    "normalised before projecting": (numpy_loss(normalise_first=True), "before projecting"),
    "t not exponentiated": (numpy_loss(scale=lambda t: t), "multiply by np.exp(t)"),
    "divided by the scale": (numpy_loss(scale=lambda t: np.exp(-t)), "divided by np.exp(t)"),
    "one direction": (numpy_loss(directions="texts"), "only the loss over each image's softmax"),
    "the other direction": (numpy_loss(directions="images"), "only the loss over each text's"),
    "sum of the two": (numpy_loss(reduce="sum"), "their mean"),
    "per-example losses": (per_example_losses, "return one number"),
    "scaled before normalising": (numpy_loss(scale_first=True), "after normalising"),
}


def gradient_with(rows=1.0, columns=1.0, divide=True, halve=True, sign=1.0, transpose=False):
    def wrong(logits):
        n = len(logits)
        identity = torch.eye(n)
        column_softmax = logits.t().softmax(dim=1) if transpose else logits.softmax(dim=0)
        gradient = rows * (logits.softmax(dim=1) - identity) + columns * (column_softmax - identity)
        return sign * gradient / ((n if divide else 1) * (2 if halve else 1))
    return wrong


WRONG_GRADIENTS = {
    "rows only": (gradient_with(columns=0.0), "only the text-to-image term"),
    "columns only": (gradient_with(rows=0.0), "only the image-to-text term"),
    "not divided by N": (gradient_with(divide=False), "not divided by N"),
    "not halved": (gradient_with(halve=False), "not halved"),
    "sign flipped": (gradient_with(sign=-1.0), "sign is flipped"),
    "column term transposed": (gradient_with(transpose=True), "transposed"),
    "softmax by hand": (lambda logits: by_hand_gradient(logits), "overflows float32"),
}


def softmax_by_hand(logits, dim):
    """exp(x) / sum(exp(x)): right for small logits, inf / inf = NaN near 100."""
    exp = logits.exp()
    return exp / exp.sum(dim=dim, keepdim=True)


def by_hand_gradient(logits):
    identity = torch.eye(len(logits))
    return (softmax_by_hand(logits, 1) - identity + softmax_by_hand(logits, 0) - identity) / (2 * len(logits))


def max_subtracted_in_place(logits):
    logits -= logits.max(dim=1, keepdim=True).values
    return clip_loss(logits)


def clip_loss_by_hand(logits):
    diagonal = torch.arange(len(logits))
    rows = -softmax_by_hand(logits, 1)[diagonal, diagonal].log().mean()
    columns = -softmax_by_hand(logits, 0)[diagonal, diagonal].log().mean()
    return (rows + columns) / 2


def clip_loss_summed(logits):
    targets = torch.arange(len(logits))
    return (F.cross_entropy(logits, targets, reduction="sum")
            + F.cross_entropy(logits.t(), targets, reduction="sum")) / 2


def columns_through_numpy(logits):
    """The right value, but autograd sees only the rows: the columns went through numpy."""
    targets = torch.arange(len(logits))
    columns = torch.from_numpy(logits.detach().numpy().T.copy())
    return (F.cross_entropy(logits, targets) + F.cross_entropy(columns, targets)) / 2


WRONG_CLIP_LOSSES = {  # beyond those of tests/test_checks.py
    "summed over the batch": (clip_loss_summed, "summed over the batch"),
    "a float": (lambda logits: clip_loss(logits).item(), "expected a torch.float32 tensor"),
    "detached": (lambda logits: clip_loss(logits).detach(), "the loss does not require grad"),
    "a new tensor": (lambda logits: torch.tensor(clip_loss(logits).item(), requires_grad=True),
                     "does not depend on the logits"),
    "columns through numpy": (columns_through_numpy, "the gradient of clip_loss(logits_per_text)"),
    "softmax by hand": (clip_loss_by_hand, "overflows float32"),
    "maximum subtracted in place": (max_subtracted_in_place, "an in-place operation"),
}

REFERENCES = [
    (checks.check_clip_loss_numpy, clip_loss_numpy),
    (checks.check_clip_loss_gradient, clip_loss_gradient),
    (checks.check_clip_loss, clip_loss),
]

WRONG_ANSWERS = [
    (checks.check_clip_loss_numpy, WRONG_NUMPY_LOSSES),
    (checks.check_clip_loss_gradient, WRONG_GRADIENTS),
    (checks.check_clip_loss, WRONG_CLIP_LOSSES),
]


test_reference_passes_with_one_line, test_wrong_answer_fails_and_says_why = reference_and_wrong_answer_tests(
    REFERENCES, WRONG_ANSWERS)


def in_float32(image_features, text_features, W_image, W_text, t):
    arrays = (a.astype(np.float32) for a in (image_features, text_features, W_image, W_text))
    return clip_loss_numpy(*arrays, np.float32(t))


def test_numpy_loss_computed_in_float32_passes(capsys):
    checks.check_clip_loss_numpy(in_float32)
    assert capsys.readouterr().out.startswith("✓ clip_loss_numpy")


def without_the_max_shift(image_features, text_features, W_image, W_text, t):
    """In float32, np.exp of logits near 100 overflows to inf."""
    image = (image_features @ W_image).astype(np.float32)
    text = (text_features @ W_text).astype(np.float32)
    image /= np.linalg.norm(image, axis=1, keepdims=True)
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    exp = np.exp(image @ text.T * np.float32(np.exp(t)))
    per_image = -np.log(np.diag(exp) / exp.sum(axis=1))
    per_text = -np.log(np.diag(exp) / exp.sum(axis=0))
    return (per_image.mean() + per_text.mean()) / 2


def test_numpy_loss_that_overflows_is_told_to_subtract_the_maximum():
    with np.errstate(over="ignore", invalid="ignore"), \
            pytest.raises(checks.CheckFailed, match="Subtract each row's maximum"):
        checks.check_clip_loss_numpy(without_the_max_shift)


def test_numpy_reference_agrees_with_torch_at_the_cap():
    rng = np.random.default_rng(0)
    image_features, text_features = rng.normal(size=(7, 5)), rng.normal(size=(7, 3))
    W_image, W_text = rng.normal(size=(5, 4)), rng.normal(size=(3, 4))
    image = F.normalize(torch.from_numpy(image_features @ W_image), dim=1)
    text = F.normalize(torch.from_numpy(text_features @ W_text), dim=1)
    expected = clip_loss(100 * text @ image.t()).item()
    got = clip_loss_numpy(image_features, text_features, W_image, W_text, math.log(100))
    assert got == pytest.approx(expected, rel=1e-9)


def test_numpy_cross_entropy_survives_huge_logits():
    logits = np.array([[1000.0, 0.0], [0.0, 1000.0]])
    assert cross_entropy(logits, np.array([0, 1]), axis=1) == 0.0
    assert cross_entropy(logits, np.array([1, 0]), axis=0) == pytest.approx(1000.0)


# ---- figures and the temperature explorer ------------------------------------------------


def test_losses_over_temperatures_equal_clip_loss_at_each_temperature():
    cosines = widgets_loss.toy_cosines(6, noise=3.0, seed=2)
    temperatures = [0.003, 0.01, 0.07, 1.0, 3.0]
    expected = [clip_loss(cosines / temperature).item() for temperature in temperatures]
    assert plots_loss.losses_over_temperatures(cosines, temperatures) == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_temperature_figure_shows_both_softmaxes_and_marks_the_loss():
    cosines = widgets_loss.toy_cosines(5, noise=3.0, seed=1)
    fig = plots_loss.temperature_figure(cosines, 0.05)
    rows_ax, columns_ax, curve_ax = fig.axes[:3]
    rows, columns = rows_ax.images[0].get_array(), columns_ax.images[0].get_array()
    assert abs(rows.sum(axis=1) - 1).max() < 1e-5  # each text's softmax over the images
    assert abs(columns.sum(axis=0) - 1).max() < 1e-5  # each image's softmax over the texts
    assert abs(rows - (cosines / 0.05).softmax(dim=1).numpy()).max() < 1e-6
    loss = clip_loss(cosines / 0.05).item()
    marker = next(line for line in curve_ax.lines if line.get_marker() == "o")
    assert marker.get_xdata()[0] == 0.05 and marker.get_ydata()[0] == pytest.approx(loss)
    assert f"loss {loss:.3f}" in fig.get_suptitle()
    ln_n = next(line for line in curve_ax.lines if line.get_label().startswith("ln N"))
    assert ln_n.get_ydata()[0] == pytest.approx(math.log(5))
    assert curve_ax.get_xscale() == "log" and "τ" in curve_ax.get_xlabel()
    assert curve_ax.get_ylabel() == "contrastive loss (nats)"
    assert len(rows_ax.patches) == 5  # the matching pairs, framed


def test_loss_curve_tends_to_ln_n_when_hot_and_to_zero_for_clean_pairs_when_cold():
    clean = widgets_loss.toy_cosines(8, noise=1.0)
    losses = plots_loss.losses_over_temperatures(clean, [1e-3, 1e3])
    assert losses[0] < 1e-6 and losses[1] == pytest.approx(math.log(8), abs=1e-3)


def test_explorer_default_view_and_controls():
    cosines, fig = widgets_loss.explore_temperature()
    torch.testing.assert_close(cosines, widgets_loss.toy_cosines(8, 3.0, seed=0))
    assert fig.get_suptitle().startswith("N = 8 pairs at τ = 0.07")

    explorer = widgets_loss.temperature_explorer()
    (tau, noise), (size, _), summary = explorer.children[0].children, explorer.children[1].children, \
        explorer.children[2]
    assert f"loss {clip_loss(cosines / 0.07).item():.3f}" in summary.value
    tau.value, noise.value = 10.0**-2, 0.0
    assert "logit scale 1/τ = 100" in summary.value and "8 of 8 texts" in summary.value
    size.value = 4
    assert f"ln N = {math.log(4):.3f}" in summary.value


def test_batch_size_figure_draws_ln_n_and_each_curve():
    sizes = [2, 4, 8]
    fig = plots_loss.batch_size_figure(sizes, {"a": [0.1, 0.2, 0.3], "b": [1.0, 1.5, 2.0]}, title="N")
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.lines] == ["ln N: uniform logits", "a", "b"]
    assert list(ax.lines[0].get_ydata()) == pytest.approx([math.log(n) for n in sizes])
    assert ax.get_title() == "N" and ax.get_xlabel().startswith("batch size")


def test_clamp_figure_marks_the_start_and_the_cap():
    scales = [1.0, 10.0, 100.0]
    fig = plots_loss.clamp_figure(scales, {"x": [3.0, 1.0, 2.0]}, {"x": [0.1, 1.0, 10.0]}, title="cap")
    left, right = fig.axes
    assert fig.get_suptitle() == "cap" and right.get_yscale() == "log"
    for ax in (left, right):
        vertical = [line.get_xdata()[0] for line in ax.lines[1:]]
        assert vertical == pytest.approx([1 / 0.07, 100.0])
