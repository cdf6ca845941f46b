"""Checks of the vision encoder and of the ResNet's attention pool (chapter 05)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from miniclip import resnet as resnet_module
from miniclip import vision as vision_module
from miniclip.checks.core import (
    FLAGS,
    CheckFailed,
    compare,
    compare_listed,
    compare_tower_output,
    exercise,
    load,
    pair,
    randn,
    randomize,
)
from miniclip.config import VisionConfig

__all__ = ["check_attention_pool", "check_patchify", "check_vision_embeddings",
           "check_vision_transformer"]


def patchify(pixel_values: torch.Tensor, patch_size: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, N, C * p * p): the p x p patches in reading order, each flattened
    as (C, p, p), the layout of the patch convolution's weight."""
    batch, channels, height, width = pixel_values.shape
    p = patch_size
    x = pixel_values.reshape(batch, channels, height // p, p, width // p, p)  # (B, C, gh, p, gw, p)
    x = x.permute(0, 2, 4, 1, 3, 5)  # (B, gh, gw, C, p, p): grid position first, then one patch
    return x.reshape(batch, (height // p) * (width // p), channels * p * p)


def rearranged(pixel_values: torch.Tensor, patch_size: int, order: tuple[int, ...]) -> torch.Tensor:
    """patchify with the six axes (B, C, gh, p, gw, p) put in another `order`: known mistakes."""
    batch, channels, height, width = pixel_values.shape
    p = patch_size
    x = pixel_values.reshape(batch, channels, height // p, p, width // p, p).permute(order)
    return x.reshape(batch, (height // p) * (width // p), channels * p * p)


@exercise("patchify", patchify)
def check_patchify(patchify_fn) -> str:
    for shape, p in (((2, 3, 8, 8), 4), ((1, 3, 8, 12), 4), ((2, 2, 6, 6), 3)):
        pixel_values = randn(*shape, seed=30)
        what = f"patchify(pixel_values of shape {shape}, patch_size={p})"
        got = patchify_fn(pixel_values, p)
        mistakes = [
            (rearranged(pixel_values, p, (0, 2, 4, 3, 5, 1)),
             ("each patch is flattened as (p, p, C), channels last; flatten it as (C, p, p), "
              "the layout of the convolution's weight (out, C, p, p).")),
            (rearranged(pixel_values, p, (0, 4, 2, 1, 3, 5)),
             ("the patches come column by column; read them row by row, as text is read: "
              "grid row first, then grid column.")),
            (rearranged(pixel_values, p, (0, 2, 4, 1, 5, 3)),
             "each patch is transposed: inside a patch, pixel rows come before pixel columns."),
            (pixel_values.reshape(got.shape) if isinstance(got, torch.Tensor)
             and got.numel() == pixel_values.numel() else None,
             ("a reshape alone cuts the image into strips of consecutive pixels, not into "
              "squares; split H and W into (grid, p) each, then permute.")),
        ]
        compare(what, got, patchify(pixel_values, p), mistakes)
        compare(f"{what}, against F.unfold", got,
                F.unfold(pixel_values, kernel_size=p, stride=p).transpose(1, 2))
    weight = randn(5, 3, 4, 4, seed=31)  # a patch convolution: 5 output channels
    pixel_values = randn(2, 3, 8, 12, seed=32)
    convolved = F.conv2d(pixel_values, weight, stride=4).flatten(2).transpose(1, 2)  # (B, N, 5)
    compare("patchify(x, 4) @ weight.flatten(1).T against conv2d(x, weight, stride=4)",
            patchify_fn(pixel_values, 4) @ weight.flatten(1).T, convolved)
    return ("patches in reading order, each as (C, p, p); equal to F.unfold, and times the "
            "flattened weight to the strided convolution")


def small_vision_config(layers: int = 2) -> VisionConfig:
    return VisionConfig(hidden_size=24, intermediate_size=40, num_hidden_layers=layers,
                        num_attention_heads=4, image_size=16, patch_size=4)


def their_vision_config(config: VisionConfig):
    """transformers' CLIPVisionConfig with the same fields, running the eager attention."""
    from transformers import CLIPVisionConfig

    names = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
             "num_channels", "image_size", "patch_size")
    theirs = CLIPVisionConfig(**{name: getattr(config, name) for name in names})
    theirs._attn_implementation = "eager"
    return theirs


@exercise("VisionEmbeddings", vision_module.VisionEmbeddings)
def check_vision_embeddings(embeddings_class: type) -> str:
    from transformers.models.clip.modeling_clip import CLIPVisionEmbeddings

    config = small_vision_config()
    torch.manual_seed(0)
    theirs = randomize(CLIPVisionEmbeddings(their_vision_config(config)), seed=33)
    reference = vision_module.VisionEmbeddings(config)
    reference.load_state_dict(theirs.state_dict())
    yours = load(embeddings_class(config), theirs.state_dict(), "VisionEmbeddings")
    pixel_values = randn(2, 3, 16, 16, seed=34)
    what = "VisionEmbeddings(pixel_values) for pixel_values of shape (2, 3, 16, 16)"
    with torch.no_grad():
        got = yours(pixel_values)
        grid = reference.patch_embedding(pixel_values)  # (B, C, 4, 4)
        patches = grid.flatten(2).transpose(1, 2)  # (B, 16, C)
        by_column = grid.transpose(2, 3).flatten(2).transpose(1, 2)
        cls = reference.class_embedding.expand(2, 1, -1)
        positions = reference.position_embedding.weight  # (17, C)
        mistakes = [
            (torch.cat([patches, cls], dim=1) + positions,
             "the class token goes in front: position 0, before the patches."),
            (torch.cat([cls, patches], dim=1),
             ("the position embeddings are missing; add position_embedding.weight, one row per "
              "token, class token included.")),
            (torch.cat([cls, patches + positions[1:]], dim=1),
             ("the class token has no position; add the position embeddings after putting it "
              "in front, so that it gets row 0.")),
            (torch.cat([cls, by_column], dim=1) + positions,
             ("the patches come column by column; flatten(2) of the (B, C, grid, grid) "
              "convolution output reads them row by row.")),
        ]
        compare(what, got, reference(pixel_values), mistakes)
        compare(f"{what}, against transformers' CLIPVisionEmbeddings", got, theirs(pixel_values))
    return ("class token, then the patches in reading order, plus a position each; equal to "
            "miniclip's VisionEmbeddings and transformers' CLIPVisionEmbeddings")


def vision_tower_variants(tower: vision_module.VisionTransformer,
                          pixel_values: torch.Tensor) -> dict[str, list]:
    """Common wrong image towers: their (last_hidden_state, pooler_output), with hints."""
    embedded = tower.embeddings(pixel_values)
    pre, post = tower.pre_layrnorm, tower.post_layernorm
    x, _, _ = tower.encoder(pre(embedded))
    without_pre, _, _ = tower.encoder(embedded)
    causal, _, _ = tower.encoder(pre(embedded), causal=True)
    swapped, _, _ = tower.encoder(post(embedded))
    last = [
        (without_pre,
         ("pre_layrnorm is missing: CLIP normalises the embeddings once before the encoder, "
          "its one change to the ViT.")),
        (post(x),
         ("last_hidden_state is the encoder's output as it is; post_layernorm is applied to "
          "the class token only, for pooler_output.")),
        (causal, "the image tower has no mask: every patch sees every other (causal=False)."),
        (swapped,
         ("pre_layrnorm and post_layernorm are swapped: pre_layrnorm goes before the encoder.")),
    ]
    pooled = [
        (x[:, 0], "pooler_output is post_layernorm of the class token; the LayerNorm is missing."),
        (post(x[:, -1]), "that is the last patch; the class token is position 0."),
        (post(x[:, 1:].mean(dim=1)),
         "that is the mean of the patches; CLIP's ViT reads its feature at the class token."),
        (post(x.mean(dim=1)),
         "that is the mean of all tokens; CLIP's ViT reads its feature at the class token."),
        (post(without_pre[:, 0]), "pre_layrnorm is missing before the encoder."),
    ]
    return {"last_hidden_state": last, "pooler_output": pooled}


@exercise("VisionTransformer", vision_module.VisionTransformer)
def check_vision_transformer(tower_class: type) -> str:
    from transformers import CLIPVisionModel

    config = small_vision_config()
    torch.manual_seed(0)
    theirs = randomize(CLIPVisionModel._from_config(their_vision_config(config),
                                                    attn_implementation="eager"), seed=35)
    reference = vision_module.VisionTransformer(config).eval()
    reference.load_state_dict(theirs.state_dict())
    yours = load(tower_class(config), theirs.state_dict(), "VisionTransformer")
    pixel_values = randn(2, 3, 16, 16, seed=36)
    call = "VisionTransformer(pixel_values) for pixel_values of shape (2, 3, 16, 16)"
    with torch.no_grad():
        got = yours(pixel_values)
        compare_tower_output(call, got, reference(pixel_values), theirs(pixel_values),
                             "CLIPVisionModel", vision_tower_variants(reference, pixel_values))

        for states, weights in FLAGS:
            call = (f"VisionTransformer(pixel_values, output_hidden_states={states}, "
                    f"output_attentions={weights})")
            got = yours(pixel_values, output_hidden_states=states, output_attentions=weights)
            expected = reference(pixel_values, output_hidden_states=states, output_attentions=weights)
            for name in ("hidden_states", "attentions"):
                compare_listed(call, name, getattr(got, name), getattr(expected, name),
                               f"the encoder's {name}, passed on as they are")
    return ("pre_layrnorm, encoder without a mask, post_layernorm of the class token; equal to "
            "miniclip's VisionTransformer and transformers' CLIPVisionModel")


def openai_attention_pool(pool: resnet_module.AttentionPool2d, x: torch.Tensor) -> torch.Tensor:
    """OpenAI's AttentionPool2d.forward (clip/model.py), with `pool`'s weights."""
    x = x.flatten(start_dim=2).permute(2, 0, 1)  # NCHW -> (HW)NC
    x = torch.cat([x.mean(dim=0, keepdim=True), x], dim=0)  # (HW+1)NC
    x = x + pool.positional_embedding[:, None, :].to(x.dtype)  # (HW+1)NC
    x, _ = F.multi_head_attention_forward(
        query=x[:1], key=x, value=x, embed_dim_to_check=x.shape[-1], num_heads=pool.num_heads,
        q_proj_weight=pool.q_proj.weight, k_proj_weight=pool.k_proj.weight,
        v_proj_weight=pool.v_proj.weight, in_proj_weight=None,
        in_proj_bias=torch.cat([pool.q_proj.bias, pool.k_proj.bias, pool.v_proj.bias]),
        bias_k=None, bias_v=None, add_zero_attn=False, dropout_p=0.0,
        out_proj_weight=pool.c_proj.weight, out_proj_bias=pool.c_proj.bias,
        use_separate_proj_weight=True, training=False, need_weights=False,
    )
    return x.squeeze(0)


def pool_variants(pool: resnet_module.AttentionPool2d, x: torch.Tensor) -> list:
    """What common wrong attention pools return as their pooled vector, with hints."""
    from miniclip.attention import attention_weights

    def attend(tokens, queries):
        q = pool.split_heads(pool.q_proj(queries))
        k, v = pool.split_heads(pool.k_proj(tokens)), pool.split_heads(pool.v_proj(tokens))
        return (attention_weights(q, k) @ v).transpose(1, 2).flatten(2)  # (B, Tq, C)

    def one_head(tokens):
        q, k, v = pool.q_proj(tokens[:, :1]), pool.k_proj(tokens), pool.v_proj(tokens)
        weights = (q @ k.transpose(1, 2) / q.size(-1) ** 0.5).softmax(dim=-1)
        return pool.c_proj((weights @ v)[:, 0])

    features = x.flatten(2).transpose(1, 2)  # (B, HW, C)
    positions = pool.positional_embedding
    tokens = torch.cat([features.mean(dim=1, keepdim=True), features], dim=1) + positions
    after = features + positions[1:]
    mean_after = torch.cat([after.mean(dim=1, keepdim=True) + positions[0], after], dim=1)
    unpositioned = torch.cat([features.mean(dim=1, keepdim=True), features], dim=1)
    return [
        (pool.c_proj(attend(tokens, tokens).mean(dim=1)),
         ("every position asked and the answers were averaged; only the mean asks: the query "
          "is q_proj of the first token alone.")),
        (pool.c_proj(attend(unpositioned, unpositioned[:, :1])[:, 0]),
         "the positional embedding is missing: add it to every token, the mean included."),
        (pool.c_proj(attend(mean_after, mean_after[:, :1])[:, 0]),
         ("the mean was taken after adding the positions; take the mean of the raw feature "
          "map, put it in front, then add positional_embedding (whose row 0 is the mean's).")),
        (pool.c_proj(attend(tokens[:, 1:], tokens[:, :1])[:, 0]),
         "the mean is the query but not a key; the keys are the mean and every position."),
        (one_head(tokens),
         "one head of full width; split q, k and v into num_heads heads (split_heads)."),
        (attend(tokens, tokens[:, :1])[:, 0],
         "c_proj is missing: it maps the heads' concatenation to output_dim."),
    ]


@exercise("AttentionPool2d", resnet_module.AttentionPool2d)
def check_attention_pool(pool_class: type) -> str:
    grid, width, heads, output_dim = 3, 16, 4, 12
    torch.manual_seed(0)
    reference = resnet_module.AttentionPool2d(grid, width, heads, output_dim)
    with torch.no_grad():
        reference.positional_embedding.normal_(std=0.5)
        for projection in (reference.q_proj, reference.k_proj, reference.v_proj, reference.c_proj):
            projection.bias.normal_(std=0.3)
    yours = load(pool_class(grid, width, heads, output_dim), reference.state_dict(),
                 f"AttentionPool2d({grid}, {width}, {heads}, {output_dim})")
    x = randn(2, width, grid, grid, seed=37)
    with torch.no_grad():
        for output_attentions in (False, True):
            call = f"AttentionPool2d(x of shape (2, 16, 3, 3), output_attentions={output_attentions})"
            got, weights = pair(call, yours(x, output_attentions=output_attentions))
            expected, expected_weights = reference(x, output_attentions)
            mistakes = pool_variants(reference, x)
            if isinstance(got, torch.Tensor) and got.shape == (2, width) != expected.shape:
                raise CheckFailed(f"{call}: shape (2, {width}), expected (2, {output_dim})\n"
                                  f"Hint: {mistakes[-1][1]}")
            compare(f"{call}: pooled", got, expected, mistakes)
            compare(f"{call}: pooled, against OpenAI's F.multi_head_attention_forward", got,
                    openai_attention_pool(reference, x))
            compare(f"{call}: attention weights (B, heads, 1, 1 + H*W)", weights, expected_weights)
    return ("the mean asks, the mean and every position answer, positions added, 4 heads, "
            "c_proj; equal to miniclip's AttentionPool2d and to OpenAI's")
