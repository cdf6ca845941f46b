"""Checks of the tokenizer (chapter 01): bytes, words, merges, batches, training.

Expected values come from `miniclip.tokenizer` and, where transformers has a twin, from it:
`transformers.convert_slow_tokenizer.bytes_to_unicode`, the normaliser and pre-tokenizer of
`CLIPTokenizer`, and `CLIPTokenizer` itself built on CLIP's vocabulary (in memory, nothing
is downloaded). Tokens and words are lists, not tensors, so this module compares them itself.
"""

from __future__ import annotations

import functools
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from itertools import pairwise
from typing import Any

import regex
import torch

from miniclip import tokenizer as tokenizer_module
from miniclip.checks.core import CheckFailed, Mistakes, compare, describe, exercise, explained
from miniclip.tokenizer import (
    BYTE_TO_CHAR,
    END_OF_WORD,
    WORD,
    Tokenizer,
    clean_like_transformers,
    merge_pair,
    word_to_symbols,
)

__all__ = ["check_bpe", "check_bytes_to_unicode", "check_learn_merges", "check_merge_pair",
           "check_split_words", "check_tokenize"]


@functools.cache
def clip_tokenizer() -> Tokenizer:
    """miniclip's tokenizer on CLIP's vocabulary, loaded once for all checks."""
    return Tokenizer.from_openai()


@functools.cache
def transformers_tokenizer() -> Any:
    """transformers' CLIPTokenizer on the same vocabulary and merges, built in memory."""
    from transformers import CLIPTokenizer

    ours = clip_tokenizer()
    return CLIPTokenizer(vocab=ours.encoder, merges=ours.merges)


def short(items: Any, limit: int = 14) -> str:
    """repr of a list, cut in the middle when long."""
    if not isinstance(items, list) or len(items) <= limit:
        return repr(items)
    return f"[{', '.join(map(repr, items[:limit - 2]))}, ..., {items[-1]!r}] ({len(items)} items)"


def first_difference(got: list, expected: list) -> str:
    for index, (mine, theirs) in enumerate(zip(got, expected)):
        if mine != theirs:
            return f"item {index} is {mine!r}, expected {theirs!r}"
    if len(got) < len(expected):
        return f"{len(got)} items, expected {len(expected)} (item {len(got)} is {expected[len(got)]!r})"
    return f"{len(got)} items, expected {len(expected)} (item {len(expected)} is one too many)"


def compare_lists(what: str, got: Any, expected: list, mistakes: Mistakes = ()) -> None:
    """Raise CheckFailed, naming `what`, unless `got` is a list (or tuple) equal to `expected`."""
    if not isinstance(got, list | tuple):
        raise CheckFailed(f"{what} returned {describe(got)}; it should return a list")
    got = list(got)
    if got == expected:
        return
    hint = next((hint for wrong, hint in mistakes if got == list(wrong)), None)
    raise CheckFailed(f"{what}: {first_difference(got, expected)}\n  got      {short(got)}\n"
                      f"  expected {short(expected)}" + (f"\nHint: {hint}" if hint else ""))


# ---- exercise 1: bytes_to_unicode --------------------------------------------------------


def byte_table(printable: Sequence[int], shifted: Callable[[int, int], int]) -> dict[int, str]:
    """A byte table with the given printable bytes; byte b, the n-th other one, gets shifted(b, n)."""
    others = [b for b in range(256) if b not in printable]
    table = {b: chr(b) for b in printable}
    table.update({b: chr(shifted(b, n)) for n, b in enumerate(others)})
    return table


