"""Checks of the text encoder (chapter 04)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from miniclip import text as text_module
from miniclip.attention import padding_mask
from miniclip.checks.core import (
    FLAGS,
    CheckFailed,
    compare,
    compare_listed,
    compare_tower_output,
    exercise,
    hf_config,
    load,
    randomize,
    right_padded,
)
from miniclip.config import TextConfig

__all__ = ["check_eos_positions", "check_text_embeddings", "check_text_transformer"]

LEGACY_EOS_HINT = ("transformers' configs converted from OpenAI before 2023 say eos_token_id=2; "
                   "for them the text is pooled at the largest id of each row (argmax), which is "
                   "<|endoftext|> in OpenAI's vocabulary. Treat eos_token_id == 2 that way.")


@exercise("eos_positions", text_module.eos_positions)
def check_eos_positions(eos_positions: Callable) -> str:
    eos = 7  # not the largest id here, as it is in CLIP's vocabulary
    input_ids = torch.tensor([[6, 12, 13, 7, 7, 7],  # padded with <|endoftext|> (transformers)
                              [6, 9, 7, 0, 0, 0],  # padded with 0 (OpenAI's clip.tokenize)
                              [6, 20, 21, 22, 23, 7]])
    expected = torch.tensor([3, 2, 5])
    mistakes = [
        (input_ids.argmax(dim=-1),
         ("that is the position of the largest id. It finds "
          "<|endoftext|> only when it is the largest id of the vocabulary (OpenAI's); look for "
          "the id itself: (input_ids == eos_token_id).")),
        (torch.tensor([5, 2, 5]),
         ("that is the *last* end-of-text token; padding may repeat "
          "it, so take the first: argmax of (input_ids == eos_token_id).int().")),
        (torch.zeros(3, dtype=torch.long),
         ("position 0 holds <|startoftext|>, which has seen "
          "no word (the attention is causal); pool at the end-of-text token.")),
        (torch.full((3,), 5),
         ("the last position is padding in shorter rows; pool at the "
          "first end-of-text token.")),
    ]
    compare(f"eos_positions(input_ids, eos_token_id={eos}) for rows {input_ids.tolist()}",
            eos_positions(input_ids, eos), expected, mistakes)

    # The legacy rule: a config that says eos_token_id=2 pools at the largest id.
    legacy_ids = torch.tensor([[8, 3, 4, 9, 9, 9], [8, 5, 9, 0, 0, 0]])  # <|endoftext|> = 9
    what = f"eos_positions(input_ids, eos_token_id=2) for rows {legacy_ids.tolist()}"
    try:
        got = eos_positions(legacy_ids, text_module.LEGACY_EOS_TOKEN_ID)
    except ValueError as error:
        raise CheckFailed(f"{what} raised ValueError({error}). Hint: {LEGACY_EOS_HINT}") from None
    compare(what, got, torch.tensor([3, 2]),
            [(torch.zeros(2, dtype=torch.long), f"no row holds the id 2. {LEGACY_EOS_HINT}")])
    return ("finds the first <|endoftext|> of each row, whatever the padding, and keeps the "
            "legacy rule of eos_token_id=2")


def small_config(**fields) -> TextConfig:
    """A text tower small enough to check in milliseconds; by default <|endoftext|> is the
    largest id, as in OpenAI's vocabulary."""
    values = dict(vocab_size=50, hidden_size=24, intermediate_size=40, num_hidden_layers=2,
                  num_attention_heads=4, max_position_embeddings=8, bos_token_id=48,
                  eos_token_id=49)
    return TextConfig(**{**values, **fields})


def their_config(config: TextConfig):
    """transformers' CLIPTextConfig with the same fields."""
    names = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
             "num_attention_heads", "max_position_embeddings", "pad_token_id", "bos_token_id",
             "eos_token_id")
    return hf_config(**{name: getattr(config, name) for name in names})


