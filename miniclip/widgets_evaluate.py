"""Chapter 10's playground: type labels or a query, see what a trained CLIP makes of them.

Pick an image of a pool and type any labels: the playground puts each into a prompt
template, embeds it and shows the softmax over the labels (zero-shot classification with
classes chosen on the spot). Type a query: it shows the pool's best images for it
(text-to-image search). `play` computes both and draws the figure (the tests call it);
`playground` only wires controls to it. The figure comes from `miniclip.plots_evaluate`.
"""

from __future__ import annotations

import string
from collections.abc import Sequence

import torch
from matplotlib.figure import Figure
from PIL import Image

from miniclip import plots_evaluate
from miniclip.evaluate import Encoder


def parse_labels(text: str) -> list[str]:
    """ "red circle, blue star ," -> ["red circle", "blue star"]: comma-separated, blanks dropped."""
    return [label.strip() for label in text.split(",") if label.strip()]


def classify(encoder: Encoder, image_features: torch.Tensor, labels: Sequence[str],
             template: str = "a photo of the {}.") -> torch.Tensor:
    """(len(labels),) probabilities for one image's unit features (D,): the softmax over the
    labels, each put into `template`, of exp(logit_scale) times the cosine similarity."""
    text_features = encoder.texts([template.format(label) for label in labels])  # (L, D)
    scale = encoder.model.logit_scale.exp().item()
    return (scale * text_features @ image_features).softmax(dim=-1)


def search(encoder: Encoder, image_features: torch.Tensor, query: str, top: int = 6
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosine similarities and indices of the `top` images (rows of `image_features`) for `query`."""
    similarity = encoder.texts([query])[0] @ image_features.t()  # (N,)
    best = similarity.topk(min(top, len(similarity)))
    return best.values, best.indices


def check_template(template: str) -> None:
    """A prompt template holds one `{}` where the label goes, and no other field."""
    try:
        fields = [field for _, field, _, _ in string.Formatter().parse(template) if field is not None]
    except ValueError as error:  # an unmatched brace
        raise ValueError(f"the template {template!r} is not a format string: {error}") from None
    if fields != [""]:
        raise ValueError(f"the template needs exactly one {{}} where the label goes, and no other "
                         f"{{...}}; got {template!r}")


def play(encoder: Encoder, images: Sequence[Image.Image], image_features: torch.Tensor,
         image_index: int, labels: str, query: str, template: str = "a photo of the {}.",
         top: int = 6) -> tuple[torch.Tensor, torch.Tensor, Figure]:
    """The playground's view: (label probabilities, indices of the best images, figure)."""
    names = parse_labels(labels)
    if not names:
        raise ValueError("type at least one label, e.g. 'red circle, blue square'")
    check_template(template)
    probabilities = classify(encoder, image_features[image_index], names, template)
    scores, indices = search(encoder, image_features, query, top)
    figure = plots_evaluate.playground_figure(images[image_index], names, probabilities, query,
                                              images, scores, indices)
    return probabilities, indices, figure


def playground(encoder: Encoder, images: Sequence[Image.Image], image_features: torch.Tensor | None = None,
               labels: str = "red circle, red square, blue circle, blue square",
               query: str = "a red circle", template: str = "a photo of the {}."):
    """Controls for the image, the labels, the template and the query, above `play`'s figure."""
    import ipywidgets as widgets
    from IPython.display import display

    if image_features is None:
        image_features = encoder.images(list(images))
    layout = widgets.Layout(width="70%")
    image_index = widgets.IntSlider(value=0, min=0, max=len(images) - 1, description="image",
                                    continuous_update=False)
    label_box = widgets.Text(value=labels, description="labels", continuous_update=False, layout=layout)
    template_box = widgets.Text(value=template, description="template", continuous_update=False,
                                layout=layout)
    query_box = widgets.Text(value=query, description="query", continuous_update=False, layout=layout)
    message = widgets.HTML()
    figure = widgets.Output()

    def redraw(_=None) -> None:
        try:
            _, _, drawn = play(encoder, images, image_features, image_index.value, label_box.value,
                               query_box.value, template_box.value)
        except ValueError as error:
            message.value = f"<b>{error}</b>"
            return
        message.value = ""
        with figure:
            figure.clear_output(wait=True)
            display(drawn)

    for control in (image_index, label_box, template_box, query_box):
        control.observe(redraw, names="value")
    redraw()
    return widgets.VBox([image_index, label_box, template_box, query_box, message, figure])
