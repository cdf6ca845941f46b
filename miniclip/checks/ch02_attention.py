"""Checks of attention and its masks (chapter 02)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from miniclip import attention as attention_module
from miniclip.attention import Attention, causal_mask, combine_masks, padding_mask
from miniclip.checks.core import (
    CheckFailed,
    Mistakes,
    additive,
    compare,
    exercise,
    explained,
    hf_config,
    keeping_inputs,
    load,
    pair,
    randn,
    randomize,
    right_padded,
)


def scores_softmax(query, key, mask, scale, dim=-1, mask_before=True):
    """Softmax of masked scores, with knobs that reproduce common mistakes."""
    scores = query @ key.transpose(-2, -1) * scale
    if mask is not None and mask_before:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = scores.softmax(dim=dim)
    if mask is not None:
        weights = weights.masked_fill(~mask, 0.0)
    return weights


def bfloat16_case() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """query and key (2, 2, 6, 16) in bfloat16, entries in {-1.5, -1, ..., 1.5}, and a causal mask.
    Every score q·k / √16 is then a bfloat16 number, however it is computed, so a softmax in
    float32 rounded once to bfloat16 gives exactly the reference's weights."""
    query, key = (torch.randint(-3, 4, (2, 2, 6, 16), generator=torch.Generator().manual_seed(seed))
                  / 2 for seed in (5, 6))
    return query.bfloat16(), key.bfloat16(), causal_mask(6)


LARGE = "causal, query and key x 30 (scores in the hundreds)"  # where exp / sum overflows


