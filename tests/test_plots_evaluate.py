"""The figures and the playground of chapters 00 and 10 draw what they are given, labelled."""

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from miniclip import plots_evaluate, widgets_evaluate
from miniclip.data.shapes import HELD_OUT_PAIRS

GREEN, RED = plots_evaluate.RIGHT, plots_evaluate.WRONG


def picture(value: int) -> Image.Image:
    """An 8 x 8 image of one grey level, so that a panel can tell which one it shows."""
    return Image.new("RGB", (8, 8), (value, value, value))


def shown(axis) -> int:
    """The grey level of the (first) image drawn in a panel."""
    return int(np.asarray(axis.images[0].get_array())[0, 0, 0])


def edge(axis) -> str:
    from matplotlib.colors import to_hex

    return to_hex(axis.spines["left"].get_edgecolor())


def test_similarity_figure_draws_the_matrix_with_captions_and_images():
    similarity = torch.tensor([[0.9, 0.1, 0.2], [0.3, 0.8, -0.1]])
    captions = ["a red circle", "a blue square"]
    fig = plots_evaluate.similarity_figure(similarity, [picture(10), picture(20), picture(30)],
                                           captions, title="cosines")
    axis = fig.axes[0]
    assert axis.get_title() == "cosines"
    assert np.allclose(axis.images[0].get_array(), similarity.numpy())
    assert [label.get_text() for label in axis.get_yticklabels()] == captions
    assert [int(np.asarray(image.get_array())[0, 0, 0]) for image in axis.images[1:]] == [10, 20, 30]
    bold = [text.get_text() for text in axis.texts if text.get_fontweight() == "bold"]
    assert bold == ["0.90", "0.80"]  # the largest of each row
    assert fig.axes[-1].get_ylabel() == "cosine similarity"


def test_probability_figure_sorts_the_top_labels_and_marks_the_truth():
    labels = ["red circle", "blue square", "green star", "purple cross"]
    probabilities = torch.tensor([0.1, 0.6, 0.25, 0.05])
    fig = plots_evaluate.probability_figure(picture(0), labels, probabilities, title="p", top=3,
                                            truth="green star")
    bars = fig.axes[1]
    names = [label.get_text() for label in bars.get_yticklabels()]
    widths = {name: patch.get_width() for name, patch in zip(names, bars.patches)}
    assert widths == pytest.approx({"blue square": 0.6, "green star": 0.25, "red circle": 0.1})
    top_bar = max(bars.patches, key=lambda patch: patch.get_y())
    assert top_bar.get_width() == pytest.approx(0.6)  # the largest is drawn on top
    colours = {name: patch.get_facecolor() for name, patch in zip(names, bars.patches)}
    assert np.allclose(colours["green star"][:3], [int(GREEN[i:i + 2], 16) / 255 for i in (1, 3, 5)])
    assert "probability" in bars.get_xlabel()


def test_predictions_figure_frames_right_green_and_wrong_red():
    fig = plots_evaluate.predictions_figure([picture(1), picture(2), picture(3)],
                                            ["red star", "blue cross", "red circle"], [0.5, 0.4, 0.3],
                                            ["red star", "blue square", "red circle"], title="preds",
                                            columns=2)
    assert [edge(axis) for axis in fig.axes[:3]] == [GREEN, RED, GREEN]
    assert fig.axes[1].get_title() == "blue cross (0.40)"
    assert fig.axes[1].get_xlabel() == "truth: blue square"
    assert not fig.axes[3].axison  # the fourth panel is empty


def test_search_figure_shows_each_querys_images_in_order():
    images = [picture(10 * i) for i in range(6)]
    scores = torch.tensor([[0.9, 0.8], [0.7, 0.6]])
    indices = torch.tensor([[3, 1], [0, 5]])
    matches = torch.tensor([[True, False], [False, True]])
    fig = plots_evaluate.search_figure(["q0", "q1"], images, scores, indices, title="search",
                                       matches=matches, match_labels=("own", "other"))
    assert [shown(axis) for axis in fig.axes] == [30, 10, 0, 50]
    assert [axis.get_xlabel() for axis in fig.axes] == ["#1: 0.900", "#2: 0.800", "#1: 0.700", "#2: 0.600"]
    assert [edge(axis) for axis in fig.axes] == [GREEN, RED, RED, GREEN]
    assert fig.axes[0].get_ylabel() == "q0" and fig.axes[2].get_ylabel() == "q1"
    assert [text.get_text() for text in fig.legends[0].get_texts()] == ["own", "other"]


