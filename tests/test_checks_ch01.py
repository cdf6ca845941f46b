"""Chapter 01's checks accept miniclip's answers and reject plausible wrong ones, saying why;
its figures show what they claim."""

import inspect
from collections import Counter
from itertools import pairwise
from types import SimpleNamespace

import pytest
import regex
import torch
from check_cases import reference_and_wrong_answer_tests

from miniclip import checks, plots_tokens
from miniclip.checks.ch01_tokenizer import clip_tokenizer, split_words
from miniclip.tokenizer import (
    BYTE_TO_CHAR,
    WORD,
    Tokenizer,
    bytes_to_unicode,
    clean_like_transformers,
    learn_merges,
    merge_pair,
    word_to_symbols,
)


def bpe(word, merge_rank):
    return Tokenizer.bpe(SimpleNamespace(merge_rank=merge_rank), word)


def tokenize(tokenizer, texts, context_length=77, padding="max_length", truncation=True):
    return tokenizer(texts, context_length=context_length, padding=padding, truncation=truncation)


REFERENCES = [
    (checks.check_bytes_to_unicode, bytes_to_unicode),
    (checks.check_split_words, split_words),
    (checks.check_merge_pair, merge_pair),
    (checks.check_bpe, bpe),
    (checks.check_tokenize, tokenize),
    (checks.check_learn_merges, learn_merges),
]


# ---- wrong answers ----------------------------------------------------------------------

PRINTABLE = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
             *range(ord("®"), ord("ÿ") + 1)]


def table(printable, shift):
    others = [b for b in range(256) if b not in printable]
    return {**{b: chr(b) for b in printable}, **{b: chr(shift(b, n)) for n, b in enumerate(others)}}


WRONG_BYTES_TO_UNICODE = {
    "identity": (lambda: {b: chr(b) for b in range(256)}, "stands for itself"),
    "shifted by the byte": (lambda: table(PRINTABLE, lambda b, n: 256 + b), "chr(256 + n)"),
    "ASCII only": (lambda: table(PRINTABLE[:94], lambda b, n: 256 + n), "Latin-1"),
    "soft hyphen printable": (
        lambda: table([*range(33, 127), *range(161, 256)], lambda b, n: 256 + n), "soft hyphen"),
    "sorted by byte": (lambda: dict(sorted(bytes_to_unicode().items())), "order of the keys"),
    "a list": (lambda: list(bytes_to_unicode().values()), "should return a dict"),
    "not reversible": (lambda: {b: chr(b % 128 + 128) for b in range(256)}, "reversible"),
}


def findall(pattern, clean=clean_like_transformers):
    return lambda text: regex.findall(pattern, clean(text))


