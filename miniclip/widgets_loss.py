"""Chapter 07's temperature explorer: move τ over a similarity matrix, watch the softmax and the loss.

The matrix holds the cosines of made-up (text, image) pairs (`plots_model.toy_embeddings`):
the noise slider sets how far each image lies from its text, that is how well trained the
imagined model is. `explore_temperature` makes the figure (and is what the tests call);
`temperature_explorer` only wires controls to it.
"""

from __future__ import annotations

import math

import torch
from matplotlib.figure import Figure

from miniclip import plots_loss
from miniclip.loss import clip_loss
from miniclip.plots_model import toy_embeddings


def toy_cosines(size: int, noise: float, seed: int = 0) -> torch.Tensor:
    """The (size, size) cosines of made-up pairs, texts as rows and images as columns."""
    text, image = toy_embeddings(size, noise, seed=seed)
    return text @ image.t()


def explore_temperature(temperature: float = 0.07, noise: float = 3.0, size: int = 8,
                        seed: int = 0) -> tuple[torch.Tensor, Figure]:
    """The cosines of `size` made-up pairs and the explorer's figure at temperature τ."""
    cosines = toy_cosines(size, noise, seed)
    return cosines, plots_loss.temperature_figure(cosines, temperature)


def temperature_explorer(temperature: float = 0.07, noise: float = 3.0, size: int = 8):
    """Sliders for τ (log scale), the noise of the pairs, the batch size and the seed."""
    import ipywidgets as widgets
    from IPython.display import display

    tau = widgets.FloatLogSlider(value=temperature, base=10, min=-2.5, max=0.5, step=0.05,
                                 description="τ", readout_format=".3g", continuous_update=False)
    noise_slider = widgets.FloatSlider(value=noise, min=0.0, max=6.0, step=0.25,
                                       description="noise", continuous_update=False)
    size_slider = widgets.IntSlider(value=size, min=2, max=16, description="N pairs",
                                    continuous_update=False)
    seed = widgets.IntSlider(value=0, min=0, max=20, description="seed", continuous_update=False)
    summary = widgets.HTML()
    figure = widgets.Output()

    def redraw(_=None) -> None:
        cosines, drawn = explore_temperature(tau.value, noise_slider.value, size_slider.value,
                                             seed.value)
        loss = clip_loss(cosines / tau.value).item()
        correct = (cosines.argmax(dim=1) == torch.arange(len(cosines))).sum().item()
        summary.value = (f"<b>loss {loss:.3f}</b> (ln N = {math.log(len(cosines)):.3f}) · "
                         f"logit scale 1/τ = {1 / tau.value:.3g} · "
                         f"{correct} of {len(cosines)} texts rank their own image first")
        with figure:
            figure.clear_output(wait=True)
            display(drawn)

    for control in (tau, noise_slider, size_slider, seed):
        control.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([tau, noise_slider]), widgets.HBox([size_slider, seed]),
                         summary, figure])