@exercise("TextEmbeddings", text_module.TextEmbeddings)
def check_text_embeddings(embeddings_class: type) -> str:
    from transformers.models.clip.modeling_clip import CLIPTextEmbeddings

    config = small_config()
    torch.manual_seed(0)
    theirs = CLIPTextEmbeddings(their_config(config)).eval()
    reference = text_module.TextEmbeddings(config)
    reference.load_state_dict(theirs.state_dict())
    yours = load(embeddings_class(config), theirs.state_dict(), "TextEmbeddings")
    tokens, positions = reference.token_embedding, reference.position_embedding.weight
    for input_ids in (torch.tensor([[48, 3, 17, 49, 49], [48, 30, 31, 32, 49]]),
                      torch.tensor([[48, 5, 6, 7, 8, 9, 10, 49]])):
        batch, length = input_ids.shape
        what = f"TextEmbeddings(input_ids) for input_ids of shape {(batch, length)}"
        with torch.no_grad():
            got = yours(input_ids)
            mistakes = [
                (tokens(input_ids),
                 ("that is the token embedding alone; add the position embedding of each "
                  "position 0..T-1, or the model cannot tell 'dog bites man' from 'man bites dog'.")),
                (positions[:length].expand(batch, -1, -1),
                 "that is the position embedding alone; add the token embedding of each id."),
                (tokens(input_ids) + positions[:length].flip(0),
                 "the positions run backwards; token t gets position t: torch.arange(T)."),
            ]
            if length < len(positions):
                mistakes.append((tokens(input_ids) + positions[1:length + 1],
                                 ("the positions start at 1; the first token, <|startoftext|>, "
                                  "has position 0.")))
            compare(what, got, reference(input_ids), mistakes)
            compare(f"{what}, against transformers' CLIPTextEmbeddings", got, theirs(input_ids))
    return ("token embedding + position embedding, for a short text and a full-length one; "
            "equal to miniclip's TextEmbeddings and transformers' CLIPTextEmbeddings")


def text_tower_variants(tower: text_module.TextTransformer, input_ids: torch.Tensor,
                        attention_mask: torch.Tensor | None) -> dict[str, list]:
    """Common wrong text towers: their (last_hidden_state, pooler_output), with hints."""
    mask = padding_mask(attention_mask) if attention_mask is not None else None
    x = tower.embeddings(input_ids)
    causal, _, _ = tower.encoder(x, mask, causal=True)
    bidirectional, _, _ = tower.encoder(x, mask, causal=False)
    unmasked, _, _ = tower.encoder(x, None, causal=True)
    normed = tower.final_layer_norm(causal)
    rows = torch.arange(len(input_ids))
    eos = text_module.eos_positions(input_ids, tower.config.eos_token_id)
    by_id = (input_ids == tower.config.eos_token_id).int().argmax(dim=-1)
    last = [
        (causal,
         ("that is the encoder's output; the tower ends with final_layer_norm (the pre-LN "
          "residual stream is never normalised otherwise, chapter 03).")),
        (tower.final_layer_norm(bidirectional),
         ("the attention is not causal: pass causal=True to the encoder, so that no token "
          "sees the words after it.")),
    ]
    if mask is not None:
        last.append((
            tower.final_layer_norm(unmasked),
            ("only the padding positions differ: the attention_mask was not used. Turn it into "
             "padding_mask(attention_mask) and pass it to the encoder; transformers hides "
             "padding keys from every query, the padding positions included.")))
    pooled = [
        (normed[rows, input_ids.argmax(dim=-1)],
         ("pooled at the largest id of each row (input_ids.argmax(-1)), OpenAI's rule: it finds "
          "<|endoftext|> only in a vocabulary where that is the largest id, as in OpenAI's, not "
          f"here (eos_token_id={tower.config.eos_token_id}). Pool at "
          "eos_positions(input_ids, self.config.eos_token_id).")),
        (normed[rows, by_id],
         ("the legacy rule is missing: use eos_positions(input_ids, self.config.eos_token_id); "
          + LEGACY_EOS_HINT)),
        (causal[rows, eos],
         "the pooled vector is read before final_layer_norm; read it after."),
        (normed[:, -1],
         ("that is the last position, which is padding in shorter rows; pool at "
          "eos_positions(input_ids, self.config.eos_token_id).")),
        (normed[:, 0],
         ("that is position 0, <|startoftext|>, which has seen no word (the attention is "
          "causal); pool at the end-of-text token.")),
        (normed.mean(dim=1),
         "that is the mean over tokens; CLIP reads the one vector at <|endoftext|>."),
    ]
    return {"last_hidden_state": last, "pooler_output": pooled}