@exercise("attention_weights", attention_module.attention_weights)
def check_attention_weights(attention_weights: Callable) -> str:
    from transformers.models.clip.modeling_clip import eager_attention_forward

    query, key, value = (randn(2, 3, 5, 8, seed=seed) for seed in (1, 2, 3))
    d = query.size(-1)
    row_without_keys = torch.ones(1, 1, 5, 5, dtype=torch.bool)
    row_without_keys[..., 2, :] = False
    cases = {
        "no mask": None,
        "causal": causal_mask(5),
        "causal + padding (lengths 5 and 3)": combine_masks(
            causal_mask(5), padding_mask(right_padded([5, 3], 5))),
        "query 2 may see no key": row_without_keys,
        LARGE: causal_mask(5),
    }
    small = query, key
    for case, mask in cases.items():
        query, key = (x * 30 for x in small) if case == LARGE else small
        what = f"attention_weights(query, key, mask) with mask = {case}, query (2, 3, 5, 8)"
        with explained(what, TypeError, "NoneType", "mask=None means no masking: skip the "
                       "masked_fill steps when mask is None."):
            got = attention_weights(query, key, mask)
        if case == LARGE and isinstance(got, torch.Tensor) and not got.isfinite().all():
            raise CheckFailed(f"{what}: the weights hold inf or NaN\nHint: exp() of scores in the "
                              "hundreds overflows float32 (exp(89) is already inf); softmax "
                              "subtracts each row's maximum first, which leaves it unchanged: use "
                              "scores.softmax(dim=-1), not exp(scores) / exp(scores).sum(...).")
        expected = attention_module.attention_weights(query, key, mask)
        full = mask if mask is not None else torch.ones(1, 1, 5, 5, dtype=torch.bool)
        mistakes = [
            (scores_softmax(query, key, mask, d**-0.5, dim=-2),
             ("each column sums to 1: the softmax ran over the queries (dim=-2). Each query's "
              "weights over the keys must sum to 1: softmax(dim=-1).")),
            (scores_softmax(query, key, mask, 1.0),
             f"the scores are not scaled: divide q·k by √d = √{d} before the softmax."),
            (scores_softmax(query, key, mask, 1 / d),
             f"the scores are divided by d = {d}; divide by √d = √{d}."),
            (scores_softmax(query, key, mask, d**0.5),
             f"the scores are multiplied by √d; divide by √{d}."),
            (scores_softmax(query, key, mask, d**-0.5, mask_before=False),
             ("masked weights were set to 0 after the softmax, so the others no longer sum "
              "to 1; fill masked scores with -inf *before* the softmax.")),
            (scores_softmax(query, key, ~full, d**-0.5),
             "the mask is inverted: True means the query *may* attend to that key."),
            (scores_softmax(query, key, None, d**-0.5),
             ("the mask was ignored: fill the scores "
              "of masked keys (mask False) with -inf before the softmax.")),
            ((query @ key.transpose(-2, -1) * d**-0.5).masked_fill(
                ~full, torch.finfo(torch.float32).min).softmax(dim=-1),
             ("a query with no allowed key got equal weights on all keys: a large negative fill "
              "(transformers' finfo.min) leaves that row uniform. Set the masked weights to 0 "
              "after the softmax as well: weights.masked_fill(~mask, 0.0).")),
        ]
        if got is not None and isinstance(got, torch.Tensor) and got.isnan().any():
            mistakes.append((got,
                             ("a query row whose keys are all masked has only -inf scores, "
                              "and softmax of those is 0/0 = NaN; set masked weights to 0 "
                              "after the softmax (masked_fill) as well.")))
        compare(what, got, expected, mistakes)
        if case != "query 2 may see no key":  # transformers gives such a row uniform weights
            _, theirs = eager_attention_forward(nn.Module().eval(), query, key, value,
                                                additive(full), scaling=d**-0.5)
            compare(f"{what}, against transformers' eager_attention_forward", got, theirs)
            compare(f"attention_weights(...) @ value with mask = {case}, against "
                    "F.scaled_dot_product_attention", got @ value,
                    F.scaled_dot_product_attention(query, key, value, attn_mask=full))

    query, key, mask = bfloat16_case()
    what = "attention_weights(query, key, mask) with query and key in bfloat16, causal mask"
    got = attention_weights(query, key, mask)
    if isinstance(got, torch.Tensor) and got.is_floating_point() and got.dtype != query.dtype:
        raise CheckFailed(f"{what}: dtype {got.dtype}, expected {query.dtype}, the dtype of query"
                          "\nHint: compute the softmax in float32, then return the weights in the "
                          "dtype of query: .to(query.dtype).")
    mistakes = []
    if isinstance(got, torch.Tensor) and got.dtype == query.dtype:  # the float32 cases passed
        mistakes.append((got, ("the weights differ from a softmax in float32 rounded once to "
                               "bfloat16. A softmax written out in bfloat16 (exp, sum, divide) "
                               "rounds at every step: run it in float32, "
                               "scores.float().softmax(dim=-1), then .to(query.dtype).")))
    compare(what, got, attention_module.attention_weights(query, key, mask), mistakes,
            atol=0, rtol=0)
    return ("equal to miniclip's, to transformers' eager_attention_forward and (times V) to "
            "F.scaled_dot_product_attention; no mask, causal, padding, and a query with no key")


@exercise("split_heads", attention_module.split_heads)
def check_split_heads(split_heads_fn: Callable) -> str:
    x = randn(2, 5, 12, seed=4)
    for heads in (3, 4, 1):
        d = 12 // heads
        what = f"split_heads(x, num_heads={heads}) with x of shape (2, 5, 12)"
        expected = x.view(2, 5, heads, d).transpose(1, 2)
        mistakes = [
            (x.reshape(2, heads, 5, d),
             ("you reshaped straight to (B, H, T, d), which cuts the sequence, not the channels, "
              "into heads. View as (B, T, H, d) first, then swap T and H: .transpose(1, 2).")),
            (x.view(2, 5, d, heads).permute(0, 3, 1, 2),
             ("each head got every H-th channel; a head owns d *consecutive* channels: "
              "view(B, T, H, d).")),
        ]
        if heads != 1:
            mistakes.append((x.view(2, 5, heads, d),
                             ("the heads axis must come before the tokens: (B, H, T, d); "
                              "add .transpose(1, 2).")))
        compare(what, split_heads_fn(x, heads), expected, mistakes, atol=0, rtol=0)
    return "(2, 5, 12) splits into 3, 4 and 1 heads of shape (2, H, 5, 12 / H)"


