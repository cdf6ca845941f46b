"""Checks of the Transformer encoder (chapter 03)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from miniclip import transformer as transformer_module
from miniclip.attention import causal_mask, combine_masks, padding_mask
from miniclip.checks.core import (
    FLAGS,
    CheckFailed,
    Mistakes,
    additive,
    compare,
    compare_listed,
    describe,
    exercise,
    hf_config,
    keeping_inputs,
    load,
    pair,
    randn,
    randomize,
    right_padded,
)
from miniclip.config import TextConfig


def small_config(layers: int = 1) -> TextConfig:
    return TextConfig(hidden_size=24, intermediate_size=40, num_attention_heads=4,
                      num_hidden_layers=layers)


@exercise("quick_gelu", transformer_module.QuickGELU)
def check_quick_gelu(quick_gelu: Callable) -> str:
    from transformers.activations import ACT2FN

    x = torch.cat([torch.linspace(-6, 6, 121), randn(39, seed=9) * 3]).view(4, 40)
    expected = transformer_module.QuickGELU()(x)
    mistakes = [
        (F.gelu(x),
         ("that is the exact GELU, x·Φ(x). CLIP was trained with its sigmoid "
          "approximation x·σ(1.702·x); the two differ by up to 0.02, enough to move a "
          "trained model's outputs.")),
        (F.gelu(x, approximate="tanh"),
         ("that is GELU's tanh approximation; CLIP uses the "
          "sigmoid one, x·σ(1.702·x).")),
        (torch.sigmoid(1.702 * x), "that is the gate alone; multiply it by x."),
        (F.silu(x), "that is SiLU, x·σ(x); the constant 1.702 is missing."),
        (x * torch.sigmoid(x / 1.702), "divide by 1.702? multiply: x·σ(1.702·x)."),
    ]
    what = "quick_gelu(x) for x of shape (4, 40) between -6 and 6"
    got = keeping_inputs(what, quick_gelu, x)
    compare(what, got, expected, mistakes, atol=1e-6, rtol=1e-5)
    compare("quick_gelu(x) against transformers' ACT2FN['quick_gelu']", got,
            ACT2FN["quick_gelu"](x), atol=1e-6, rtol=1e-5)
    return "x·σ(1.702·x), equal to miniclip's QuickGELU and transformers' quick_gelu"


@exercise("MLP", transformer_module.MLP)
def check_mlp(mlp_class: type) -> str:
    from transformers.models.clip.modeling_clip import CLIPMLP

    torch.manual_seed(0)
    theirs = randomize(CLIPMLP(hf_config(hidden_size=24, intermediate_size=40)), seed=10)
    yours = load(mlp_class(24, 40), theirs.state_dict(), "MLP(24, 40)")
    x = randn(2, 5, 24, seed=11)
    with torch.no_grad():
        got = yours(x)
        fc1, fc2 = theirs.fc1, theirs.fc2
        mistakes = [
            (fc2(fc1(x)),
             ("no activation between fc1 and fc2: two linear maps in a row are "
              "one linear map. Apply QuickGELU to fc1's output.")),
            (fc2(F.gelu(fc1(x))), "exact GELU; CLIP uses QuickGELU, x·σ(1.702·x)."),
            (fc2(F.relu(fc1(x))), "ReLU; CLIP uses QuickGELU, x·σ(1.702·x)."),
        ]
        expected = transformer_module.MLP(24, 40)
        expected.load_state_dict(theirs.state_dict())
        compare("MLP(24, 40)(x) for x of shape (2, 5, 24)", got, expected(x), mistakes)
        compare("MLP(24, 40)(x) against transformers' CLIPMLP", got, theirs(x))
    return "fc1, QuickGELU, fc2; equal to miniclip's MLP and transformers' CLIPMLP"


def layer_variants(layer: transformer_module.EncoderLayer, x, mask, causal) -> Mistakes:
    """What common wrong encoder layers compute, with a hint for each."""

    def attend(h):
        return layer.self_attn(h, mask, causal)[0]

    norm1, norm2, mlp = layer.layer_norm1, layer.layer_norm2, layer.mlp
    post = norm1(x + attend(x))
    no_residual = attend(norm1(x))
    normed = norm1(x)
    normed_residual = normed + attend(normed)
    middle = x + attend(norm1(x))
    swapped = x + attend(norm2(x))
    return [
        (norm2(post + mlp(post)),
         ("LayerNorm after each residual sum is the post-LN layer of "
          "the 2017 paper; CLIP normalises each sub-layer's *input*: x + attn(layer_norm1(x)).")),
        (mlp(norm2(no_residual)),
         ("no residual connections: add each sub-layer's output to "
          "its input, x = x + attn(layer_norm1(x)).")),
        (normed_residual + mlp(norm2(normed_residual)),
         ("the residual adds the *normalised* "
          "x; keep the raw x in the residual stream: x + attn(layer_norm1(x)).")),
        (middle + mlp(norm2(x)),
         ("the MLP read the layer's input; it reads the stream *after* "
          "the attention: x = x + attn(...), then x = x + mlp(layer_norm2(x)).")),
        (swapped + mlp(norm1(swapped)),
         ("layer_norm1 and layer_norm2 are swapped: layer_norm1 "
          "goes before the attention, layer_norm2 before the MLP.")),
        (middle, "the MLP sub-layer is missing: x = x + mlp(layer_norm2(x))."),
    ]


@exercise("EncoderLayer", transformer_module.EncoderLayer)
def check_encoder_layer(layer_class: type) -> str:
    from transformers.models.clip.modeling_clip import CLIPEncoderLayer

    config = small_config()
    torch.manual_seed(0)
    theirs = randomize(CLIPEncoderLayer(hf_config(hidden_size=24, intermediate_size=40,
                                                  num_attention_heads=4)), seed=12)
    reference = transformer_module.EncoderLayer(config)
    reference.load_state_dict(theirs.state_dict())
    yours = load(layer_class(config), theirs.state_dict(), "EncoderLayer")
    x = randn(2, 6, 24, seed=13)
    padding = padding_mask(right_padded([6, 4], 6))
    for case, mask, causal in [("no mask", None, False), ("causal + padding", padding, True)]:
        full = combine_masks(causal_mask(6) if causal else None, mask)
        full = full if full is not None else torch.ones(1, 1, 6, 6, dtype=torch.bool)
        for output_attentions in (False, True):
            call = (f"EncoderLayer(x, mask, causal={causal}, output_attentions="
                    f"{output_attentions}) [{case}]")
            with torch.no_grad():
                got, weights = pair(call, keeping_inputs(call, yours, x, mask=mask, causal=causal,
                                                         output_attentions=output_attentions))
                expected, expected_weights = reference(x, mask, causal, output_attentions)
                mistakes = [*layer_variants(reference, x, mask, causal)]
                if causal:
                    mistakes.append((reference(x, mask)[0],
                                     ("causal=True was not passed on to "
                                      "self_attn.")))
                compare(call, got, expected, mistakes)
                compare(f"{call}, against transformers' CLIPEncoderLayer", got,
                        theirs(x, additive(full)))
                compare(f"{call}, attention weights", weights, expected_weights)
    return ("x + attn(layer_norm1(x)), then x + mlp(layer_norm2(x)); equal to miniclip's "
            "EncoderLayer and transformers' CLIPEncoderLayer")


@exercise("Encoder", transformer_module.Encoder)
def check_encoder(encoder_class: type) -> str:
    from transformers.models.clip.modeling_clip import CLIPEncoder

    config = small_config(layers=3)
    torch.manual_seed(0)
    theirs = randomize(CLIPEncoder(hf_config(hidden_size=24, intermediate_size=40,
                                             num_attention_heads=4, num_hidden_layers=3)), seed=14)
    reference = transformer_module.Encoder(config)
    reference.load_state_dict(theirs.state_dict())
    yours = load(encoder_class(config), theirs.state_dict(), "Encoder")
    x = randn(2, 6, 24, seed=15)
    mask = padding_mask(right_padded([6, 4], 6))
    with torch.no_grad():
        call = "Encoder(x, mask, causal=True)"
        result = keeping_inputs(call, yours, x, mask=mask, causal=True)
        if not isinstance(result, tuple) or len(result) != 3:
            raise CheckFailed(f"{call} returned {describe(result)}; it should return "
                              "(last hidden state, hidden_states or None, attentions or None)")
        last, hidden_states, attentions = result
        expected, _, _ = reference(x, mask, causal=True)
        first_layer_only = x
        for _ in range(3):
            first_layer_only = reference.layers[0](first_layer_only, mask, True)[0]
        ignored_mask = reference(x, None, causal=True)[0]
        not_causal = reference(x, mask, causal=False)[0]
        causal_hint = ("the layers did not get causal={}: pass `causal` on to every layer, "
                       "layer(x, mask, causal, output_attentions).")
        compare(call, last, expected, [
            (first_layer_only, "every step used the first layer; loop over self.layers."),
            (reference.layers[0](x, mask, True)[0],
             ("only one layer ran; x must go through "
              "all of them in turn.")),
            (ignored_mask, "the padding mask was not passed to the layers."),
            (not_causal, causal_hint.format(True)),
        ])
        their_last = theirs(x, attention_mask=additive(combine_masks(causal_mask(6), mask)))
        compare(f"{call}, against transformers' CLIPEncoder", last, their_last.last_hidden_state)
        compare(f"{call}, hidden_states when not asked for", hidden_states, None)
        compare(f"{call}, attentions when not asked for", attentions, None)

        call = "Encoder(x, mask, causal=False)"
        last = yours(x, mask=mask, causal=False)[0]
        compare(call, last, not_causal, [(expected, causal_hint.format(False))])
        every_key = torch.ones(1, 1, 6, 6, dtype=torch.bool)
        their_last = theirs(x, attention_mask=additive(combine_masks(every_key, mask)))
        compare(f"{call}, against transformers' CLIPEncoder", last, their_last.last_hidden_state)

        for states, weights in FLAGS:
            call = (f"Encoder(x, mask, causal=True, output_hidden_states={states}, "
                    f"output_attentions={weights})")
            _, hidden_states, attentions = yours(x, mask=mask, causal=True,
                                                 output_hidden_states=states, output_attentions=weights)
            _, expected_states, expected_attentions = reference(
                x, mask, causal=True, output_hidden_states=states, output_attentions=weights)
            compare_listed(call, "hidden_states", hidden_states, expected_states,
                           "num_hidden_layers + 1 tensors: the input, then each layer's output "
                           "(transformers counts them so)")
            compare_listed(call, "attentions", attentions, expected_attentions,
                           "one (B, H, T, T) tensor per layer")
    return ("3 layers in turn, with hidden_states (4 tensors) and attentions (3) on request; "
            "equal to miniclip's Encoder and transformers' CLIPEncoder")