def call_with_mask(tower: torch.nn.Module, call: str, input_ids: torch.Tensor,
                   attention_mask: torch.Tensor | None):
    """The tower's output; an error that only the mask brings on is told what the encoder takes."""
    try:
        return tower(input_ids, attention_mask=attention_mask)
    except RuntimeError as error:
        if attention_mask is None:
            raise
        try:
            tower(input_ids, attention_mask=None)
        except Exception:
            raise error from None  # not the mask's doing
        raise CheckFailed(
            f"{call} raised RuntimeError: {error}\nHint: it runs without the mask, so the mask is "
            "the trouble. The encoder takes padding_mask(attention_mask): booleans of shape "
            "(batch, 1, 1, length), True where a key may be attended to. attention_mask itself "
            "is (batch, length), 1s and 0s, and does not broadcast against the (batch, heads, "
            "length, length) scores.") from None


@exercise("TextTransformer", text_module.TextTransformer)
def check_text_transformer(tower_class: type) -> str:
    from transformers import CLIPTextModel

    input_ids = torch.tensor([[48, 5, 6, 7, 49, 49, 49],  # padded with <|endoftext|>
                              [48, 9, 49, 0, 0, 0, 0],  # padded with 0, as OpenAI does
                              [48, 10, 11, 12, 13, 14, 49]])
    # <|startoftext|> = 46, <|endoftext|> = 45, and a word of each row has a larger id
    other_ids = torch.tensor([[46, 5, 49, 7, 45, 45, 45],
                              [46, 49, 45, 0, 0, 0, 0],
                              [46, 10, 11, 48, 13, 14, 45]])
    attention_mask = right_padded([5, 3, 7], 7)
    cases = [
        ("with attention_mask", small_config(), input_ids, attention_mask),
        ("attention_mask=None", small_config(), input_ids, None),
        ("<|endoftext|> = 45, not the largest id", small_config(bos_token_id=46, eos_token_id=45),
         other_ids, attention_mask),
        ("legacy config, eos_token_id=2", small_config(eos_token_id=2), input_ids, attention_mask),
    ]
    torch.manual_seed(0)
    theirs = randomize(CLIPTextModel._from_config(their_config(cases[0][1]),
                                                  attn_implementation="eager"), seed=20)
    weights = theirs.state_dict()
    for case, config, ids, mask in cases:
        theirs.config.eos_token_id = theirs.eos_token_id = config.eos_token_id
        reference = text_module.TextTransformer(config).eval()
        reference.load_state_dict(weights)
        yours = load(tower_class(config), weights, "TextTransformer")
        call = f"TextTransformer(input_ids, attention_mask) [{case}]"
        with torch.no_grad():
            got = call_with_mask(yours, call, ids, mask)
            compare_tower_output(call, got, reference(ids, mask),
                                 theirs(ids, attention_mask=mask), "CLIPTextModel",
                                 text_tower_variants(reference, ids, mask))

    for states, weights in FLAGS:
        call = (f"TextTransformer(input_ids, attention_mask, output_hidden_states={states}, "
                f"output_attentions={weights})")
        with torch.no_grad():
            got = yours(input_ids, attention_mask, output_hidden_states=states,
                        output_attentions=weights)
            expected = reference(input_ids, attention_mask, output_hidden_states=states,
                                 output_attentions=weights)
        for name in ("hidden_states", "attentions"):
            compare_listed(call, name, getattr(got, name), getattr(expected, name),
                           f"the encoder's {name}, passed on as they are")
    return ("embeddings, causal encoder with the padding mask, final LayerNorm, pooled at "
            "<|endoftext|> (legacy rule included); equal to miniclip's TextTransformer and "
            "transformers' CLIPTextModel")
