"""The checks of chapter 05 accept miniclip's image towers and reject plausible wrong ones, saying why."""

import pytest
import torch
from check_cases import reference_and_wrong_answer_tests

from miniclip import checks
from miniclip.attention import attention_weights
from miniclip.checks.ch05_vision import patchify
from miniclip.resnet import AttentionPool2d
from miniclip.transformer import EncoderOutput
from miniclip.vision import VisionEmbeddings, VisionTransformer

REFERENCES = [
    (checks.check_patchify, patchify),
    (checks.check_vision_embeddings, VisionEmbeddings),
    (checks.check_vision_transformer, VisionTransformer),
    (checks.check_attention_pool, AttentionPool2d),
]


# ---- patchify ------------------------------------------------------------------------------


def patchify_with(order):
    def wrong(pixel_values, p):
        batch, channels, height, width = pixel_values.shape
        x = pixel_values.reshape(batch, channels, height // p, p, width // p, p).permute(order)
        return x.reshape(batch, (height // p) * (width // p), channels * p * p)
    return wrong


def strips(pixel_values, p):
    batch, channels, height, width = pixel_values.shape
    return pixel_values.reshape(batch, (height // p) * (width // p), channels * p * p)


def square_only(pixel_values, p):  # assumes H == W: the grid of a rectangle comes out wrong
    batch, channels, size, _ = pixel_values.shape
    grid = size // p
    x = pixel_values.reshape(batch, channels, grid, p, -1, p).permute(0, 2, 4, 1, 3, 5)
    return x.reshape(batch, grid * grid, -1)


WRONG_PATCHIFY = {
    "channels last": (patchify_with((0, 2, 4, 3, 5, 1)), "channels last"),
    "column by column": (patchify_with((0, 4, 2, 1, 3, 5)), "column by column"),
    "patch transposed": (patchify_with((0, 2, 4, 1, 5, 3)), "transposed"),
    "reshape alone": (strips, "strips"),
    "square images only": (square_only, "shape (1, 4, 72), expected (1, 6, 48)"),
}


# ---- VisionEmbeddings ------------------------------------------------------------------------


class Embeddings(VisionEmbeddings):
    """forward with knobs that reproduce common mistakes."""

    class_last, positions, class_position, by_column = False, True, True, False

    def forward(self, pixel_values):
        grid = self.patch_embedding(pixel_values)
        if self.by_column:
            grid = grid.transpose(2, 3)
        patches = grid.flatten(2).transpose(1, 2)
        cls = self.class_embedding.expand(patches.size(0), 1, -1)
        positions = self.position_embedding.weight
        if not self.class_position:
            return torch.cat([cls, patches + positions[1:]], dim=1)
        x = torch.cat([patches, cls] if self.class_last else [cls, patches], dim=1)
        return x + positions if self.positions else x


def embeddings(**knobs):
    return type("WrongEmbeddings", (Embeddings,), knobs)


class BiasedPatches(VisionEmbeddings):
    def __init__(self, config):
        super().__init__(config)
        self.patch_embedding = torch.nn.Conv2d(config.num_channels, config.hidden_size,
                                               config.patch_size, config.patch_size)


WRONG_EMBEDDINGS = {
    "class token last": (embeddings(class_last=True), "in front"),
    "no positions": (embeddings(positions=False), "position embeddings are missing"),
    "class token without position": (embeddings(class_position=False), "has no position"),
    "patches by column": (embeddings(by_column=True), "column by column"),
    "convolution with a bias": (BiasedPatches, "patch_embedding.bias"),
}


# ---- VisionTransformer -----------------------------------------------------------------------


class Tower(VisionTransformer):
    """forward with knobs that reproduce common mistakes."""

    pre, causal, normed_states, pool = True, False, False, "class"

    def forward(self, pixel_values, output_hidden_states=False, output_attentions=False):
        x = self.embeddings(pixel_values)
        x = self.pre_layrnorm(x) if self.pre else x
        x, hidden_states, attentions = self.encoder(
            x, causal=self.causal, output_hidden_states=output_hidden_states,
            output_attentions=output_attentions)
        pooled = {
            "class": self.post_layernorm(x[:, 0]),
            "class, not normed": x[:, 0],
            "mean": self.post_layernorm(x[:, 1:].mean(dim=1)),
            "last": self.post_layernorm(x[:, -1]),
        }[self.pool]
        last = self.post_layernorm(x) if self.normed_states else x
        return EncoderOutput(last, pooled, hidden_states, attentions)


def tower(**knobs):
    return type("WrongTower", (Tower,), knobs)


class SwappedNorms(VisionTransformer):
    def forward(self, pixel_values, output_hidden_states=False, output_attentions=False):
        x, _, _ = self.encoder(self.post_layernorm(self.embeddings(pixel_values)))
        return EncoderOutput(x, self.pre_layrnorm(x[:, 0]))


class ReturnsTuple(VisionTransformer):
    def forward(self, pixel_values, output_hidden_states=False, output_attentions=False):
        output = super().forward(pixel_values)
        return output.last_hidden_state, output.pooler_output


class DropsAttentions(VisionTransformer):
    def forward(self, pixel_values, output_hidden_states=False, output_attentions=False):
        return super().forward(pixel_values, output_hidden_states, False)


class SwapsFlags(VisionTransformer):
    def forward(self, pixel_values, output_hidden_states=False, output_attentions=False):
        return super().forward(pixel_values, output_attentions, output_hidden_states)


WRONG_TOWERS = {
    "flags swapped": (SwapsFlags, "output_attentions=False): hidden_states is None; expected a tuple"),
    "no pre_layrnorm": (tower(pre=False), "pre_layrnorm is missing"),
    "causal": (tower(causal=True), "no mask"),
    "post_layernorm on every token": (tower(normed_states=True), "class token only"),
    "pooled without post_layernorm": (tower(pool="class, not normed"), "LayerNorm is missing"),
    "pooled as the mean of patches": (tower(pool="mean"), "mean of the patches"),
    "pooled at the last patch": (tower(pool="last"), "last patch"),
    "LayerNorms swapped": (SwappedNorms, "swapped"),
    "returns a tuple": (ReturnsTuple, "return EncoderOutput"),
    "attentions dropped": (DropsAttentions, "attentions is None"),
}


# ---- AttentionPool2d ---------------------------------------------------------------------------


class Pool(AttentionPool2d):
    """forward with knobs that reproduce common mistakes."""

    all_ask, positions, mean_key, heads, project, mean_after = False, True, True, True, True, False

    def forward(self, x, output_attentions=False):
        features = x.flatten(2).transpose(1, 2)
        pos = self.positional_embedding if self.positions else torch.zeros_like(
            self.positional_embedding)
        if self.mean_after:
            after = features + pos[1:]
            tokens = torch.cat([after.mean(dim=1, keepdim=True) + pos[0], after], dim=1)
        else:
            tokens = torch.cat([features.mean(dim=1, keepdim=True), features], dim=1) + pos
        queries = tokens if self.all_ask else tokens[:, :1]
        keys = tokens if self.mean_key else tokens[:, 1:]
        heads = self.num_heads if self.heads else 1
        width = tokens.size(-1)

        def split(t):
            return t.view(t.size(0), t.size(1), heads, width // heads).transpose(1, 2)

        weights = attention_weights(split(self.q_proj(queries)), split(self.k_proj(keys)))
        pooled = (weights @ split(self.v_proj(keys))).transpose(1, 2).flatten(2).mean(dim=1)
        pooled = self.c_proj(pooled) if self.project else pooled
        return pooled, weights if output_attentions else None


def pool(**knobs):
    return type("WrongPool", (Pool,), knobs)


WRONG_POOLS = {
    "every position asks": (pool(all_ask=True), "every position asked"),
    "no positions": (pool(positions=False), "positional embedding is missing"),
    "mean after the positions": (pool(mean_after=True), "mean was taken after"),
    "mean not a key": (pool(mean_key=False), "not a key"),
    "one head": (pool(heads=False), "one head"),
    "no c_proj": (pool(project=False), "c_proj is missing"),
}

WRONG_ANSWERS = [
    (checks.check_patchify, WRONG_PATCHIFY),
    (checks.check_vision_embeddings, WRONG_EMBEDDINGS),
    (checks.check_vision_transformer, WRONG_TOWERS),
    (checks.check_attention_pool, WRONG_POOLS),
]


@pytest.mark.parametrize("knobs, check", [
    (Embeddings, checks.check_vision_embeddings), (Tower, checks.check_vision_transformer),
    (Pool, checks.check_attention_pool)], ids=["embeddings", "tower", "pool"])
def test_the_knob_classes_are_right_with_every_knob_right(knobs, check, capsys):
    check(knobs)
    assert capsys.readouterr().out.startswith("✓ ")


test_reference_passes_with_one_line, test_wrong_answer_fails_and_says_why = reference_and_wrong_answer_tests(
    REFERENCES, WRONG_ANSWERS)


def test_patchify_reference_is_the_patch_convolution():
    torch.manual_seed(0)
    convolution = torch.nn.Conv2d(3, 7, kernel_size=4, stride=4, bias=False)
    pixel_values = torch.randn(2, 3, 16, 12)
    expected = convolution(pixel_values).flatten(2).transpose(1, 2)
    got = patchify(pixel_values, 4) @ convolution.weight.flatten(1).T
    torch.testing.assert_close(got, expected)


# ---- figures -------------------------------------------------------------------------------


def test_position_mosaic_puts_each_positions_own_similarity_at_its_place():
    from miniclip.plots_encoders import position_similarity_figure, similarity_mosaic

    torch.manual_seed(0)
    grid = 3
    mosaic = similarity_mosaic(torch.randn(grid * grid, 16), grid)
    assert mosaic.shape == (grid * (grid + 1) - 1,) * 2
    for row in range(grid):
        for col in range(grid):  # tile (row, col), at the cell of its own position
            assert abs(mosaic[row * (grid + 1) + row, col * (grid + 1) + col] - 1) < 1e-6
    fig = position_similarity_figure({"random": torch.randn(9, 16)}, grid, title="positions")
    ax = fig.axes[0]
    assert fig.get_suptitle() == "positions" and ax.get_title() == "random"
    assert ax.get_xlabel() == "patch column" and fig.axes[-1].get_ylabel().startswith("cosine")


def test_patch_grid_figure_numbers_the_patches_in_reading_order():
    from PIL import Image

    from miniclip.plots_encoders import patch_grid_figure

    fig = patch_grid_figure(Image.new("RGB", (16, 16)), patch_size=4, title="patches", shown=3)
    grid_ax = fig.axes[0]
    assert [text.get_text() for text in grid_ax.texts] == [str(i) for i in range(16)]
    assert grid_ax.texts[1].get_position() == (6.0, 2.0)  # patch 1: first row, second column
    assert grid_ax.get_xlabel() == "x (pixels)"