WRONG_SPLIT_WORDS = {
    "not cleaned": (lambda text: WORD.findall(text), "not cleaned"),
    "lowercase only": (lambda text: WORD.findall(text.lower()), "lowercasing alone"),
    "whitespace split": (lambda text: clean_like_transformers(text).split(), "glued"),
    "numbers whole": (findall(r"'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}+|[^\s\p{L}\p{N}]+"),
                      "single digits"),
    "no contractions": (findall(r"\p{L}+|\p{N}|[^\s\p{L}\p{N}]+"), "contractions are missing"),
    "contractions last": (findall(r"\p{L}+|\p{N}|[^\s\p{L}\p{N}]+|'s|'t|'re|'ve|'m|'ll|'d"),
                          "put 's 't 're"),
    "word characters": (findall(r"'s|'t|'re|'ve|'m|'ll|'d|\w+|[^\w\s]+"), "underscore"),
    "GPT-2's pattern": (
        findall(r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"),
        "GPT-2"),
}


def merge_first_only(symbols, pair):
    for i in range(len(symbols) - 1):
        if (symbols[i], symbols[i + 1]) == pair:
            return [*symbols[:i], pair[0] + pair[1], *symbols[i + 2:]]
    return list(symbols)


def merge_from_the_right(symbols, pair):
    merged, i = [], len(symbols) - 1
    while i >= 0:
        if i > 0 and (symbols[i - 1], symbols[i]) == pair:
            merged.insert(0, pair[0] + pair[1])
            i -= 2
        else:
            merged.insert(0, symbols[i])
            i -= 1
    return merged


def merge_without_bounds(symbols, pair):
    merged, i = [], 0
    while i < len(symbols):
        if symbols[i] == pair[0] and symbols[i + 1] == pair[1]:
            merged.append(pair[0] + pair[1])
            i += 2
        else:
            merged.append(symbols[i])
            i += 1
    return merged


def merge_in_place(symbols, pair):
    merged = merge_pair(symbols, pair)
    symbols[:] = merged
    return symbols


WRONG_MERGE_PAIR = {
    "first occurrence only": (merge_first_only, "only the first occurrence"),
    "right to left": (merge_from_the_right, "right to left"),
    "string replace": (lambda symbols, pair: " ".join(symbols).replace(
        " ".join(pair), "".join(pair)).split(" "), "boundaries"),
    "no bounds check": (merge_without_bounds, "IndexError"),
    "changes its argument": (merge_in_place, "changed its argument"),
}


def bpe_with(choose, start=word_to_symbols, repeat=True):
    def wrong(word, merge_rank):
        symbols = start(word)
        while True:
            candidates = [pair for pair in pairwise(symbols) if pair in merge_rank]
            if not candidates:
                return symbols
            symbols = merge_pair(symbols, choose(candidates, merge_rank))
            if not repeat:
                return symbols
    return wrong


def lowest(candidates, merge_rank):
    return min(candidates, key=merge_rank.get)


def bpe_without_loop_guard(word, merge_rank):
    symbols = word_to_symbols(word)
    while True:
        pair = min(pairwise(symbols), key=lambda p: merge_rank.get(p, float("inf")))
        if pair not in merge_rank:
            return symbols
        symbols = merge_pair(symbols, pair)


def bpe_initial_pairs(word, merge_rank):
    symbols = word_to_symbols(word)
    for pair in sorted({p for p in pairwise(symbols) if p in merge_rank}, key=merge_rank.get):
        symbols = merge_pair(symbols, pair)
    return symbols


WRONG_BPE = {
    "leftmost first": (bpe_with(lambda candidates, rank: candidates[0]), "leftmost"),
    "highest rank first": (bpe_with(lambda candidates, rank: max(candidates, key=rank.get)),
                           "highest rank"),
    "one merge": (bpe_with(lowest, repeat=False), "too few merges"),
    "initial pairs only": (bpe_initial_pairs, "look again"),
    "no </w>": (bpe_with(lowest, start=lambda word: [BYTE_TO_CHAR[b] for b in word.encode()]),
                "end-of-word"),
    "characters, not bytes": (bpe_with(lowest, start=lambda word: [*word[:-1], word[-1] + "</w>"]),
                              "UTF-8 bytes"),
    "min of no pairs": (bpe_without_loop_guard, "one symbol is left"),
}


def tokenize_with(pad=None, bos=True, eos=True, cut_after=False, mask_from_ids=False,
                  mask_ones=False, always_max_length=False, raise_at_fit=False, never_raise=False,
                  wrap_string=True):
    def wrong(tokenizer, texts, context_length=77, padding="max_length", truncation=True):
        texts = [texts] if isinstance(texts, str) and wrap_string else texts
        rows = []
        for text in texts:
            ids = tokenizer.encode(text)
            too_long = len(ids) + 2 >= context_length if raise_at_fit else len(ids) + 2 > context_length
            if too_long and not truncation and not never_raise:
                raise ValueError("too long")
            if not cut_after:
                ids = ids[:context_length - bos - eos]
            row = [tokenizer.bos_token_id] * bos + ids + [tokenizer.eos_token_id] * eos
            rows.append(row[:context_length])
        length = (context_length if padding == "max_length" or always_max_length
                  else max(map(len, rows)))
        filler = tokenizer.pad_token_id if pad is None else pad
        input_ids = torch.tensor([row + [filler] * (length - len(row)) for row in rows])
        mask = torch.tensor([[1] * len(row) + [0] * (length - len(row)) for row in rows])
        if mask_from_ids:
            mask = (input_ids != tokenizer.pad_token_id).long()
        if mask_ones:
            mask = torch.ones_like(mask)
        return {"input_ids": input_ids, "attention_mask": mask}
    return wrong


def ids_as(dtype):
    def wrong(*args, **kwargs):
        batch = tokenize(*args, **kwargs)
        return {**batch, "input_ids": batch["input_ids"].to(dtype)}
    return wrong


WRONG_TOKENIZE = {
    "pads with 0": (tokenize_with(pad=0), "pad_token_id"),
    "pads with <|endoftext|>": (tokenize_with(pad=49407), "pad with tokenizer.pad_token_id"),
    "no special tokens": (tokenize_with(bos=False, eos=False), "<|startoftext|>"),
    "no <|startoftext|>": (tokenize_with(bos=False), "<|startoftext|>"),
    "cut after the special tokens": (tokenize_with(cut_after=True), "drops <|endoftext|>"),
    "mask from the ids": (tokenize_with(mask_from_ids=True), "computed from the ids"),
    "mask all ones": (tokenize_with(mask_ones=True), "1 everywhere"),
    "padding='longest' ignored": (tokenize_with(always_max_length=True), "was not followed"),
    "string not wrapped": (tokenize_with(wrap_string=False), "batch of one"),
    "off by one": (tokenize_with(raise_at_fit=True), "fit exactly"),
    "truncation=False ignored": (tokenize_with(never_raise=True), "must raise ValueError"),
    "lists, not tensors": (lambda *args, **kwargs: {key: value.tolist() for key, value in
                                                    tokenize(*args, **kwargs).items()},
                           "got a list"),
    "int32 ids, as clip.tokenize": (ids_as(torch.int32), "is a torch.int32 tensor of shape (3, 77)"),
    "float ids": (ids_as(torch.float32), "of dtype torch.long"),
}


def learn_with(weighted=True, update=True, start=word_to_symbols, stop_early=0):
    def wrong(word_counts, n_tokens):
        words = {word: start(word) for word in word_counts}
        merges = []
        while len(merges) < n_tokens - stop_early:
            counts = Counter()
            for word, symbols in words.items():
                for pair in pairwise(symbols):
                    counts[pair] += word_counts[word] if weighted else 1
            if not counts:
                break
            best = counts.most_common(1)[0][0]
            merges.append(best)
            if update:
                words = {word: merge_pair(symbols, best) for word, symbols in words.items()}
        return merges
    return wrong


def learn_past_the_end(word_counts, n_tokens):
    merges = learn_merges(word_counts, n_tokens)
    return merges + [("x", "y")] * (len(merges) == n_tokens)


WRONG_LEARN_MERGES = {
    "counts ignored": (learn_with(weighted=False), "weigh the pairs"),
    "words not updated": (learn_with(update=False), "apply it (merge_pair)"),
    "no </w>": (learn_with(start=lambda word: list(word)), "carries '</w>'"),
    "</w> apart": (learn_with(start=lambda word: [*word, "</w>"]), "not a symbol of its own"),
    "stops one early": (learn_with(stop_early=1), "stop only when"),
    "one too many": (learn_past_the_end, "stop after n_tokens"),
    "past the last pair": (lambda word_counts, n_tokens: learn_merges(word_counts, n_tokens)
                           + [("a", "b</w>")] * (n_tokens == 50), "no pair is left"),
    "a set": (lambda word_counts, n_tokens: set(learn_merges(word_counts, n_tokens)),
              "return a list"),
}

WRONG_ANSWERS = [
    (checks.check_bytes_to_unicode, WRONG_BYTES_TO_UNICODE),
    (checks.check_split_words, WRONG_SPLIT_WORDS),
    (checks.check_merge_pair, WRONG_MERGE_PAIR),
    (checks.check_bpe, WRONG_BPE),
    (checks.check_tokenize, WRONG_TOKENIZE),
    (checks.check_learn_merges, WRONG_LEARN_MERGES),
]


test_reference_passes_with_one_line, test_wrong_answer_fails_and_says_why = reference_and_wrong_answer_tests(
    REFERENCES, WRONG_ANSWERS)


def test_failure_names_the_case_the_item_and_both_values():
    with pytest.raises(checks.CheckFailed) as failure:
        checks.check_merge_pair(merge_first_only)
    assert str(failure.value).startswith(
        "merge_pair: merge_pair(['ab', 'a', 'b', 'c', 'a', 'b', 'd</w>'], ('a', 'b')): item 3 is 'a', "
        "expected 'ab'")


def test_learn_merges_accepts_any_most_frequent_pair_in_a_tie(capsys):
    def last_of_the_tied(word_counts, n_tokens):  # miniclip takes the first pair counted
        return learn_with()(Counter(dict(reversed(word_counts.items()))), n_tokens)

    assert last_of_the_tied(Counter({"ab": 1, "cd": 1}), 1) != learn_merges(
        Counter({"ab": 1, "cd": 1}), 1)
    checks.check_learn_merges(last_of_the_tied)
    assert capsys.readouterr().out.startswith("✓ learn_merges")


def test_unfinished_exercise_prints_a_line_instead_of_raising(capsys):
    def bpe(word, merge_rank):
        raise NotImplementedError("Your code here")

    checks.check_bpe(bpe)
    assert capsys.readouterr().out.startswith("⏳ bpe: not written yet")


@pytest.mark.parametrize("name, check, parameters", [
    ("bpe", checks.check_bpe, ["word", "merge_rank"]),
    ("tokenize", checks.check_tokenize,
     ["tokenizer", "texts", "context_length", "padding", "truncation"]),
])
def test_shown_solution_has_the_exercises_signature_and_passes_its_check(name, check, parameters,
                                                                          capsys):
    checks.show_solution(name)
    namespace = {"pairwise": pairwise, "torch": torch, "Tokenizer": Tokenizer,  # the notebook's
                 "word_to_symbols": word_to_symbols, "merge_pair": merge_pair}  # imports by then
    exec(capsys.readouterr().out, namespace)
    assert list(inspect.signature(namespace[name]).parameters) == parameters
    check(namespace[name])
    assert capsys.readouterr().out.startswith(f"✓ {name}: ")


def test_split_words_solution_shows_miniclips_pattern(capsys):
    checks.show_solution("split_words")
    out = capsys.readouterr().out
    assert out.startswith("# miniclip/checks/ch01_tokenizer.py\ndef split_words(")
    assert WORD.pattern in out


# ---- figures ----------------------------------------------------------------------------


def test_byte_table_figure_shows_every_byte_and_colours_the_shifted_ones():
    fig = plots_tokens.byte_table_figure(BYTE_TO_CHAR)
    ax = fig.axes[0]
    shifted = ax.images[0].get_array()
    assert shifted.shape == (16, 16) and int(shifted.sum()) == 68
    assert shifted[2, 0] and not shifted[4, 1]  # the space is shifted, "A" is not
    assert sorted(text.get_text() for text in ax.texts) == sorted(BYTE_TO_CHAR.values())
    assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()


def test_vocabulary_figure_shades_the_parts_of_clips_vocabulary():
    fig = plots_tokens.vocabulary_figure(clip_tokenizer().encoder)
    ax = fig.axes[0]
    assert "49,408" in ax.get_title()
    labels = [text.get_text() for text in fig.legends[0].get_texts()]
    assert "256 bytes (ids 0–255)" in labels and "48,894 merges (ids 512–49405)" in labels
    length = ax.get_lines()[-1].get_ydata()
    assert length[0] == 1 and length[-1] > 5  # bytes are one character; late merges are words
    assert fig.axes[1].get_ylabel() == "tokens ending a word (%)"


def test_merge_steps_figure_draws_one_row_per_step():
    symbols, steps = word_to_symbols("cat"), []
    steps.append((symbols, None))
    for pair in [("a", "t</w>"), ("c", "at</w>")]:
        symbols = merge_pair(symbols, pair)
        steps.append((symbols, pair))
    fig = plots_tokens.merge_steps_figure(steps, {("a", "t</w>"): 3, ("c", "at</w>"): 7}, "cat")
    ax = fig.axes[0]
    assert len(ax.patches) == 3 + 2 + 1  # boxes per row: c a t, c at, cat
    notes = [text.get_text() for text in ax.texts if text.get_text().startswith("rank")]
    assert notes == ["rank     3: 'a' + 't</w>'", "rank     7: 'c' + 'at</w>'"]
    assert ax.get_title() == "cat" and ax.get_ylabel() == "merge step"


def test_batch_figure_labels_tokens_and_shows_the_mask():
    tokenizer = clip_tokenizer()
    batch = tokenizer(["a red circle", "a dog"], padding="longest")
    labels = [["<sot>", "a", "red", "circle", "<eot>"], ["<sot>", "a", "dog", "<eot>", "<pad>"]]
    fig = plots_tokens.batch_figure(batch["input_ids"], batch["attention_mask"], labels,
                                    (tokenizer.bos_token_id, tokenizer.eos_token_id), "batch")
    left, right = fig.axes
    kinds = left.images[0].get_array()
    assert kinds[1].tolist() == [1, 0, 0, 2, 3]  # start, word, word, end, padding
    assert (right.images[0].get_array() == batch["attention_mask"].numpy()).all()
    assert "<pad>\n49407" in [text.get_text() for text in left.texts]
    assert fig.get_suptitle() == "batch"


def test_token_count_and_compression_figures_have_labels():
    fig = plots_tokens.token_count_figure([5, 9, 9, 12], 77, "counts")
    ax = fig.axes[0]
    assert sum(patch.get_height() for patch in ax.patches) == 4
    assert ax.get_xlabel().startswith("tokens per caption") and ax.get_ylabel() == "captions"
    fig = plots_tokens.compression_figure([0, 10, 20], [30.0, 20.0, 12.0], 10.0, "compression")
    ax = fig.axes[0]
    assert list(ax.get_lines()[0].get_ydata()) == [30.0, 20.0, 12.0]
    assert ax.get_title() == "compression" and "merges" in ax.get_xlabel()
