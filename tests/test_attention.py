"""Attention: masks do what they say, both paths agree, and they equal the references."""

import torch
import torch.nn.functional as F
import transformers
from transformers.models.clip.modeling_clip import CLIPAttention

from miniclip.attention import (
    Attention,
    attention_weights,
    causal_mask,
    combine_masks,
    fused_attention,
    padding_mask,
)


def qkv(batch=2, heads=3, length=5, head_dim=4, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, heads, length, head_dim, generator=generator) for _ in range(3)]


def test_causal_mask_is_lower_triangular():
    mask = causal_mask(4)[0, 0]
    assert mask.shape == (4, 4)
    assert mask.tolist() == [[j <= i for j in range(4)] for i in range(4)]


def test_masked_positions_get_exactly_zero_weight():
    query, key, _ = qkv()
    lengths = torch.tensor([5, 2])
    attention_mask = (torch.arange(5) < lengths[:, None]).long()
    mask = combine_masks(causal_mask(5), padding_mask(attention_mask))  # (2, 1, 5, 5)
    weights = attention_weights(query, key, mask)
    assert (weights[~mask.expand_as(weights)] == 0).all()
    assert torch.allclose(weights.sum(-1), torch.ones(2, 3, 5))


def test_causal_and_padding_masks_combine_as_logical_and():
    attention_mask = torch.tensor([[1, 1, 1, 0]])
    mask = combine_masks(causal_mask(4), padding_mask(attention_mask))[0, 0]
    expected = torch.tensor([[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 0]]).bool()
    assert torch.equal(mask, expected)
    assert combine_masks(None, None) is None


def test_fully_masked_row_gives_zeros_not_nan():
    query, key, value = qkv(batch=1)
    mask = torch.ones(1, 1, 5, 5, dtype=torch.bool)
    mask[..., 2, :] = False  # query 2 may look at nothing
    weights = attention_weights(query, key, mask)
    assert not weights.isnan().any()
    assert (weights[..., 2, :] == 0).all()
    fused = fused_attention(query, key, value, mask)
    assert not fused.isnan().any()
    assert torch.allclose(weights @ value, fused, atol=1e-6)


def test_explicit_path_equals_pytorch_fused_kernel():
    query, key, value = qkv(length=7)
    attention_mask = torch.tensor([[1] * 7, [1] * 3 + [0] * 4])
    for mask, causal in [(None, False), (None, True), (padding_mask(attention_mask), True)]:
        full = combine_masks(causal_mask(7) if causal else None, mask)
        explicit = attention_weights(query, key, full) @ value
        reference = F.scaled_dot_product_attention(query, key, value, attn_mask=full)
        torch.testing.assert_close(explicit, reference, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(fused_attention(query, key, value, mask, causal), reference,
                                   rtol=1e-5, atol=1e-6)


def test_attention_layer_equals_transformers_clip_attention():
    config = transformers.CLIPTextConfig(hidden_size=24, num_attention_heads=4)
    config._attn_implementation = "eager"
    torch.manual_seed(0)
    theirs = CLIPAttention(config).eval()
    ours = Attention(24, 4)
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(2, 6, 24)
    attention_mask = torch.tensor([[1] * 6, [1] * 4 + [0] * 2])
    allowed = combine_masks(causal_mask(6), padding_mask(attention_mask))
    additive = torch.zeros(allowed.shape).masked_fill(~allowed, torch.finfo(torch.float32).min)
    their_output, their_weights = theirs(x, attention_mask=additive)
    for output_attentions in (True, False):
        output, _ = ours(x, padding_mask(attention_mask), causal=True,
                         output_attentions=output_attentions)
        torch.testing.assert_close(output, their_output, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ours(x, padding_mask(attention_mask), causal=True,
                                    output_attentions=True)[1], their_weights)


def test_output_attentions_returns_one_weight_map_per_head():
    layer = Attention(16, 2)
    output, weights = layer(torch.randn(3, 5, 16), output_attentions=True)
    assert output.shape == (3, 5, 16)
    assert weights.shape == (3, 2, 5, 5)
    assert layer(torch.randn(3, 5, 16))[1] is None
