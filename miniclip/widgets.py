"""Interactive explorers for the course notebooks, built with ipywidgets.

Chapter 02's attention explorer: type a sentence and see its CLIP tokens, the causal and
padding masks that apply to it, and the attention weights of a small text encoder, layer
by layer and head by head. `explore` makes the figure (and is what the tests call);
`attention_explorer` only wires controls to it. The figures come from `miniclip.plots`.
"""

from __future__ import annotations

import html

import torch
from matplotlib.figure import Figure

from miniclip import plots
from miniclip.attention import causal_mask, padding_mask
from miniclip.config import TextConfig
from miniclip.text import TextTransformer
from miniclip.tokenizer import Tokenizer

# Small enough to run at every keystroke; the vocabulary is CLIP's, so any text works.
EXPLORER_CONFIG = TextConfig(hidden_size=64, intermediate_size=256, num_hidden_layers=2,
                             num_attention_heads=4)


def explorer_model(seed: int = 0) -> TextTransformer:
    """An untrained text encoder with fixed random weights: its maps show masks, not meaning."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return TextTransformer(EXPLORER_CONFIG).eval()


def explore(model: TextTransformer, tokenizer: Tokenizer, text: str, pad_to: int = 16,
            layer: int = 0, head: int = 0) -> tuple[list[str], list[int], Figure]:
    """Tokenize `text` padded to `pad_to` tokens; return its labels, ids and the figure."""
    batch = tokenizer([text], context_length=pad_to, padding="max_length")
    input_ids, attention_mask = batch["input_ids"], batch["attention_mask"]
    with torch.no_grad():
        output = model(input_ids, attention_mask, output_attentions=True)
    labels = plots.token_labels(tokenizer, input_ids[0], attention_mask[0])
    length = input_ids.size(1)
    figure = plots.explorer_figure(
        labels, causal_mask(length)[0, 0], padding_mask(attention_mask)[0, 0],
        output.attentions[layer][0, head], title=f"attention weights, layer {layer}, head {head}")
    return labels, input_ids[0].tolist(), figure


def attention_explorer(text: str = "a photo of a cat on a mat",
                       model: TextTransformer | None = None, tokenizer: Tokenizer | None = None):
    """A text box, sliders for padding, layer and head, and the explorer's figure."""
    import ipywidgets as widgets
    from IPython.display import display

    model = model or explorer_model()
    tokenizer = tokenizer or Tokenizer.from_openai()
    config = model.config
    sentence = widgets.Text(value=text, description="sentence", continuous_update=False,
                            layout=widgets.Layout(width="60%"))
    pad_to = widgets.IntSlider(value=16, min=3, max=config.max_position_embeddings,
                               description="pad to", continuous_update=False)
    layer = widgets.IntSlider(value=0, min=0, max=config.num_hidden_layers - 1,
                              description="layer", continuous_update=False)
    head = widgets.IntSlider(value=0, min=0, max=config.num_attention_heads - 1,
                             description="head", continuous_update=False)
    tokens = widgets.HTML()
    figure = widgets.Output()

    def redraw(_=None) -> None:
        labels, ids, drawn = explore(model, tokenizer, sentence.value, pad_to.value,
                                     layer.value, head.value)
        pieces = [f"<code>{html.escape(label)}</code>&nbsp;<sub>{token_id}</sub>"
                  for label, token_id in zip(labels, ids)]
        tokens.value = f"<b>{len(ids)} tokens:</b> " + " ".join(pieces)
        with figure:
            figure.clear_output(wait=True)
            display(drawn)

    for control in (sentence, pad_to, layer, head):
        control.observe(redraw, names="value")
    redraw()
    return widgets.VBox([sentence, widgets.HBox([pad_to, layer, head]), tokens, figure])