@exercise("merge_heads", attention_module.merge_heads)
def check_merge_heads(merge_heads_fn: Callable) -> str:
    x = randn(2, 3, 5, 4, seed=5)
    expected = x.transpose(1, 2).reshape(2, 5, 12)
    mistakes = [(x.reshape(2, 5, 12),
                 ("you reshaped (B, H, T, d) straight to (B, T, H·d), which mixes tokens from "
                  "different positions; transpose(1, 2) to (B, T, H, d) first, then reshape."))]
    compare("merge_heads(x) with x of shape (2, 3, 5, 4)", merge_heads_fn(x), expected, mistakes,
            atol=0, rtol=0)
    y = randn(2, 5, 12, seed=6)
    compare("merge_heads(split_heads(y, 3)) should give y back", merge_heads_fn(
        y.view(2, 5, 3, 4).transpose(1, 2)), y, atol=0, rtol=0)
    return "(2, 3, 5, 4) merges into (2, 5, 12), and undoes split_heads"


@exercise("causal_mask", attention_module.causal_mask)
def check_causal_mask(causal_mask_fn: Callable) -> str:
    from transformers.masking_utils import create_causal_mask

    for length in (5, 1, 77):  # 5 first: at length 1 some wrong masks look alike
        what = f"causal_mask({length})"
        got = causal_mask_fn(length)
        ones = torch.ones(length, length, dtype=torch.bool)
        expected = ones.tril()[None, None]
        mistakes = [
            (ones.triu()[None, None],
             ("that is the upper triangle: query i would see the keys "
              "*after* it. A token may look back, not ahead: torch.tril.")),
            (ones.tril(-1)[None, None],
             ("the diagonal is False, so a token cannot see itself (and the first token "
              "sees nothing at all); keep the diagonal: tril(), not tril(-1).")),
            (~expected,
             ("inverted: True marks the keys a query may *not* see, as in nn.MultiheadAttention's "
              "attn_mask; here, as in F.scaled_dot_product_attention, True means allowed: "
              "torch.tril.")),
            (ones.tril(1)[None, None],
             ("shifted by one: query i also sees key i + 1, the next "
              "token; use tril() with no offset.")),
            (ones.tril(),
             ("right values, but the mask needs two leading axes, batch and heads, "
              "to broadcast against (B, H, T, T) scores: shape (1, 1, T, T).")),
            (torch.zeros(1, 1, length, length).masked_fill(~expected, float("-inf")),
             ("that is an additive float mask (0 and -inf), transformers' form; here a mask is "
              "boolean, True where attention is allowed.")),
            (expected.float(), "right values, but as floats; return a bool tensor."),
        ]
        compare(what, got, expected, mistakes)
        # (config, inputs_embeds, attention_mask, cache), by position: transformers renamed
        # the last one (past_key_values before 5.24).
        theirs = create_causal_mask(hf_config(hidden_size=8, num_attention_heads=2),
                                    torch.zeros(1, length, 8), None, None)
        compare(f"{what}, against transformers' create_causal_mask", got, theirs == 0)
    got = causal_mask_fn(3, device="meta")  # a device with no memory: only where it lies counts
    where = got.device.type if isinstance(got, torch.Tensor) else None
    if where != "meta":
        raise CheckFailed(f"causal_mask(3, device='meta') returned a mask on {where}, not on "
                          "meta\nHint: make it where it was asked for, torch.ones(..., "
                          "device=device): on a GPU, a mask on the CPU cannot meet the scores.")
    return ("correct for lengths 1, 5 and 77, made on the device asked for, and equal to "
            "transformers' create_causal_mask")


