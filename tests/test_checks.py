"""Every exercise check accepts the reference and rejects plausible wrong answers, saying why."""

import inspect
import math

import pytest
import torch
import torch.nn.functional as F
from check_cases import reference_and_wrong_answer_tests

from miniclip import checks
from miniclip.attention import (
    Attention,
    attention_weights,
    causal_mask,
    combine_masks,
    fused_attention,
    padding_mask,
)
from miniclip.checks.ch02_attention import bfloat16_case
from miniclip.checks.core import difference
from miniclip.loss import clip_loss
from miniclip.text import eos_positions
from miniclip.transformer import MLP, Encoder, EncoderLayer, QuickGELU


def split_heads(x, num_heads):
    batch, length, width = x.shape
    return x.view(batch, length, num_heads, width // num_heads).transpose(1, 2)


def merge_heads(x):
    batch, heads, length, head_dim = x.shape
    return x.transpose(1, 2).reshape(batch, length, heads * head_dim)


def quick_gelu(x):
    return QuickGELU()(x)


REFERENCES = [
    (checks.check_attention_weights, attention_weights),
    (checks.check_split_heads, split_heads),
    (checks.check_merge_heads, merge_heads),
    (checks.check_causal_mask, causal_mask),
    (checks.check_padding_mask, padding_mask),
    (checks.check_combine_masks, combine_masks),
    (checks.check_attention, Attention),
    (checks.check_quick_gelu, quick_gelu),
    (checks.check_mlp, MLP),
    (checks.check_encoder_layer, EncoderLayer),
    (checks.check_encoder, Encoder),
    (checks.check_eos_positions, eos_positions),
    (checks.check_clip_loss, clip_loss),
]


# ---- wrong answers, chapter 02 --------------------------------------------------------


def weights_with(scale=None, dim=-1, invert=False, mask_after=False, nan_rows=False,
                 ignore_mask=False, float32=False, written_out=False, no_shift=False,
                 fill=float("-inf")):
    def wrong(query, key, mask=None):
        d = query.size(-1)
        scores = query @ key.transpose(-2, -1) * (d**-0.5 if scale is None else scale(d))
        scores = scores.float() if float32 else scores  # and never cast back
        if mask is not None and ignore_mask:
            mask = None
        if mask is not None and invert:
            mask = ~mask
        if mask is not None and not mask_after:
            scores = scores.masked_fill(~mask, fill)
        if no_shift:  # exp / sum as the formula reads: inf / inf for large scores
            weights = scores.exp() / scores.exp().sum(dim=dim, keepdim=True)
        elif written_out:  # exp / sum in the scores' dtype, which rounds at each step in bfloat16
            exps = (scores - scores.amax(dim=dim, keepdim=True)).exp()
            weights = exps / exps.sum(dim=dim, keepdim=True)
        else:
            weights = scores.softmax(dim=dim)
        if mask is not None and not nan_rows:
            weights = weights.masked_fill(~mask, 0.0)
        return weights
    return wrong


WRONG_ATTENTION_WEIGHTS = {
    "softmax over the queries": (weights_with(dim=-2), "dim=-1"),
    "missing scale": (weights_with(scale=lambda d: 1.0), "not scaled"),
    "divided by d": (weights_with(scale=lambda d: 1 / d), "divided by d"),
    "mask inverted": (weights_with(invert=True), "inverted"),
    "mask after the softmax": (weights_with(mask_after=True), "before"),
    "NaN for a query with no key": (weights_with(nan_rows=True), "NaN"),
    "mask ignored": (weights_with(ignore_mask=True), "mask was ignored"),
    "weights left in float32": (weights_with(float32=True),
                                "dtype torch.float32, expected torch.bfloat16, the dtype of query"),
    "softmax written out in bfloat16": (weights_with(written_out=True), "rounded once to bfloat16"),
    "exp / sum without the maximum": (weights_with(no_shift=True), "exp() of scores in the hundreds"),
    "no branch for mask=None": (lambda q, k, mask=None: weights_with()(q, k, ~~mask),
                                "mask=None means no masking"),
    "finfo.min fill, no zeros after": (weights_with(fill=torch.finfo(torch.float32).min, nan_rows=True),
                                       "leaves that row uniform"),
}

WRONG_SPLIT_HEADS = {
    "reshape without transpose": (
        lambda x, h: x.reshape(x.size(0), h, x.size(1), x.size(2) // h), "cuts the sequence"),
    "transpose forgotten": (lambda x, h: x.view(x.size(0), x.size(1), h, -1), "transpose"),
    "heads interleaved": (lambda x, h: x.view(x.size(0), x.size(1), -1, h).permute(0, 3, 1, 2),
                          "consecutive"),
}

WRONG_MERGE_HEADS = {
    "reshape without transpose": (
        lambda x: x.reshape(x.size(0), x.size(2), -1), "mixes tokens"),
}


def ones(length):
    return torch.ones(length, length, dtype=torch.bool)


WRONG_CAUSAL_MASKS = {
    "shifted by one": (lambda n: ones(n).tril(1)[None, None], "shifted by one"),
    "diagonal missing": (lambda n: ones(n).tril(-1)[None, None], "diagonal"),
    "upper triangle": (lambda n: ones(n).triu()[None, None], "upper triangle"),
    "no leading axes": (lambda n: ones(n).tril(), "two leading axes"),
    "float": (lambda n: ones(n).tril()[None, None].float(), "bool"),
    "additive": (lambda n: torch.zeros(1, 1, n, n).masked_fill(~ones(n).tril(), float("-inf")),
                 "additive"),
    "True where masked": (lambda n: ones(n).triu(1)[None, None], "nn.MultiheadAttention's"),
    "device ignored": (lambda n, device=None: ones(n).tril()[None, None], "device='meta'"),
}

WRONG_PADDING_MASKS = {
    "hides queries": (lambda m: m.bool()[:, None, :, None], "queries"),
    "inverted": (lambda m: ~m.bool()[:, None, None, :], "inverted"),
    "no extra axes": (lambda m: m.bool(), "(B, 1, 1, T)"),
    "integers": (lambda m: m[:, None, None, :], "bool"),
    "axes added in place": (lambda m: m.unsqueeze_(1).unsqueeze_(1).bool(), "changed its input"),
}


def combine_with_or(*masks):
    present = [mask for mask in masks if mask is not None]
    if not present:
        return None
    result = present[0]
    for mask in present[1:]:
        result = result | mask
    return result


def combine_without_none(*masks):
    result = masks[0]
    for mask in masks[1:]:
        result = result & mask
    return result


WRONG_COMBINE_MASKS = {
    "logical or": (combine_with_or, "logical or"),
    "None not skipped": (combine_without_none, "None stands for"),
    "first mask only": (lambda *masks: next((m for m in masks if m is not None), None),
                        "padding mask is lost"),
    "logical_and of them all": (lambda *masks: torch.logical_and(*[m for m in masks if m is not None]),
                                "torch.logical_and takes exactly two"),
}


class UnscaledAttention(Attention):
    def forward(self, hidden_states, mask=None, causal=False, output_attentions=False):
        query, key, value = (self.split_heads(p(hidden_states))
                             for p in (self.q_proj, self.k_proj, self.v_proj))
        if causal:
            mask = combine_masks(causal_mask(hidden_states.size(1)), mask)
        weights = weights_with(scale=lambda d: 1.0)(query, key, mask)
        output = self.out_proj(self.merge_heads(weights @ value))
        return output, weights if output_attentions else None


class MaskAndIsCausal(Attention):
    """The mask and is_causal=True handed to the fused kernel together."""

    def forward(self, hidden_states, mask=None, causal=False, output_attentions=False):
        if output_attentions:
            return super().forward(hidden_states, mask, causal, output_attentions)
        query, key, value = (self.split_heads(p(hidden_states))
                             for p in (self.q_proj, self.k_proj, self.v_proj))
        output = F.scaled_dot_product_attention(query, key, value, attn_mask=mask, is_causal=causal)
        return self.out_proj(self.merge_heads(output)), None


class CausalIgnored(Attention):
    def forward(self, hidden_states, mask=None, causal=False, output_attentions=False):
        return super().forward(hidden_states, mask, False, output_attentions)


class AlwaysWeights(Attention):
    def forward(self, hidden_states, mask=None, causal=False, output_attentions=False):
        return super().forward(hidden_states, mask, causal, True)


class NoOutProjection(Attention):
    def forward(self, hidden_states, mask=None, causal=False, output_attentions=False):
        query, key, value = (self.split_heads(p(hidden_states))
                             for p in (self.q_proj, self.k_proj, self.v_proj))
        if causal:
            mask = combine_masks(causal_mask(hidden_states.size(1)), mask)
        weights = attention_weights(query, key, mask)
        return self.merge_heads(weights @ value), weights if output_attentions else None


class OutputOnly(Attention):
    def forward(self, hidden_states, mask=None, causal=False, output_attentions=False):
        query, key, value = (self.split_heads(p(hidden_states))
                             for p in (self.q_proj, self.k_proj, self.v_proj))
        return self.out_proj(self.merge_heads(fused_attention(query, key, value, mask, causal)))


class RenamedAttention(Attention):
    def __init__(self, hidden_size, num_heads):
        super().__init__(hidden_size, num_heads)
        self.query = self.q_proj
        del self.q_proj


WRONG_ATTENTION = {
    "missing scale": (UnscaledAttention, "not divided by √d"),
    "causal ignored": (CausalIgnored, "causal=True was ignored"),
    "weights always returned": (AlwaysWeights, "return None as the weights"),
    "no out_proj": (NoOutProjection, "output"),
    "no weights returned": (OutputOnly, "pair"),
    "parameters renamed": (RenamedAttention, "q_proj.weight"),
    "a mask and is_causal together": (MaskAndIsCausal, "takes a mask or is_causal=True, not both"),
}


# ---- wrong answers, chapter 03 --------------------------------------------------------

WRONG_QUICK_GELU = {
    "exact GELU": (F.gelu, "exact GELU"),
    "SiLU": (F.silu, "SiLU"),
    "gate only": (lambda x: torch.sigmoid(1.702 * x), "gate alone"),
    "in place": (lambda x: x.mul_(torch.sigmoid(1.702 * x)), "changed its input of shape (4, 40) in place"),
}


class LinearMLP(MLP):
    def forward(self, x):
        return self.fc2(self.fc1(x))


class GeluMLP(MLP):
    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


WRONG_MLP = {"no activation": (LinearMLP, "no activation"), "GELU": (GeluMLP, "exact GELU")}


class PostNorm(EncoderLayer):
    def forward(self, x, mask=None, causal=False, output_attentions=False):
        attended, weights = self.self_attn(x, mask, causal, output_attentions)
        x = self.layer_norm1(x + attended)
        return self.layer_norm2(x + self.mlp(x)), weights


class NoResidual(EncoderLayer):
    def forward(self, x, mask=None, causal=False, output_attentions=False):
        x, weights = self.self_attn(self.layer_norm1(x), mask, causal, output_attentions)
        return self.mlp(self.layer_norm2(x)), weights


class SwappedNorms(EncoderLayer):
    def forward(self, x, mask=None, causal=False, output_attentions=False):
        attended, weights = self.self_attn(self.layer_norm2(x), mask, causal, output_attentions)
        x = x + attended
        return x + self.mlp(self.layer_norm1(x)), weights


class Parallel(EncoderLayer):
    def forward(self, x, mask=None, causal=False, output_attentions=False):
        attended, weights = self.self_attn(self.layer_norm1(x), mask, causal, output_attentions)
        return x + attended + self.mlp(self.layer_norm2(x)), weights


class LayerIgnoresCausal(EncoderLayer):
    def forward(self, x, mask=None, causal=False, output_attentions=False):
        return super().forward(x, mask, False, output_attentions)


class ResidualInPlace(EncoderLayer):
    def forward(self, x, mask=None, causal=False, output_attentions=False):
        attended, weights = self.self_attn(self.layer_norm1(x), mask, causal, output_attentions)
        x += attended
        x += self.mlp(self.layer_norm2(x))
        return x, weights


WRONG_ENCODER_LAYERS = {
    "residual added in place": (ResidualInPlace, "changed its input of shape (2, 6, 24) in place"),
    "post-LN": (PostNorm, "post-LN"),
    "no residual": (NoResidual, "no residual"),
    "norms swapped": (SwappedNorms, "swapped"),
    "MLP reads the input": (Parallel, "MLP read the layer's input"),
    "causal not passed": (LayerIgnoresCausal, "causal=True was not passed"),
}


class HiddenStatesWithoutInput(Encoder):
    def forward(self, x, mask=None, causal=False, output_hidden_states=False,
                output_attentions=False):
        last, states, attentions = super().forward(x, mask, causal, output_hidden_states,
                                                   output_attentions)
        return last, states[1:] if states is not None else None, attentions


class FirstLayerOnly(Encoder):
    def forward(self, x, mask=None, causal=False, output_hidden_states=False,
                output_attentions=False):
        states, attentions = [x], []
        for _ in self.layers:
            x, weights = self.layers[0](x, mask, causal, output_attentions)
            states.append(x)
            attentions.append(weights)
        return (x, states if output_hidden_states else None,
                attentions if output_attentions else None)


class MaskNotPassed(Encoder):
    def forward(self, x, mask=None, causal=False, output_hidden_states=False,
                output_attentions=False):
        return super().forward(x, None, causal, output_hidden_states, output_attentions)


class AlwaysCausal(Encoder):
    def forward(self, x, mask=None, causal=False, output_hidden_states=False,
                output_attentions=False):
        return super().forward(x, mask, True, output_hidden_states, output_attentions)


class NeverCausal(Encoder):
    def forward(self, x, mask=None, causal=False, output_hidden_states=False,
                output_attentions=False):
        return super().forward(x, mask, False, output_hidden_states, output_attentions)


class FlagsSwapped(Encoder):
    def forward(self, x, mask=None, causal=False, output_hidden_states=False,
                output_attentions=False):
        return super().forward(x, mask, causal, output_attentions, output_hidden_states)


WRONG_ENCODERS = {
    "flags swapped": (FlagsSwapped, "output_attentions=False): hidden_states is None; expected a tuple of 4"),
    "hidden_states without the input": (HiddenStatesWithoutInput, "num_hidden_layers + 1"),
    "first layer only": (FirstLayerOnly, "first layer"),
    "mask not passed": (MaskNotPassed, "padding mask was not passed"),
    "always causal": (AlwaysCausal, "did not get causal=False: pass `causal` on to every layer"),
    "never causal": (NeverCausal, "did not get causal=True: pass `causal` on to every layer"),
}

# ---- wrong answers, chapters 04 and 07 ------------------------------------------------


def last_eos(input_ids, eos_token_id):
    is_eos = (input_ids == eos_token_id).int()
    return input_ids.size(1) - 1 - is_eos.flip(-1).argmax(-1)


WRONG_EOS_POSITIONS = {
    "largest id": (lambda ids, eos: ids.argmax(-1), "largest id"),
    "last end-of-text": (last_eos, "*last* end-of-text"),
    "first token": (lambda ids, eos: torch.zeros(len(ids), dtype=torch.long), "position 0"),
}


def text_loss_only(logits):
    return F.cross_entropy(logits, torch.arange(len(logits)))


def image_loss_only(logits):
    return F.cross_entropy(logits.t(), torch.arange(len(logits)))


WRONG_CLIP_LOSSES = {
    "rows only": (text_loss_only, "only the text-to-image"),
    "columns only": (image_loss_only, "only the image-to-text"),
    "not halved": (lambda logits: text_loss_only(logits) + image_loss_only(logits), "sum"),
}

WRONG_ANSWERS = [
    (checks.check_attention_weights, WRONG_ATTENTION_WEIGHTS),
    (checks.check_split_heads, WRONG_SPLIT_HEADS),
    (checks.check_merge_heads, WRONG_MERGE_HEADS),
    (checks.check_causal_mask, WRONG_CAUSAL_MASKS),
    (checks.check_padding_mask, WRONG_PADDING_MASKS),
    (checks.check_combine_masks, WRONG_COMBINE_MASKS),
    (checks.check_attention, WRONG_ATTENTION),
    (checks.check_quick_gelu, WRONG_QUICK_GELU),
    (checks.check_mlp, WRONG_MLP),
    (checks.check_encoder_layer, WRONG_ENCODER_LAYERS),
    (checks.check_encoder, WRONG_ENCODERS),
    (checks.check_eos_positions, WRONG_EOS_POSITIONS),
    (checks.check_clip_loss, WRONG_CLIP_LOSSES),
]


test_reference_passes_with_one_line, test_wrong_answer_fails_and_says_why = reference_and_wrong_answer_tests(
    REFERENCES, WRONG_ANSWERS)


def test_failure_names_the_entry_expected_and_got():
    with pytest.raises(checks.CheckFailed) as failure:
        checks.check_causal_mask(WRONG_CAUSAL_MASKS["shifted by one"][0])
    assert str(failure.value).startswith(
        "causal_mask: causal_mask(5): entry [0, 0, 0, 1] is True, expected False")


def test_values_that_print_alike_are_shown_with_more_digits():
    got, expected = torch.tensor(0.0124763, dtype=torch.float64), torch.tensor(0.01247633, dtype=torch.float64)
    assert difference(got, expected, atol=1e-8, rtol=1e-6) == "0.0124763, expected 0.01247633"
    got, expected = torch.tensor([2.0, 1.00000001], dtype=torch.float64), torch.tensor([2.0, 1.0]).double()
    assert difference(got, expected, atol=0, rtol=0).startswith(
        "entry [1] is 1.00000001, expected 1 (1 of 2 entries differ")


def test_a_float_answer_is_refused_where_integers_are_expected():
    assert difference(torch.tensor([3.0, 2.0]), torch.tensor([3, 2]), atol=1e-5, rtol=1e-4) == (
        "dtype torch.float32, expected torch.int64")
    assert difference(torch.tensor([3, 2], dtype=torch.int32), torch.tensor([3, 2]), 1e-5, 1e-4) is None


def test_unfinished_exercise_prints_a_line_instead_of_raising(capsys):
    def causal_mask(length):
        raise NotImplementedError("Your code here")

    checks.check_causal_mask(causal_mask)
    assert capsys.readouterr().out.startswith("⏳ causal_mask: not written yet")


def test_checks_leave_the_global_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    checks.check_attention(Attention)
    assert torch.equal(torch.rand(3), expected)


def test_show_solution_prints_the_reference(capsys):
    checks.show_solution(causal_mask)
    out = capsys.readouterr().out
    assert out.startswith("# miniclip/attention.py\ndef causal_mask(")
    with pytest.raises(KeyError, match="causal_mask"):
        checks.show_solution("causal_masks")


@pytest.mark.parametrize("name, check, parameters", [
    ("split_heads", checks.check_split_heads, ["x", "num_heads"]),
    ("merge_heads", checks.check_merge_heads, ["x"]),
])
def test_shown_solution_has_the_exercises_signature_and_passes_its_check(name, check, parameters,
                                                                          capsys):
    checks.show_solution(name)
    namespace = {"torch": torch}  # what the chapter's notebook has imported by then
    exec(capsys.readouterr().out, namespace)
    assert list(inspect.signature(namespace[name]).parameters) == parameters
    check(namespace[name])
    assert capsys.readouterr().out.startswith(f"✓ {name}: ")


def test_loss_reference_is_ln_n_at_uniform_logits():
    assert math.isclose(clip_loss(torch.zeros(8, 8)).item(), math.log(8), rel_tol=1e-6)


def test_bfloat16_attention_case_is_exact_and_far_from_rounding_ties():
    """Any softmax in float32 rounds to the reference's bfloat16 weights, so the check may ask
    for them exactly; a softmax run in bfloat16 by torch is one of those (it accumulates in float32)."""
    query, key, mask = bfloat16_case()
    exact = query.double() @ key.double().transpose(-2, -1) / 4
    for scores in (query @ key.transpose(-2, -1) / 4, query @ key.transpose(-2, -1) * 16**-0.5,
                   query.float() @ key.float().transpose(-2, -1) / 4):
        assert torch.equal(scores.double(), exact)
    weights = exact.masked_fill(~mask, float("-inf")).softmax(dim=-1)
    for moved in (weights * (1 - 1e-5), weights * (1 + 1e-5)):
        assert torch.equal(moved.float().bfloat16(), weights.float().bfloat16())
    reference = attention_weights(query, key, mask)
    assert torch.equal(reference, weights.float().bfloat16())
    assert torch.equal(weights_with()(query, key, mask), reference)  # torch's softmax in bfloat16
    written_out = WRONG_ATTENTION_WEIGHTS["softmax written out in bfloat16"][0](query, key, mask)
    assert (written_out != reference).sum() > 10
