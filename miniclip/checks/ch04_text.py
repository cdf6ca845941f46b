"""Checks of the text encoder (chapter 04)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from miniclip import text as text_module
from miniclip.checks.core import (
    compare,
    exercise,
)


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
    return "finds the first <|endoftext|> of each row, whatever the padding"