def test_ranking_figure_marks_each_images_own_captions():
    fig = plots_evaluate.ranking_figure([picture(0)], [["mine", "not mine"]], torch.tensor([[0.9, 0.5]]),
                                        torch.tensor([[True, False]]), title="ranking")
    lines = [text.get_text() for text in fig.axes[1].texts]
    assert lines == ["#1  0.900  ✓  mine", "#2  0.500  ✗  not mine"]


def test_template_figure_has_a_bar_per_split_and_prompt_and_the_chance_line():
    accuracies = {"held out": [0.1, 0.2, 0.15], "seen": [0.5, 0.6, 0.7]}
    fig = plots_evaluate.template_figure(accuracies, ["a {}.", "the {}.", "ensemble"], chance=1 / 36,
                                         title="templates")
    axis = fig.axes[0]
    widths = sorted(round(patch.get_width(), 3) for patch in axis.patches)
    assert widths == sorted(accuracies["held out"] + accuracies["seen"])
    assert [label.get_text() for label in axis.get_yticklabels()] == ['"a {}."', '"the {}."', "ensemble"]
    assert axis.lines[0].get_xdata()[0] == pytest.approx(1 / 36)
    assert "accuracy" in axis.get_xlabel()


def test_pair_accuracy_figure_frames_the_held_out_pairs():
    from matplotlib.patches import Rectangle

    accuracy = np.linspace(0, 1, 36).reshape(6, 6)
    colours = ["red", "orange", "yellow", "green", "blue", "purple"]
    kinds = ["circle", "square", "triangle", "star", "cross", "diamond"]
    fig = plots_evaluate.pair_accuracy_figure(accuracy, colours, kinds, HELD_OUT_PAIRS, title="pairs")
    axis = fig.axes[0]
    frames = sorted((round(p.get_y() + 0.48), round(p.get_x() + 0.48)) for p in axis.patches
                    if isinstance(p, Rectangle))
    assert frames == sorted((colours.index(c), kinds.index(k)) for c, k in HELD_OUT_PAIRS)
    assert np.allclose(axis.images[0].get_array(), accuracy)


def test_recall_figure_draws_each_direction_and_its_chance():
    fig = plots_evaluate.recall_figure([1, 2, 3], {"i2t": [0.2, 0.4, 0.5], "t2i": [0.1, 0.3, 0.6]},
                                       {"i2t": [0.01, 0.02, 0.03], "t2i": [0.0, 0.1, 0.2]}, title="recall")
    axis = fig.axes[0]
    assert len(axis.lines) == 4
    assert list(axis.lines[0].get_ydata()) == [0.2, 0.4, 0.5]
    assert axis.get_ylim() == (0, 1.02)


def test_principal_axes_finds_the_directions_of_largest_spread():
    torch.manual_seed(0)
    direction = F.normalize(torch.tensor([1.0, 2.0, -2.0]), dim=0)
    other = F.normalize(torch.tensor([2.0, -1.0, 0.0]), dim=0)
    points = (torch.randn(500, 1) * 5 * direction + torch.randn(500, 1) * 1 * other
              + torch.randn(500, 3) * 0.01 + torch.tensor([3.0, -1.0, 0.5]))
    mean, axes = plots_evaluate.principal_axes(points)
    assert torch.allclose(mean, points.mean(dim=0))
    assert torch.allclose(axes.t() @ axes, torch.eye(2), atol=1e-5)  # orthonormal
    assert abs(axes[:, 0] @ direction) > 0.999 and abs(axes[:, 1] @ other) > 0.99
    assert (axes.gather(0, axes.abs().argmax(dim=0, keepdim=True)) > 0).all()  # signs fixed
    _, flipped = plots_evaluate.principal_axes(-points)
    assert torch.allclose(flipped, axes, atol=1e-5)  # the same picture, whatever SVD's signs