@exercise("bytes_to_unicode", tokenizer_module.bytes_to_unicode)
def check_bytes_to_unicode(bytes_to_unicode: Callable) -> str:
    from transformers.convert_slow_tokenizer import bytes_to_unicode as theirs

    got = bytes_to_unicode()
    expected = tokenizer_module.bytes_to_unicode()
    if not isinstance(got, dict):
        raise CheckFailed(f"bytes_to_unicode() returned {describe(got)}; it should return a dict "
                          "{byte value: character}")
    if sorted(got) != list(range(256)):
        missing = sorted(set(range(256)) - set(got))
        raise CheckFailed(f"the keys should be the 256 byte values 0 ... 255; missing {missing[:8]}, "
                          f"{len(got)} keys in all")
    for byte, character in got.items():
        if not isinstance(character, str) or len(character) != 1:
            raise CheckFailed(f"byte {byte} maps to {character!r}; each byte maps to one "
                              "character, a str of length 1 (chr(...))")
    if len(set(got.values())) < 256:
        seen: dict[str, int] = {}
        for byte, character in got.items():
            if character in seen:
                raise CheckFailed(f"bytes {seen[character]} and {byte} both map to {character!r}; "
                                  "the table must be reversible, one character per byte")
            seen[character] = byte
    ascii_printable = range(ord("!"), ord("~") + 1)
    latin = [*range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    mistakes = [
        ({b: chr(b) for b in range(256)},
         "every byte stands for itself, so the space (byte 32) is ' ' and control characters "
         "stay invisible. Only the printable bytes stand for themselves; the 68 others take "
         "chr(256), chr(257), ... in turn."),
        (byte_table([*ascii_printable, *latin], lambda b, n: 256 + b),
         "a shifted byte b got chr(256 + b); the n-th byte that is not printable gets "
         "chr(256 + n): byte 0 is 'Ā', byte 1 'ā', ..., byte 32 (space) 'Ġ'."),
        (byte_table(list(ascii_printable), lambda b, n: 256 + n),
         "only ASCII stands for itself here; the Latin-1 ranges '¡'–'¬' (161–172) and "
         "'®'–'ÿ' (174–255) are printable too and stand for themselves."),
        (byte_table([*ascii_printable, *range(ord("¡"), ord("ÿ") + 1)], lambda b, n: 256 + n),
         "byte 173 (0xAD) is the soft hyphen, which is invisible: the second range stops at "
         "'¬' (172) and the third starts at '®' (174)."),
    ]
    wrong = [b for b in range(256) if got[b] != expected[b]]
    if wrong:
        hint = next((hint for table, hint in mistakes if got == table), None)
        byte = wrong[0]
        raise CheckFailed(f"byte {byte} ({bytes([byte])!r}) maps to {got[byte]!r}, expected "
                          f"{expected[byte]!r} ({len(wrong)} of 256 bytes differ)"
                          + (f"\nHint: {hint}" if hint else ""))
    if list(got) != list(expected):
        raise CheckFailed("right characters, wrong order of the keys: list the printable bytes "
                          "first (in increasing order), then the 68 others. CLIP's vocabulary "
                          "numbers its first 256 tokens in this order, so '!' is id 0 and 'Ā' "
                          "(byte 0) id 188.")
    if got != theirs() or list(got) != list(theirs()):
        raise CheckFailed("equal to miniclip's table but not to transformers' bytes_to_unicode")
    return ("all 256 bytes map as in miniclip and transformers: 188 printable bytes stand for "
            "themselves, 68 others take chr(256) ... chr(323)")


# ---- exercise 2: split_words -------------------------------------------------------------


def split_words(text: str) -> list[str]:
    """Clean a text like transformers, then cut it into CLIP's words (miniclip.tokenizer.WORD)."""
    pattern = r"""'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+"""
    return regex.findall(pattern, clean_like_transformers(text))


GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
WRONG_SPLITS = [
    (lambda text: WORD.findall(text.lower()),
     "lowercasing alone leaves an accent written as letter + combining mark (e + U+0301) in "
     "two pieces; clean_like_transformers also normalises to NFC, one character 'é'."),
    (lambda text: WORD.findall(text),
     "the text was not cleaned: call clean_like_transformers(text) first, which lowercases "
     "(CLIP's vocabulary has no capitals) and composes accents (NFC)."),
    (lambda text: clean_like_transformers(text).split(),
     "splitting on whitespace keeps punctuation glued to words ('cat.'); CLIP's words are "
     "runs of letters, single digits, and runs of other symbols."),
    (lambda text: regex.findall(r"'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}+|[^\s\p{L}\p{N}]+",
                                clean_like_transformers(text)),
     "numbers are kept whole (\\p{N}+); CLIP splits them into single digits (\\p{N}), so "
     "'2024' is four words."),
    (lambda text: regex.findall(r"\p{L}+|\p{N}|[^\s\p{L}\p{N}]+", clean_like_transformers(text)),
     "the contractions are missing, or come too late: \"dog's\" should give 'dog', \"'s\". At "
     "each position the alternatives are tried from left to right, and the run of symbols takes "
     "the apostrophe alone if it can; put 's 't 're 've 'm 'll 'd first."),
    (lambda text: regex.findall(r"'s|'t|'re|'ve|'m|'ll|'d|\w+|[^\w\s]+", clean_like_transformers(text)),
     "\\w also matches digits and the underscore, so '2024' stays whole and 'snake_case' "
     "is one word; use \\p{L}+ for letters and \\p{N} for one digit."),
    (lambda text: regex.findall(GPT2_PATTERN, clean_like_transformers(text)),
     "that is GPT-2's pattern, which keeps spaces inside words (' dog'). CLIP drops "
     "whitespace and marks the end of each word with </w> instead."),
]
WORD_CASES = [
    "A photo of a CAT.", "a dog's toy!", "They're here; we'll see, I'd go",
    "snake_case and kebab-case", "2024: 3.14 apples", "hello,world!!! ...", "naïve café",
    "cafe\u0301 e\u0301te\u0301", "ΣΑΣ on the bus", "🐶🐱 pets", "  spaced   out\n\ttabs  ", "x²+y² = 1½",
    "O'Neil's rock'n'roll", "東京の夜景", "",
]


@exercise("split_words", split_words)
def check_split_words(split_words_fn: Callable) -> str:
    from transformers import CLIPTokenizer

    backend = CLIPTokenizer().backend_tokenizer  # its normaliser and pre-tokenizer, no vocabulary
    for text in WORD_CASES:
        composed = unicodedata.normalize("NFC", text) == text
        what = f"split_words({text!r})" if composed else f"split_words({text!a})"
        got = split_words_fn(text)
        expected = WORD.findall(clean_like_transformers(text))
        compare_lists(what, got, expected, [(wrong(text), hint) for wrong, hint in WRONG_SPLITS])
        pieces = backend.pre_tokenizer.pre_tokenize_str(backend.normalizer.normalize_str(text))
        theirs = [piece for piece, _ in pieces]
        compare_lists(f"{what}, written as bytes, against transformers' CLIPTokenizer pre-tokenizer",
                      ["".join(BYTE_TO_CHAR[b] for b in word.encode("utf-8")) for word in got],
                      theirs)
    return (f"equal to miniclip's words and to transformers' pre-tokenizer on {len(WORD_CASES)} "
            "texts: contractions, letters, single digits, symbols; whitespace dropped")


# ---- exercise 3: merge_pair --------------------------------------------------------------


def merge_right_to_left(symbols: list[str], pair: tuple[str, str]) -> list[str]:
    merged, i = [], len(symbols) - 1
    while i >= 0:
        if i > 0 and (symbols[i - 1], symbols[i]) == pair:
            merged.append(pair[0] + pair[1])
            i -= 2
        else:
            merged.append(symbols[i])
            i -= 1
    return merged[::-1]


def merge_first(symbols: list[str], pair: tuple[str, str]) -> list[str]:
    for i in range(len(symbols) - 1):
        if (symbols[i], symbols[i + 1]) == pair:
            return [*symbols[:i], pair[0] + pair[1], *symbols[i + 2:]]
    return list(symbols)


def merge_by_replacing(symbols: list[str], pair: tuple[str, str]) -> list[str]:
    return " ".join(symbols).replace(" ".join(pair), "".join(pair)).split(" ")


MERGE_CASES = [
    (["a", "b", "c"], ("a", "b")),
    (["t", "h", "e</w>"], ("h", "e</w>")),
    (["a", "a", "a"], ("a", "a")),
    (["a", "a", "a", "a</w>"], ("a", "a")),
    (["ab", "a", "b", "c", "a", "b", "d</w>"], ("a", "b")),
    (["ca", "b", "x</w>"], ("a", "b")),
    (["x", "a"], ("a", "b")),
    (["h", "i</w>"], ("i", "h")),
    (["a</w>"], ("a", "b")),
]


@exercise("merge_pair", tokenizer_module.merge_pair)
def check_merge_pair(merge_pair_fn: Callable) -> str:
    for symbols, pair in MERGE_CASES:
        what = f"merge_pair({symbols!r}, {pair!r})"
        given = list(symbols)
        try:
            got = merge_pair_fn(given, pair)
        except IndexError as error:
            raise CheckFailed(f"{what} raised IndexError: {error}. At the last symbol there is no "
                              "next one: test i + 1 < len(symbols) before looking at it.") from None
        if given != symbols:
            raise CheckFailed(f"{what} changed its argument to {given!r}; build and return a new "
                              "list, leaving `symbols` as it was")
        mistakes = [
            (merge_right_to_left(symbols, pair),
             "the pairs were merged from right to left; go left to right, so 'a a a' with "
             "('a', 'a') gives 'aa a', as in training."),
            (merge_first(symbols, pair),
             "only the first occurrence was merged; replace every occurrence."),
            (merge_by_replacing(symbols, pair),
             "joining the symbols into one string and replacing text loses their boundaries: "
             "'a' + 'a</w>' contains the text 'a a', and 'ca' + 'b' the text 'a b'. Walk along "
             "the list and compare whole symbols."),
        ]
        compare_lists(what, got, merge_pair(symbols, pair), mistakes)
    return (f"correct on {len(MERGE_CASES)} cases: every occurrence, left to right, overlaps, "
            "whole symbols only, pair absent")


# ---- exercise 4: bpe ---------------------------------------------------------------------


def lowest_rank_pair(symbols: list[str], rank: dict, highest: bool = False) -> tuple | None:
    ranked = [pair for pair in pairwise(symbols) if pair in rank]
    if not ranked:
        return None
    return (max if highest else min)(ranked, key=rank.get)


def wrong_bpe(word: str, rank: dict, symbols: list[str] | None = None, leftmost: bool = False,
              highest: bool = False, steps: int | None = None) -> list[str]:
    """BPE with knobs that reproduce common mistakes."""
    symbols = word_to_symbols(word) if symbols is None else symbols
    step = 0
    while len(symbols) > 1 and (steps is None or step < steps):
        if leftmost:
            pair = next((pair for pair in pairwise(symbols) if pair in rank), None)
        else:
            pair = lowest_rank_pair(symbols, rank, highest)
        if pair is None:
            break
        symbols = merge_pair(symbols, pair)
        step += 1
    return symbols


def bpe_one_sweep(word: str, rank: dict) -> list[str]:
    """Each pair of the *initial* symbols once, by rank: misses pairs that merges create."""
    symbols = word_to_symbols(word)
    for pair in sorted({p for p in pairwise(symbols) if p in rank}, key=rank.get):
        symbols = merge_pair(symbols, pair)
    return symbols


REPEAT_HINT = ("too few merges: after every merge, look again at all adjacent pairs (a merge "
               "creates new ones, 'to' + 'ken') and merge again, until no pair is a merge.")


def bpe_mistakes(word: str, rank: dict) -> Mistakes:
    as_bytes = [BYTE_TO_CHAR[b] for b in word.encode("utf-8")]
    characters = [*word[:-1], word[-1] + END_OF_WORD] if word else []
    return [
        (wrong_bpe(word, rank, leftmost=True),
         "you merged the leftmost pair that is a merge; merge the pair with the *lowest rank* "
         "(learnt first), wherever it is in the word."),
        (wrong_bpe(word, rank, highest=True),
         "you merged the pair with the highest rank first; the lowest rank (min) was learnt "
         "first and goes first."),
        (wrong_bpe(word, rank, steps=1), REPEAT_HINT),
        (bpe_one_sweep(word, rank), REPEAT_HINT),
        (wrong_bpe(word, rank, symbols=as_bytes),
         "the last symbol lacks the end-of-word mark: start from word_to_symbols(word), which "
         "appends '</w>' to it."),
        (wrong_bpe(word, rank, symbols=characters),
         "you started from the word's characters; start from its UTF-8 bytes written as "
         "printable characters, word_to_symbols(word) ('é' is 'Ã' + '©')."),
    ]


TOY_MERGES = [("b", "c"), ("a", "b"), ("c", "d</w>"), ("a", "bc"), ("abc", "d</w>"), ("b", "cd</w>")]
BPE_WORDS = ["tokenization", "photosynthesis", "miniclip", "a", "lowest", "newer", "zebras",
             "café", "🐶", "aaaaaaa", "2"]


def run_bpe(bpe: Callable, word: str, rank: dict, what: str) -> Any:
    with explained(what, ValueError, "empty", "once a word is a single symbol (or was one byte "
                   "to begin with) it has no pair left: stop when one symbol is left."):
        return bpe(word, rank)


@exercise("bpe", tokenizer_module.bpe)
def check_bpe(bpe_fn: Callable) -> str:
    toy_rank = {pair: rank for rank, pair in enumerate(TOY_MERGES)}
    reference = tokenizer_module.bpe
    for word in ("abcd", "abc", "dcba"):
        what = f"bpe({word!r}, merge_rank) with the made-up merges {TOY_MERGES}"
        expected = reference(word, toy_rank)
        compare_lists(what, run_bpe(bpe_fn, word, toy_rank, what), expected,
                      bpe_mistakes(word, toy_rank))
    rank = clip_tokenizer().merge_rank
    theirs = transformers_tokenizer()
    for word in BPE_WORDS:
        what = f"bpe({word!r}, merge_rank) with CLIP's 48,894 merges"
        got = run_bpe(bpe_fn, word, rank, what)
        compare_lists(what, got, reference(word, rank),
                      bpe_mistakes(word, rank))
        their_tokens = theirs.convert_ids_to_tokens(theirs.encode(word, add_special_tokens=False))
        compare_lists(f"{what}, against transformers' CLIPTokenizer", list(got), their_tokens)
    return (f"equal to miniclip's Tokenizer.bpe and to transformers' CLIPTokenizer on "
            f"{len(BPE_WORDS)} words, and lowest rank first on made-up merges")


# ---- exercise 5: tokenize (special tokens, truncation, padding) ---------------------------


def batch_with(tokenizer: Tokenizer, texts: list[str], context_length: int, padding: str,
               pad: int | None = None, bos: bool = True, eos: bool = True,
               cut_after: bool = False) -> dict[str, torch.Tensor]:
    """A batch built with knobs that reproduce common mistakes."""
    rows = []
    for text in texts:
        ids = tokenizer.encode(text)
        if not cut_after:
            ids = ids[:context_length - bos - eos]
        row = [tokenizer.bos_token_id] * bos + ids + [tokenizer.eos_token_id] * eos
        rows.append(row[:context_length])
    length = context_length if padding == "max_length" else max(map(len, rows))
    pad = tokenizer.pad_token_id if pad is None else pad
    input_ids = torch.tensor([row + [pad] * (length - len(row)) for row in rows])
    mask = torch.tensor([[1] * len(row) + [0] * (length - len(row)) for row in rows])
    return {"input_ids": input_ids, "attention_mask": mask}


def batch_parts(what: str, got: Any) -> tuple[Any, Any]:
    if not isinstance(got, dict) or not {"input_ids", "attention_mask"} <= set(got):
        raise CheckFailed(f"{what} returned {describe(got)}"
                          + (f" with keys {sorted(got)}" if isinstance(got, dict) else "")
                          + "; return a dict with 'input_ids' and 'attention_mask'")
    return got["input_ids"], got["attention_mask"]


def compare_batch(what: str, got: Any, expected: dict, mistakes: Sequence[tuple[dict, str]],
                  tokenizer: Tokenizer) -> None:
    input_ids, attention_mask = batch_parts(what, got)
    for key, value in (("input_ids", input_ids), ("attention_mask", attention_mask)):
        if isinstance(value, torch.Tensor) and value.dtype != torch.long:
            hint = ("\nHint: OpenAI's clip.tokenize fills a torch.int (int32) tensor; "
                    "transformers' CLIPTokenizer returns torch.long (int64), the dtype that "
                    "torch.tensor gives a list of Python ints." if value.dtype == torch.int32 else "")
            raise CheckFailed(f"{what}['{key}'] is {describe(value)}; ids and masks are integers "
                              "of dtype torch.long" + hint)
    compare(f"{what}['input_ids']", input_ids, expected["input_ids"],
            [(wrong["input_ids"], hint) for wrong, hint in mistakes])
    mask_mistakes = [
        (torch.ones_like(expected["attention_mask"]),
         "the attention_mask is 1 everywhere; it is 0 on padding, so that attention can hide "
         "those positions."),
        ((expected["input_ids"] != tokenizer.pad_token_id).long(),
         "the mask was computed from the ids, so the real <|endoftext|> counts as padding: CLIP "
         "pads with the <|endoftext|> id itself. Build the mask from the row lengths (1 for each "
         "token of the row, 0 for each padding)."),
    ]
    compare(f"{what}['attention_mask']", attention_mask, expected["attention_mask"], mask_mistakes)


@exercise("tokenize", tokenizer_module.tokenize)
def check_tokenize(tokenize_fn: Callable) -> str:
    tokenizer = clip_tokenizer()
    theirs = transformers_tokenizer()
    texts = ["a photo of a cat", "", "A RED circle above a blue square."]
    long_text = "a small photo of " + "a very " * 40 + "big dog"
    cases = [
        ("3 texts, padding='max_length', context_length=77", texts, 77, "max_length"),
        ("3 texts, padding='longest'", texts, 77, "longest"),
        ("a long text with context_length=8 (truncated)", [long_text, "a cat"], 8, "max_length"),
        ("a long text, padding='longest', context_length=8", [long_text, "a cat"], 8, "longest"),
    ]
    for case, batch, length, padding in cases:
        what = f"tokenize(tokenizer, texts, context_length={length}, padding={padding!r}) [{case}]"
        got = tokenize_fn(tokenizer, batch, context_length=length, padding=padding, truncation=True)
        expected = tokenizer(batch, context_length=length, padding=padding, truncation=True)
        other = "longest" if padding == "max_length" else "max_length"
        mistakes = [
            (batch_with(tokenizer, batch, length, padding, cut_after=True),
             "the row was cut after adding the special tokens, which drops <|endoftext|>. Cut "
             "the text's ids to context_length - 2 first, then add both special tokens."),
            (batch_with(tokenizer, batch, length, padding, pad=0),
             "padding must use tokenizer.pad_token_id: transformers' CLIP pads with the "
             "<|endoftext|> id (49407), not with 0."),
            (batch_with(tokenizer, batch, length, padding, bos=False),
             "<|startoftext|> (tokenizer.bos_token_id) is missing at the start of each row."),
            (batch_with(tokenizer, batch, length, padding, eos=False),
             "<|endoftext|> (tokenizer.eos_token_id) is missing after each text; the text "
             "tower reads its feature there."),
            (batch_with(tokenizer, batch, length, padding, bos=False, eos=False),
             "each row starts with tokenizer.bos_token_id (<|startoftext|>) and ends with "
             "tokenizer.eos_token_id (<|endoftext|>), before the padding."),
            (batch_with(tokenizer, batch, length, other),
             f"padding={padding!r} was not followed: 'max_length' pads every row to "
             "context_length, 'longest' to the longest row of the batch."),
        ]
        compare_batch(what, got, expected, mistakes, tokenizer)
        hf = theirs(batch, padding=padding, max_length=length, truncation=True, return_tensors="pt")
        compare(f"{what}['input_ids'], against transformers' CLIPTokenizer",
                got["input_ids"], hf["input_ids"])
        compare(f"{what}['attention_mask'], against transformers' CLIPTokenizer",
                got["attention_mask"], hf["attention_mask"])

    zero_padding = Tokenizer(tokenizer.encoder, tokenizer.merges, pad_token_id=0)  # like clip.tokenize
    what = "tokenize(tokenizer, ['a dog', 'a photo of a cat'], context_length=10) with pad_token_id=0"
    batch = ["a dog", "a photo of a cat"]
    compare_batch(what, tokenize_fn(zero_padding, batch, context_length=10, padding="max_length",
                                    truncation=True),
                  zero_padding(batch, context_length=10),
                  [(batch_with(zero_padding, batch, 10, "max_length", pad=tokenizer.eos_token_id),
                    "pad with tokenizer.pad_token_id, whatever it is; OpenAI's clip.tokenize "
                    "pads with 0, as this tokenizer does.")], zero_padding)

    what = "tokenize(tokenizer, 'a cat', context_length=77) with one string"
    got = tokenize_fn(tokenizer, "a cat", context_length=77, padding="max_length", truncation=True)
    input_ids, _ = batch_parts(what, got)
    if isinstance(input_ids, torch.Tensor) and input_ids.shape == (len("a cat"), 77):
        raise CheckFailed(f"{what}: shape {tuple(input_ids.shape)}, one row per character: a "
                          "single string is a batch of one text; wrap it in a list.")
    compare_batch(what, got, tokenizer("a cat"), [], tokenizer)

    fits = "a " * 6  # 6 ids: with the two special tokens exactly context_length=8
    what = f"tokenize(tokenizer, [{fits!r}], context_length=8, truncation=False)"
    try:
        got = tokenize_fn(tokenizer, [fits], context_length=8, padding="max_length", truncation=False)
    except ValueError as error:
        raise CheckFailed(f"{what} raised ValueError ({error}), but 6 ids + 2 special tokens fit "
                          "exactly in 8: raise only when len(ids) + 2 > context_length.") from None
    compare_batch(what, got, tokenizer([fits], context_length=8, truncation=False), [], tokenizer)
    what = "tokenize(tokenizer, [long_text], context_length=8, truncation=False)"
    try:
        got = tokenize_fn(tokenizer, [long_text], context_length=8, padding="max_length",
                          truncation=False)
    except ValueError:
        pass
    else:
        raise CheckFailed(f"{what} returned {describe(got)}; with truncation=False a text that "
                          "does not fit must raise ValueError instead of being cut silently.")
    return ("equal to miniclip's tokenizer and to transformers' CLIPTokenizer: special tokens, "
            "padding to max_length or longest, truncation that keeps <|endoftext|>, any pad id")


# ---- exercise 6: learn_merges ------------------------------------------------------------


def pair_counts(words: dict[str, list[str]], counts: Counter[str], weighted: bool = True
                ) -> Counter[tuple[str, str]]:
    """How often each adjacent pair occurs in the corpus (each word weighted by its count)."""
    totals: Counter[tuple[str, str]] = Counter()
    for word, symbols in words.items():
        for pair in pairwise(symbols):
            totals[pair] += counts[word] if weighted else 1
    return totals


def times(count: int) -> str:
    return "once" if count == 1 else f"{count} times"


def check_merges(word_counts: Counter[str], n_tokens: int, merges: Any) -> None:
    """Replay the learner's merges; each must be a most frequent pair at its step."""
    what = f"learn_merges({dict(word_counts)}, n_tokens={n_tokens})"
    if not isinstance(merges, list | tuple):
        raise CheckFailed(f"{what} returned {describe(merges)}; return a list of pairs "
                          "(first, second)")
    if len(merges) > n_tokens:
        raise CheckFailed(f"{what}: {len(merges)} merges; stop after n_tokens = {n_tokens}")
    words = {word: word_to_symbols(word) for word in word_counts}
    for step, pair in enumerate(merges):
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise CheckFailed(f"{what}: merge {step} is {pair!r}; each merge is a pair of "
                              "strings (first, second), e.g. ('l', 'o')")
        pair = tuple(pair)
        counts = pair_counts(words, word_counts)
        best, top = counts.most_common(1)[0] if counts else (None, 0)
        where = f"{what}: merge {step} is {pair!r}"
        if not counts:
            raise CheckFailed(f"{where}, but every word is a single token by then: no pair is "
                              "left, so stop there, even before n_tokens merges.")
        if counts[pair] == 0:
            hint = ("after each merge, apply it (merge_pair) to every word, so that pairs "
                    "that no longer exist are not counted again.")
            if pair[1] == END_OF_WORD:
                hint = ("'</w>' is not a symbol of its own: it is glued to the last byte of the "
                        "word ('w</w>'), as word_to_symbols(word) does.")
            elif (pair[0], pair[1] + END_OF_WORD) in counts:
                hint = ("the last symbol of each word carries '</w>': start from "
                        "word_to_symbols(word).")
            elif pair[0].endswith(END_OF_WORD):
                hint = "that pair crosses two words; pairs are counted inside each word only."
            raise CheckFailed(f"{where}, which does not occur in the words at that point (the "
                              f"most frequent pair is {best!r}, {times(top)}).\nHint: {hint}")
        if counts[pair] < top:
            unweighted = pair_counts(words, word_counts, weighted=False)
            unmarked = pair_counts({word: [symbol.removesuffix(END_OF_WORD) for symbol in symbols]
                                    for word, symbols in words.items()}, word_counts)
            hint = "merge the most frequent pair (ties may go either way)."
            if unmarked[pair] == max(unmarked.values()) and END_OF_WORD not in "".join(pair):
                hint = ("that pair would be the most frequent if words had no end-of-word mark; "
                        "the last symbol of each word carries '</w>': start from "
                        "word_to_symbols(word).")
            elif unweighted[pair] == max(unweighted.values()):
                hint = ("count each pair once per *occurrence of the word*: weigh the pairs of a "
                        "word by its count in word_counts.")
            raise CheckFailed(f"{where}, which occurs {times(counts[pair])}, but {best!r} occurs "
                              f"{times(top)}.\nHint: {hint}")
        words = {word: merge_pair(symbols, pair) for word, symbols in words.items()}
    remaining = pair_counts(words, word_counts)
    if len(merges) < n_tokens and remaining:
        (pair, count), = remaining.most_common(1)
        raise CheckFailed(f"{what}: {len(merges)} merges, but n_tokens = {n_tokens} and pairs "
                          f"remain, e.g. {pair!r} ({times(count)}); stop only when n_tokens merges "
                          "are learnt or every word is a single token.")


LEARN_CASES = [
    (Counter({"a": 5, "ab": 1}), 1),
    (Counter({"low": 5, "lower": 2, "newest": 6, "widest": 3}), 10),  # Sennrich et al. (2016)
    (Counter({"a": 30, "red": 9, "circle": 7, "square": 6, "blue": 8, "the": 12, "above": 3,
              "cross": 4, "left": 5, "of": 6, "2": 3, "squares": 2}), 25),
    (Counter({"aaab": 3, "ab": 2, "b": 7}), 50),  # runs out of pairs before 50
    (Counter({"bb": 1, "dog": 4, "doge": 3, "cat": 5}), 0),
]


@exercise("learn_merges", tokenizer_module.learn_merges)
def check_learn_merges(learn_merges: Callable) -> str:
    for word_counts, n_tokens in LEARN_CASES:
        check_merges(word_counts, n_tokens, learn_merges(Counter(word_counts), n_tokens))
    return (f"each merge is a most frequent pair at its step, on {len(LEARN_CASES)} corpora "
            "(Sennrich's low/lower/newest/widest among them), stopping at n_tokens or when no "
            "pair is left")
