"""CLIP's tokenizer: lower-cased byte-level byte pair encoding, written from scratch.

Chapter 01 ("Text to tokens") builds this file. It follows OpenAI's
`clip/simple_tokenizer.py` and the CLIP paper (Radford et al., 2021, section 2.4: "a
lower-cased byte pair encoding (BPE) representation of the text with a 49,152 vocab
size ... bracketed with [SOS] and [EOS] tokens"); BPE is Sennrich et al. (2016), made
byte-level as in GPT-2. Its ids equal those of `transformers.CLIPTokenizer`.

Text becomes ids in four steps:
1. clean: Unicode NFC, lowercase;
2. split into words: contractions, runs of letters, single digits, runs of other symbols;
   whitespace only separates words and is dropped (so the whitespace clean-up that
   transformers and OpenAI do first changes no word, and is left out here);
3. write each word's UTF-8 bytes as printable characters and mark its last one `</w>`;
4. merge adjacent pairs, the pair learnt earliest first (cached per word).

Choices:
- Cleaning. The default, `clean="transformers"`, is what transformers v5 does (its Rust
  normaliser lowercases one character at a time, so a word-final "Σ" becomes "σ", not
  Python's "ς"). `clean="openai"` is OpenAI's original, `ftfy.fix_text` and
  `html.unescape` twice before lowercasing: it repairs mojibake ("cafÃ©") and HTML
  entities ("&amp;"), also straightens curly quotes and expands ligatures, and needs
  `pip install ftfy`. On plain ASCII text both give the same ids. (OpenAI's word regex
  is case-insensitive, which makes one combining mark, U+0345, a letter; ours is not.)
- Padding. `pad_token_id` defaults to `<|endoftext|>`, as transformers' CLIPTokenizer does;
  OpenAI's `clip.tokenize` pads with 0. CLIP's text encoder is causal and reads its
  output at the first `<|endoftext|>`, so the padding id does not change its features.
- Unicode. Character tables come from Python's `unicodedata` and the `regex` package,
  transformers' from Rust. They agree on every character that Python's Unicode version
  (14.0 in Python 3.11) knows; newer characters may be lowercased or split differently.
"""

from __future__ import annotations

import gzip
import html
import json
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from itertools import pairwise
from pathlib import Path

import regex
import torch

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
OPENAI_BPE_FILE = DATA_DIR / "bpe_simple_vocab_16e6.txt.gz"
BASE_TOKENS = 2 * 256 + 2  # every byte, every byte ending a word (`</w>`), 2 special tokens
OPENAI_MERGES = 48_894  # 514 base tokens + 48,894 merges = CLIP's 49,408 tokens

START_OF_TEXT = "<|startoftext|>"
END_OF_TEXT = "<|endoftext|>"
END_OF_WORD = "</w>"
NO_LENGTH_LIMIT = int(1e30)  # what transformers writes as model_max_length when there is none

# Contractions, runs of letters, single digits, runs of anything but letters, digits, space.
WORD = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+""")
# split() with a group returns text, special token, text, special token, ..., text.
SPECIAL_TOKEN = regex.compile(f"({regex.escape(START_OF_TEXT)}|{regex.escape(END_OF_TEXT)})")


def bytes_to_unicode() -> dict[int, str]:
    """Map each of the 256 byte values to a printable character.

    Printable bytes stand for themselves; the 68 others (space, control characters, ...)
    get chr(256), chr(257), ... in order. So any text is a string of visible characters
    and `vocab.json` stays readable: a space is "Ġ".
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]
    others = [b for b in range(256) if b not in printable]
    characters = [chr(b) for b in printable] + [chr(256 + i) for i in range(len(others))]
    return dict(zip(printable + others, characters))


BYTE_TO_CHAR = bytes_to_unicode()
CHAR_TO_BYTE = {c: b for b, c in BYTE_TO_CHAR.items()}


def clean_like_transformers(text: str) -> str:
    """Unicode NFC, then lowercase, as transformers' normaliser does."""
    text = unicodedata.normalize("NFC", text)
    return text.replace("Σ", "σ").lower()  # Rust lowercases "Σ" to "σ" even at a word's end