@exercise("padding_mask", attention_module.padding_mask)
def check_padding_mask(padding_mask_fn: Callable) -> str:
    from transformers.masking_utils import create_bidirectional_mask

    attention_mask = right_padded([6, 4, 1], 6)
    what = "padding_mask(attention_mask) for lengths 6, 4 and 1 padded to 6"
    got = keeping_inputs(what, padding_mask_fn, attention_mask)
    keep = attention_mask.bool()
    mistakes = [
        (keep[:, None, :, None],
         ("shape (B, 1, T, 1) hides padding *queries*; a padding mask "
          "hides padding *keys*, the last axis: (B, 1, 1, T).")),
        (~keep[:, None, None, :],
         ("inverted: True must mark the real tokens (allowed), not "
          "the padding.")),
        (keep[:, None, :],
         ("add two axes, heads and queries, so it broadcasts over "
          "(B, H, T, T) scores: (B, 1, 1, T).")),
        (keep,
         ("add two axes, heads and queries, so it broadcasts over (B, H, T, T) scores: "
          "(B, 1, 1, T).")),
        (attention_mask[:, None, None, :],
         ("right shape and values, but integers; return "
          "a bool tensor (.bool()).")),
    ]
    compare(what, got, keep[:, None, None, :], mistakes)
    theirs = create_bidirectional_mask(config=hf_config(hidden_size=8, num_attention_heads=2),
                                       inputs_embeds=torch.zeros(3, 6, 8),
                                       attention_mask=attention_mask)
    compare(f"{what}, broadcast to (B, 1, T, T), against transformers' create_bidirectional_mask",
            got.expand(3, 1, 6, 6), theirs == 0)
    return "hides exactly the padding keys, as transformers' create_bidirectional_mask does"


@exercise("combine_masks", attention_module.combine_masks)
def check_combine_masks(combine_masks_fn: Callable) -> str:
    from transformers.masking_utils import create_causal_mask

    causal = causal_mask(4)
    attention_mask = right_padded([4, 2], 4)
    padding = padding_mask(attention_mask)
    both = causal & padding
    third = ~torch.eye(4, dtype=torch.bool)  # a made-up third mask: no token sees itself
    hint_or = ("that is where *some* mask allows (logical or); attention is allowed only "
               "where *every* mask allows it: &.")
    cases = [
        ("combine_masks(causal, padding)", (causal, padding), both,
         [(causal | padding, hint_or),
          (causal, "the padding mask is lost; combine every mask given."),
          (padding, "the causal mask is lost; combine every mask given.")]),
        ("combine_masks(None, padding)", (None, padding), padding, []),
        ("combine_masks(causal, None)", (causal, None), causal, []),
        ("combine_masks(None, None)", (None, None), None,
         [(torch.ones(1, 1, 1, 1, dtype=torch.bool), "with no mask, return None (no masking)")]),
        ("combine_masks(causal, padding, third)", (causal, padding, third),
         both & third, []),
    ]
    for what, masks, expected, mistakes in cases:
        try:
            got = combine_masks_fn(*masks)
        except (TypeError, AttributeError) as error:
            raise CheckFailed(f"{what} raised {type(error).__name__}: {error}" + (
                "; None stands for 'no mask' and must be skipped" if "NoneType" in str(error) else
                "\nHint: combine the masks that are not None one by one with &; "
                "torch.logical_and takes exactly two")) from None
        compare(what, got, expected, mistakes)
    theirs = create_causal_mask(hf_config(hidden_size=8, num_attention_heads=2),  # as in check_causal_mask
                                torch.zeros(2, 4, 8), attention_mask, None)
    compare("combine_masks(causal, padding), against transformers' create_causal_mask",
            combine_masks_fn(causal, padding), theirs == 0)
    return ("allows what every mask allows, skips None, and equals transformers' "
            "create_causal_mask for causal + padding")