def test_embedding_map_draws_every_point_and_names_the_held_out_pairs():
    torch.manual_seed(0)
    classnames = [f"{c} {k}" for c in ("red", "orange", "yellow", "green", "blue", "purple")
                  for k in ("circle", "square", "triangle", "star", "cross", "diamond")]
    class_embeds = F.normalize(torch.randn(36, 16), dim=-1)
    image_names = [classnames[i % 36] for i in range(72)]
    image_embeds = F.normalize(torch.randn(72, 16), dim=-1)
    fig = plots_evaluate.embedding_map(image_embeds, image_names, class_embeds, classnames,
                                       HELD_OUT_PAIRS, title="map")
    left, right = fig.axes
    counts = lambda axis: sum(len(c.get_offsets()) for c in axis.collections)  # noqa: E731
    assert counts(left) == 72 + 36 and counts(right) == 36
    assert sorted(text.get_text() for text in right.texts) == sorted(" ".join(p) for p in HELD_OUT_PAIRS)
    assert "principal component 1" in left.get_xlabel()


# ---- the playground --------------------------------------------------------------------


class StubEncoder:
    """texts(): a fixed unit vector per known text; a model whose scale exp(logit_scale) is 10."""

    def __init__(self, vectors: dict[str, torch.Tensor]):
        self.vectors = vectors
        self.model = SimpleNamespace(logit_scale=torch.tensor(math.log(10.0)))

    def texts(self, texts):
        return F.normalize(torch.stack([self.vectors[text] for text in texts]), dim=-1)


def stub():
    axes = torch.eye(4)
    encoder = StubEncoder({"a photo of the red circle.": axes[0], "a photo of the blue star.": axes[1],
                           "red things": axes[0] + 0.1 * axes[2]})
    features = F.normalize(torch.stack([axes[1], axes[0] + 0.5 * axes[3], axes[0], axes[2]]), dim=-1)
    return encoder, [picture(10 * i) for i in range(4)], features


def test_parse_labels_splits_on_commas_and_drops_blanks():
    assert widgets_evaluate.parse_labels(" red circle, blue star ,, ") == ["red circle", "blue star"]


def test_play_classifies_the_image_and_searches_the_pool():
    encoder, images, features = stub()
    probabilities, indices, fig = widgets_evaluate.play(encoder, images, features, image_index=2,
                                                        labels="red circle, blue star",
                                                        query="red things", top=2)
    expected = torch.softmax(torch.tensor([10.0, 0.0]), dim=0)  # image 2 is the red circle's vector
    assert torch.allclose(probabilities, expected)
    assert indices.tolist() == [2, 1]  # the two images along "red"
    upper, lower = fig.subfigs
    assert shown(upper.axes[0]) == 20  # the chosen image
    assert [shown(axis) for axis in lower.axes] == [20, 10]
    assert "red things" in lower.get_suptitle()


@pytest.mark.parametrize("labels, template, message", [
    (" , ", "a photo of the {}.", "at least one label"),
    ("red circle", "a photo", "needs exactly one {}"),
    ("red circle", "a {} next to a {}.", "needs exactly one {}"),  # format() would find no 2nd label
    ("red circle", "a {shape}: {}.", "no other {...}"),
    ("red circle", "a photo of {", "not a format string"),
])
def test_play_refuses_what_it_cannot_draw(labels, template, message):
    encoder, images, features = stub()
    with pytest.raises(ValueError, match=message):
        widgets_evaluate.play(encoder, images, features, 0, labels, "red things", template)


def test_playground_redraws_and_reports_bad_input():
    encoder, images, features = stub()
    view = widgets_evaluate.playground(encoder, images, features, labels="red circle, blue star",
                                       query="red things")
    image_index, labels, template, query, message, _ = view.children
    assert image_index.max == 3 and message.value == ""
    labels.value = " , "
    assert "at least one label" in message.value
    labels.value = "blue star"
    assert message.value == ""
    template.value = "no slot for the label"
    assert "needs exactly one {}" in message.value
    template.value = "a {} beside a {}"
    assert "needs exactly one {}" in message.value
    template.value = "a photo of the {}."
    query.value = "a photo of the blue star."
    assert message.value == ""