def clean_like_openai(text: str) -> str:
    """OpenAI's cleaning: fix mojibake (ftfy, which also does NFC), HTML entities; lowercase."""
    try:
        import ftfy
    except ImportError as error:
        raise ImportError("clean='openai' needs ftfy: pip install ftfy") from error
    return html.unescape(html.unescape(ftfy.fix_text(text))).lower()


CLEANERS = {"transformers": clean_like_transformers, "openai": clean_like_openai}


def merge_pair(symbols: list[str], pair: tuple[str, str]) -> list[str]:
    """Replace each occurrence of `pair` in `symbols`, left to right, by its concatenation."""
    merged, i = [], 0
    while i < len(symbols):
        if symbols[i] == pair[0] and i + 1 < len(symbols) and symbols[i + 1] == pair[1]:
            merged.append(pair[0] + pair[1])
            i += 2
        else:
            merged.append(symbols[i])
            i += 1
    return merged


def word_to_symbols(word: str) -> list[str]:
    """A word's UTF-8 bytes as printable characters, the last one marked `</w>`."""
    symbols = [BYTE_TO_CHAR[b] for b in word.encode("utf-8")]
    symbols[-1] += END_OF_WORD
    return symbols


def vocabulary(merges: Sequence[tuple[str, str]]) -> dict[str, int]:
    """CLIP's token order: 256 bytes, the same with `</w>`, one per merge, the 2 special."""
    characters = list(BYTE_TO_CHAR.values())
    tokens = [*characters, *(c + END_OF_WORD for c in characters),
              *("".join(pair) for pair in merges), START_OF_TEXT, END_OF_TEXT]
    return {token: i for i, token in enumerate(dict.fromkeys(tokens))}  # made twice: first id


def learn_merges(word_counts: Counter[str], n_tokens: int) -> list[tuple[str, str]]:
    """BPE training: merge the most frequent adjacent pair until `n_tokens` new tokens exist.

    Only the words that contain the chosen pair are re-counted after a merge.
    """
    words = [word_to_symbols(word) for word in word_counts]
    counts = list(word_counts.values())
    pair_counts: Counter[tuple[str, str]] = Counter()
    words_with: defaultdict[tuple[str, str], set[int]] = defaultdict(set)
    for i, symbols in enumerate(words):
        for pair in pairwise(symbols):
            pair_counts[pair] += counts[i]
            words_with[pair].add(i)
    merges: list[tuple[str, str]] = []
    new_tokens: set[str] = set()
    while len(new_tokens) < n_tokens and pair_counts:
        best, _ = pair_counts.most_common(1)[0]  # ties: the pair counted first
        merges.append(best)
        new_tokens.add("".join(best))
        for i in words_with.pop(best):
            for pair in pairwise(words[i]):
                pair_counts[pair] -= counts[i]
            words[i] = merge_pair(words[i], best)
            for pair in pairwise(words[i]):
                pair_counts[pair] += counts[i]
                words_with[pair].add(i)
        pair_counts = +pair_counts  # forget the pairs that no longer occur
    return merges


def bpe(word: str, merge_rank: dict[tuple[str, str], int]) -> list[str]:
    """A word as vocabulary tokens: merge adjacent pairs, the lowest-ranked merge first."""
    symbols = word_to_symbols(word)
    while len(symbols) > 1:
        pair = min(pairwise(symbols), key=lambda p: merge_rank.get(p, float("inf")))
        if pair not in merge_rank:
            break
        symbols = merge_pair(symbols, pair)
    return symbols