def attention_variants(layer: Attention, x, mask, causal) -> Mistakes:
    """The weights that common wrong attention layers compute, with a hint for each."""
    query, key = layer.split_heads(layer.q_proj(x)), layer.split_heads(layer.k_proj(x))
    full = combine_masks(causal_mask(x.size(1)) if causal else None, mask)
    scale = query.size(-1) ** -0.5
    variants = [
        (scores_softmax(query, key, full, 1.0), "the scores are not divided by √d."),
        (scores_softmax(query, key, full, scale, dim=-2),
         ("the softmax ran over the queries; "
          "it runs over the keys, dim=-1.")),
    ]
    if causal:
        variants.append((scores_softmax(query, key, mask, scale),
                         ("causal=True was ignored: "
                          "combine causal_mask(T) with the mask given.")))
    if mask is not None:
        variants.append((scores_softmax(query, key, causal_mask(x.size(1)) if causal else None,
                                        scale), "the mask given was ignored."))
    return variants


@exercise("Attention", Attention)
def check_attention(attention_class: type) -> str:
    from transformers.models.clip.modeling_clip import CLIPAttention

    torch.manual_seed(0)  # inside the check's own random state (see `exercise`)
    theirs = randomize(CLIPAttention(hf_config(hidden_size=24, num_attention_heads=4)), seed=7)
    reference = Attention(24, 4)
    reference.load_state_dict(theirs.state_dict())
    yours = load(attention_class(24, 4), theirs.state_dict(), "Attention(24, 4)")
    x = randn(2, 5, 24, seed=8)  # B, T, H and d = 24 / 4 all differ, so no axis passes for another
    padding = padding_mask(right_padded([5, 3], 5))
    cases = [("no mask", None, False), ("causal", None, True),
             ("padding", padding, False), ("causal + padding", padding, True)]
    for case, mask, causal in cases:
        full = combine_masks(causal_mask(5) if causal else None, mask)
        full = full if full is not None else torch.ones(1, 1, 5, 5, dtype=torch.bool)
        with torch.no_grad():
            their_output, their_weights = theirs(x, attention_mask=additive(full))
            for output_attentions in (True, False):
                call = (f"Attention(x, mask={'padding' if mask is not None else None}, "
                        f"causal={causal}, output_attentions={output_attentions}) [{case}]")
                output, weights = pair(call, strict_kernel(call, yours, x, mask, causal,
                                                           output_attentions))
                expected_output, expected_weights = reference(x, mask, causal, output_attentions)
                compare(f"{call}, weights", weights, expected_weights, [
                    (their_weights,
                     ("with output_attentions=False, return None as the weights: "
                      "the fused kernel does not compute them.")),
                    *attention_variants(reference, x, mask, causal)])
                compare(f"{call}, output", output, expected_output)
                compare(f"{call}, output against transformers' CLIPAttention", output, their_output)
                if output_attentions:
                    compare(f"{call}, weights against transformers' CLIPAttention", weights,
                            their_weights)
    return ("equal to miniclip's Attention and to transformers' CLIPAttention, with and "
            "without causal and padding masks; weights of shape (2, 4, 5, 5) on request")


def strict_kernel(call: str, layer: nn.Module, x, mask, causal: bool, output_attentions: bool):
    """The layer's output, its fused attention run by PyTorch's reference ("math") kernel, which
    refuses what the documentation forbids: an attn_mask together with is_causal=True. Other
    kernels let it pass on one machine and raise on another."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    with explained(call, RuntimeError, "is_causal", (
            "scaled_dot_product_attention takes a mask or is_causal=True, not both (its "
            "documentation says so; some kernels combine them, others raise). With a mask, "
            "combine the causal mask into it, combine_masks(causal_mask(T), mask), and leave "
            "is_causal False.")), sdpa_kernel([SDPBackend.MATH]):
        return layer(x, mask=mask, causal=causal, output_attentions=output_attentions)
