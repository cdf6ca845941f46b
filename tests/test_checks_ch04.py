"""The checks of chapter 04 accept miniclip's text tower and reject plausible wrong ones, saying why."""

import pytest
import torch
from check_cases import reference_and_wrong_answer_tests

from miniclip import checks
from miniclip.attention import padding_mask
from miniclip.text import TextEmbeddings, TextTransformer, eos_positions
from miniclip.transformer import EncoderOutput

REFERENCES = [
    (checks.check_eos_positions, eos_positions),
    (checks.check_text_embeddings, TextEmbeddings),
    (checks.check_text_transformer, TextTransformer),
]


# ---- eos_positions: the legacy rule (the other wrong answers are in test_checks.py) ----


def first_eos_only(input_ids, eos_token_id):
    return (input_ids == eos_token_id).int().argmax(dim=-1)


def first_eos_or_error(input_ids, eos_token_id):
    if not (input_ids == eos_token_id).any(dim=-1).all():
        raise ValueError("a row has no end-of-text token")
    return first_eos_only(input_ids, eos_token_id)


def float_positions(input_ids, eos_token_id):
    return eos_positions(input_ids, eos_token_id).float()


WRONG_EOS_POSITIONS = {
    "legacy rule missing": (first_eos_only, "no row holds the id 2"),
    "legacy rule missing, raises": (first_eos_or_error, "raised ValueError"),
    "float positions": (float_positions, "dtype torch.float32, expected torch.int64"),
}


# ---- TextEmbeddings ----------------------------------------------------------------------


class TokensOnly(TextEmbeddings):
    def forward(self, input_ids):
        return self.token_embedding(input_ids)


class PositionsFromOne(TextEmbeddings):
    def forward(self, input_ids):
        positions = torch.arange(1, input_ids.size(1) + 1)
        return self.token_embedding(input_ids) + self.position_embedding(positions)


class PositionsBackwards(TextEmbeddings):
    def forward(self, input_ids):
        positions = torch.arange(input_ids.size(1)).flip(0)
        return self.token_embedding(input_ids) + self.position_embedding(positions)


class RenamedEmbeddings(TextEmbeddings):
    def __init__(self, config):
        super().__init__(config)
        self.positions = self.position_embedding
        del self.position_embedding


WRONG_EMBEDDINGS = {
    "positions missing": (TokensOnly, "token embedding alone"),
    "positions from 1": (PositionsFromOne, "start at 1"),
    "positions backwards": (PositionsBackwards, "backwards"),
    "parameter renamed": (RenamedEmbeddings, "transformers' names"),
}


# ---- TextTransformer -----------------------------------------------------------------------


class Tower(TextTransformer):
    """forward with knobs that reproduce common mistakes."""

    causal, use_mask, final_norm, pool = True, True, True, "eos"

    def forward(self, input_ids, attention_mask=None, output_hidden_states=False,
                output_attentions=False):
        x = self.embeddings(input_ids)
        mask = padding_mask(attention_mask) if attention_mask is not None and self.use_mask else None
        if self.use_mask == "raw":
            mask = attention_mask
        x, hidden_states, attentions = self.encoder(
            x, mask, causal=self.causal, output_hidden_states=output_hidden_states,
            output_attentions=output_attentions)
        normed = self.final_layer_norm(x)
        rows = torch.arange(len(input_ids))
        eos = eos_positions(input_ids, self.config.eos_token_id)
        pooled = {
            "eos": normed[rows, eos],
            "before norm": x[rows, eos],
            "last": normed[:, -1],
            "mean": normed.mean(dim=1),
            "eos id only": normed[rows, (input_ids == self.config.eos_token_id).int().argmax(-1)],
            "largest id": normed[rows, input_ids.argmax(-1)],  # OpenAI's rule, for its vocabulary
        }[self.pool]
        return EncoderOutput(normed if self.final_norm else x, pooled, hidden_states, attentions)


def tower(**knobs):
    return type("WrongTower", (Tower,), knobs)


class ReturnsTuple(TextTransformer):
    def forward(self, input_ids, attention_mask=None, output_hidden_states=False,
                output_attentions=False):
        output = super().forward(input_ids, attention_mask)
        return output.last_hidden_state, output.pooler_output


class DropsHiddenStates(TextTransformer):
    def forward(self, input_ids, attention_mask=None, output_hidden_states=False,
                output_attentions=False):
        output = super().forward(input_ids, attention_mask, False, output_attentions)
        return output


class SwapsFlags(TextTransformer):
    def forward(self, input_ids, attention_mask=None, output_hidden_states=False,
                output_attentions=False):
        return super().forward(input_ids, attention_mask, output_attentions, output_hidden_states)


WRONG_TOWERS = {
    "flags swapped": (SwapsFlags, "output_attentions=False): hidden_states is None; expected a tuple"),
    "not causal": (tower(causal=False), "not causal"),
    "no final LayerNorm": (tower(final_norm=False), "final_layer_norm"),
    "padding mask ignored": (tower(use_mask=False), "only the padding positions differ"),
    "raw attention_mask to the encoder": (tower(use_mask="raw"), "The encoder takes padding_mask(attention_mask)"),
    "pooled before the LayerNorm": (tower(pool="before norm"), "before final_layer_norm"),
    "pooled at the last position": (tower(pool="last"), "last position"),
    "pooled by the mean": (tower(pool="mean"), "mean over tokens"),
    "legacy rule missing": (tower(pool="eos id only"), "legacy rule is missing"),
    "pooled at the largest id": (tower(pool="largest id"), "input_ids.argmax(-1)), OpenAI's rule"),
    "returns a tuple": (ReturnsTuple, "return EncoderOutput"),
    "hidden_states dropped": (DropsHiddenStates, "hidden_states is None"),
}

WRONG_ANSWERS = [
    (checks.check_eos_positions, WRONG_EOS_POSITIONS),
    (checks.check_text_embeddings, WRONG_EMBEDDINGS),
    (checks.check_text_transformer, WRONG_TOWERS),
]


def test_the_reference_tower_is_the_tower_with_every_knob_right(capsys):
    checks.check_text_transformer(Tower)
    assert capsys.readouterr().out.startswith("✓ TextTransformer")


test_reference_passes_with_one_line, test_wrong_answer_fails_and_says_why = reference_and_wrong_answer_tests(
    REFERENCES, WRONG_ANSWERS)


def test_padding_mask_ignored_is_named_at_a_padding_position():
    with pytest.raises(checks.CheckFailed) as failure:
        checks.check_text_transformer(tower(use_mask=False))
    message = str(failure.value)
    assert "[with attention_mask]: last_hidden_state: entry [0, 5," in message, message


def test_visibility_figure_frames_the_end_of_text_row():
    from miniclip.attention import causal_mask
    from miniclip.plots_encoders import text_visibility_figure

    labels = ["<sot>", "a", "dog", "<eot>", "<pad>"]
    change = torch.rand(5, 5, generator=torch.Generator().manual_seed(0)).tril()
    fig = text_visibility_figure(labels, causal_mask(5)[0, 0], change, eos=3, title="seen")
    mask_ax, change_ax = fig.axes[:2]
    assert fig.get_suptitle() == "seen" and mask_ax.get_title().startswith("one layer")
    assert [label.get_text() for label in change_ax.get_xticklabels()] == labels
    assert change_ax.images[0].get_array().max() <= 1  # each row scaled to its largest
    frame = change_ax.patches[0]
    assert frame.get_xy() == (-0.5, 2.5) and frame.get_height() == 1  # the <eot> row
    assert fig.axes[-1].get_ylabel().startswith("change of output")