def tokenize(tokenizer: Tokenizer, texts: str | list[str], context_length: int = 77,
             padding: str = "max_length", truncation: bool = True) -> dict[str, torch.Tensor]:
    """What `tokenizer(texts, ...)` returns: `input_ids` and `attention_mask`, both (B, L).

    Each row is `<|startoftext|>`, the text's ids, `<|endoftext|>`, then padding;
    padding="max_length" pads to context_length, "longest" to the longest row. The mask is
    1 on tokens, 0 on padding.
    """
    if padding not in ("max_length", "longest"):
        raise ValueError(f"padding must be 'max_length' or 'longest', not {padding!r}")
    texts = [texts] if isinstance(texts, str) else texts
    rows = []
    for text in texts:
        ids = tokenizer.encode(text)
        if len(ids) + 2 > context_length:
            if not truncation:
                preview = text if len(text) <= 60 else text[:57] + "..."
                raise ValueError(f"text {preview!r} has {len(ids)} tokens, {len(ids) + 2} with "
                                 f"<|startoftext|> and <|endoftext|>, more than context_length="
                                 f"{context_length}; pass truncation=True to cut it")
            ids = ids[:context_length - 2]  # the row still ends with <|endoftext|>
        rows.append([tokenizer.bos_token_id, *ids, tokenizer.eos_token_id])
    length = context_length if padding == "max_length" else max(map(len, rows), default=0)
    input_ids = [row + [tokenizer.pad_token_id] * (length - len(row)) for row in rows]
    attention_mask = [[1] * len(row) + [0] * (length - len(row)) for row in rows]
    shape = (len(rows), length)  # (B, L), also for an empty batch
    return {"input_ids": torch.tensor(input_ids, dtype=torch.long).view(shape),
            "attention_mask": torch.tensor(attention_mask, dtype=torch.long).view(shape)}


class Tokenizer:
    """Text to CLIP token ids and back; `tokenizer(texts)` gives padded model inputs."""

    def __init__(self, vocab: dict[str, int], merges: Sequence[tuple[str, str]],
                 context_length: int = 77, pad_token_id: int | None = None,
                 clean: str = "transformers") -> None:
        if clean not in CLEANERS:
            raise ValueError(f"clean must be one of {list(CLEANERS)}, not {clean!r}")
        self.encoder = dict(vocab)
        self.decoder = {i: token for token, i in vocab.items()}
        self.merges = [tuple(pair) for pair in merges]
        self.merge_rank = {pair: rank for rank, pair in enumerate(self.merges)}
        self.bos_token_id = vocab[START_OF_TEXT]
        self.eos_token_id = vocab[END_OF_TEXT]
        self.pad_token_id = self.eos_token_id if pad_token_id is None else pad_token_id
        self.context_length = context_length
        self.clean = CLEANERS[clean]
        self.cache: dict[str, list[int]] = {}  # word -> ids, grows with each new word

    @property
    def vocab_size(self) -> int:
        return len(self.encoder)

    @property
    def sot_token_id(self) -> int:
        """OpenAI's name for `bos_token_id`."""
        return self.bos_token_id

    # ---- building one ----------------------------------------------------------------

    @classmethod
    def from_openai(cls, **kwargs) -> Tokenizer:
        """CLIP's own vocabulary; kwargs go to Tokenizer (context_length, pad_token_id, clean)."""
        if not OPENAI_BPE_FILE.exists():
            raise FileNotFoundError(f"CLIP's BPE merges are missing: expected {OPENAI_BPE_FILE}")
        with gzip.open(OPENAI_BPE_FILE, "rt", encoding="utf-8") as file:
            lines = file.read().split("\n")[1:1 + OPENAI_MERGES]  # line 0 is a header
        merges = [tuple(line.split()) for line in lines]
        return cls(vocabulary(merges), merges, **kwargs)

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int, **kwargs) -> Tokenizer:
        """Learn a vocabulary of up to `vocab_size` tokens (the 514 base ones included) from texts.

        It is smaller when the texts run out of merges first: once every word is a single
        token there is nothing left to merge (`tokenizer.vocab_size` tells the size reached).
        """
        if vocab_size < BASE_TOKENS:
            raise ValueError(f"vocab_size must be at least {BASE_TOKENS}, not {vocab_size}")
        clean = CLEANERS[kwargs.get("clean", "transformers")]
        word_counts = Counter(word for text in texts for word in WORD.findall(clean(text)))
        merges = learn_merges(word_counts, vocab_size - BASE_TOKENS)
        return cls(vocabulary(merges), merges, **kwargs)

    @classmethod
    def from_pretrained(cls, directory: str | Path, **kwargs) -> Tokenizer:
        """Load a directory written by `save_pretrained`, or by transformers (tokenizer.json)."""
        directory = Path(directory)
        if (directory / "vocab.json").exists():
            vocab = json.loads((directory / "vocab.json").read_text(encoding="utf-8"))
            lines = (directory / "merges.txt").read_text(encoding="utf-8").splitlines()
            lines = lines[1:] if lines and lines[0].startswith("#version") else lines
            merges = [tuple(line.split()) for line in lines if line]
        else:
            model = json.loads((directory / "tokenizer.json").read_text(encoding="utf-8"))["model"]
            vocab = model["vocab"]
            merges = [tuple(m.split() if isinstance(m, str) else m) for m in model["merges"]]
        config_file = directory / "tokenizer_config.json"
        config = json.loads(config_file.read_text(encoding="utf-8")) if config_file.exists() else {}
        pad_token = config.get("pad_token")
        if isinstance(pad_token, dict):  # older configs store AddedToken fields
            pad_token = pad_token["content"]
        if pad_token is not None:
            kwargs.setdefault("pad_token_id", vocab[pad_token])
        if config.get("model_max_length", NO_LENGTH_LIMIT) < NO_LENGTH_LIMIT:
            kwargs.setdefault("context_length", config["model_max_length"])
        return cls(vocab, merges, **kwargs)

    def save_pretrained(self, directory: str | Path) -> None:
        """Write vocab.json, merges.txt and tokenizer_config.json for CLIPTokenizer.from_pretrained.

        transformers always cleans like `clean="transformers"`.
        """
        if self.pad_token_id not in (self.bos_token_id, self.eos_token_id):
            raise ValueError("transformers would treat the padding token as special and split "
                             "it out of texts; save only with a special token as padding")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        vocab = json.dumps(self.encoder, ensure_ascii=False)
        (directory / "vocab.json").write_text(vocab, encoding="utf-8")
        merges = "".join(f"{first} {second}\n" for first, second in self.merges)
        (directory / "merges.txt").write_text("#version: 0.2\n" + merges, encoding="utf-8")
        config = {"tokenizer_class": "CLIPTokenizer", "model_max_length": self.context_length,
                  "bos_token": START_OF_TEXT, "eos_token": END_OF_TEXT, "unk_token": END_OF_TEXT,
                  "pad_token": self.decoder[self.pad_token_id]}
        (directory / "tokenizer_config.json").write_text(json.dumps(config, indent=2))

    # ---- text to ids -----------------------------------------------------------------

    def words(self, text: str) -> list[str]:
        """Clean a text and split it into the words that BPE sees."""
        return WORD.findall(self.clean(text))

    def bpe(self, word: str) -> list[str]:
        return bpe(word, self.merge_rank)

    def encode_word(self, word: str) -> list[int]:
        ids = self.cache.get(word)
        if ids is None:
            ids = self.cache[word] = [self.encoder[token] for token in self.bpe(word)]
        return ids

    def encode(self, text: str) -> list[int]:
        """Token ids of a text, without `<|startoftext|>`/`<|endoftext|>` around it.

        Special tokens written in the text become their ids, as in transformers.
        """
        ids: list[int] = []
        for i, part in enumerate(SPECIAL_TOKEN.split(text)):
            if i % 2:
                ids.append(self.encoder[part])
            else:
                for word in self.words(part):
                    ids.extend(self.encode_word(word))
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        """Text of token ids, special tokens left out: each `</w>` becomes a space.

        So decode(encode(text)) == " ".join(words(text)): "A dog's toy!" -> "a dog 's toy !".
        """
        data = bytearray()
        for i in map(int, ids):
            if i in (self.bos_token_id, self.eos_token_id):
                continue
            token = self.decoder[i]
            word = token.removesuffix(END_OF_WORD)
            data += bytes(CHAR_TO_BYTE[c] for c in word)
            if word != token:
                data += b" "
        return data.decode("utf-8", errors="replace").removesuffix(" ")

    # ---- batches for the model -------------------------------------------------------

    def __call__(self, texts: str | Sequence[str], context_length: int | None = None,
                 padding: str = "max_length", truncation: bool = True) -> dict[str, torch.Tensor]:
        """`tokenize(self, texts, ...)`; context_length defaults to the tokenizer's."""
        return tokenize(self, texts, context_length or self.context_length, padding, truncation)
