"""miniclip's tokenizer gives transformers.CLIPTokenizer's ids, for CLIP's and a trained vocabulary.

transformers loads the files that save_pretrained writes to a temporary directory; nothing is
downloaded.
"""

import random
import re
import unicodedata
from collections import Counter
from itertools import pairwise

import pytest
import torch
from transformers import CLIPTokenizer

import miniclip.tokenizer as tokenizer_module
from miniclip.tokenizer import BYTE_TO_CHAR, Tokenizer, learn_merges, merge_pair, word_to_symbols

SUBJECTS = ["dog", "cat", "man", "woman", "child", "bicycle", "red car", "pizza", "giraffe",
            "group of people", "train", "laptop", "surfer", "bowl of soup", "skateboarder"]
ACTIONS = ["sitting on", "running through", "standing next to", "jumping over", "parked near",
           "lying in", "looking at", "riding", "eating", "holding"]
PLACES = ["the beach", "a grassy field", "the kitchen counter", "a busy street", "the snow",
          "an old wooden bench", "the station", "a table", "the ocean waves", "downtown Tokyo"]
MULTILINGUAL = ["Un chat noir sur le canapé", "Ein Hund läuft über die Straße",
                "Крошечный котёнок", "ΟΔΟΣ ΣΤΗΝ ΑΘΗΝΑ", "東京の夜景と富士山", "一只猫坐在桌子上",
                "한국어 문장입니다", "ภาษาไทยสวยงาม", "हिन्दी में एक वाक्य", "العربية جميلة",
                "עברית קשה", "Straße ẞ groß", "İstanbul'da IŞIK", "naïve façade crème brûlée",
                "e\u0301te\u0301"]
EMOJI = ["🐶", "😀", "👍🏽", "🇫🇷", "👨‍👩‍👧‍👦", "❤️", "🍕🍕🍕", "☕", "🎉✨", "🤷‍♀️"]
WHITESPACE = [" ", "  ", "\t", "\n", "\r\n", "\u00a0", "\u3000", "\u2009", " \t \n ", "\x0b\x0c"]
EDGE_CASES = [
    "", " ", "\t\n ", "a", "A", "!", "a" * 300, "ab" * 200, " ".join(["word"] * 200),
    "don't DON'T o'clock rock'n'roll ''s 'S I'M we'LL you've they're she'd",
    "<|startoftext|>", "<|endoftext|>", "a<|endoftext|>b", "<<|endoftext|>>", "<|ENDOFTEXT|>",
    "http://example.com/a_b?c=1&d=2", "#hashtag @user C++ & C#", "$4.99 50% 12:30pm 1,000,000",
    "3.14159 -273.15 1e-9 0x1F", "ⅫⅣ ² ½ ٣٤ ௰", "ﬁ ﬂ K Å Ω", "ǅungla ǈ", "ﾊﾝｶｸ ｶﾀｶﾅ",
    "zero\u200bwidth", "soft\u00adhyphen", "\x00\x01\x1c\x1d\x7f", "cafÃ© mojibake",
    "&amp; &lt;b&gt;",
    "\ue000 private", "a\u0301\u0301\u0301", "ΣΑΣ σας Σ",
]


def caption(rng: random.Random) -> str:
    text = (f"{rng.choice(['a', 'the', 'two', 'A', 'some'])} {rng.choice(SUBJECTS)} "
            f"{rng.choice(ACTIONS)} {rng.choice(PLACES)}")
    text = rng.choice([str.lower, str.upper, str.title, str.capitalize])(text)
    return text + rng.choice(["", ".", "!", "?!", "...", " .", ",", ":)"])


def numbers(rng: random.Random) -> str:
    year, month, day = rng.randint(1900, 2030), rng.randint(1, 12), rng.randint(1, 28)
    return rng.choice([f"{rng.randint(0, 10 ** rng.randint(1, 9))} {rng.choice(SUBJECTS)}",
                       f"{year}-{month:02d}-{day:02d}", f"{rng.uniform(0, 1000):.{day % 5}f}kg",
                       f"room {rng.randint(1, 999)}B"])


def contractions(rng: random.Random) -> str:
    words = ["it's", "don't", "they're", "I'M", "we'll", "she'd", "you've", "can't", "'tis"]
    return " ".join(rng.choices(words, k=rng.randint(1, 6)))


def multilingual(rng: random.Random) -> str:
    return rng.choice(MULTILINGUAL) + rng.choice(["", " ", ", "]) + rng.choice(MULTILINGUAL)


def with_emoji(rng: random.Random) -> str:
    words = caption(rng).split()
    words.insert(rng.randint(0, len(words)), rng.choice(EMOJI))
    return rng.choice(["", " "]).join(words) if rng.random() < 0.2 else " ".join(words)


def messy_whitespace(rng: random.Random) -> str:
    words = caption(rng).split()
    return "".join(rng.choice(WHITESPACE) + word for word in words) + rng.choice(WHITESPACE)


def random_characters(rng: random.Random) -> str:
    blocks = [(0x20, 0x7E), (0xA0, 0x24F), (0x300, 0x36F), (0x370, 0x52F), (0x2000, 0x2BFF),
              (0x3000, 0x30FF), (0x4E00, 0x4FFF), (0xAC00, 0xAD00), (0x1F300, 0x1F6FF), (0, 0x1F)]
    characters = []
    while len(characters) < rng.randint(1, 30):
        low, high = rng.choice(blocks)
        character = chr(rng.randint(low, high))
        if unicodedata.category(character) != "Cn":
            characters.append(character)
    return "".join(characters)


def long_caption(rng: random.Random) -> str:
    return " and ".join(caption(rng) for _ in range(rng.randint(5, 30)))


MAKERS = [caption, caption, numbers, contractions, multilingual, with_emoji, messy_whitespace,
          random_characters, long_caption]


def build_corpus(n: int = 4000, seed: int = 0) -> list[str]:
    """EDGE_CASES, then `n` texts drawn from MAKERS; every tenth glues two texts together."""
    rng = random.Random(seed)
    texts = [rng.choice(MAKERS)(rng) for _ in range(n)]
    texts = [text + rng.choice(texts) if i % 10 == 0 else text for i, text in enumerate(texts)]
    return EDGE_CASES + texts


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    return build_corpus()


@pytest.fixture(scope="module")
def openai() -> Tokenizer:
    return Tokenizer.from_openai()


@pytest.fixture(scope="module")
def hf_openai(openai: Tokenizer, tmp_path_factory: pytest.TempPathFactory) -> CLIPTokenizer:
    directory = tmp_path_factory.mktemp("openai")
    openai.save_pretrained(directory)
    return CLIPTokenizer.from_pretrained(directory)


@pytest.fixture(scope="module")
def trained(corpus: list[str]) -> Tokenizer:
    return Tokenizer.train(corpus[:3000], vocab_size=1000, context_length=32)


def assert_same_ids(ours: Tokenizer, theirs: CLIPTokenizer, texts: list[str]) -> None:
    expected = theirs(texts, add_special_tokens=False)["input_ids"]
    for text, ids in zip(texts, expected):
        assert ours.encode(text) == ids, f"different ids for {text!r}"


def test_openai_vocabulary(openai: Tokenizer) -> None:
    assert (openai.vocab_size, len(openai.merges)) == (49_408, 48_894)
    assert (openai.bos_token_id, openai.sot_token_id, openai.eos_token_id) == (49406, 49406, 49407)
    assert openai.encode("a photo of a cat") == [320, 1125, 539, 320, 2368]  # OpenAI's ids


def test_special_token_ids_equal_transformers(openai: Tokenizer, hf_openai: CLIPTokenizer) -> None:
    assert openai.bos_token_id == hf_openai.bos_token_id
    assert openai.eos_token_id == hf_openai.eos_token_id
    assert openai.pad_token_id == hf_openai.pad_token_id == 49407  # padding is <|endoftext|>


def test_ids_equal_transformers(openai: Tokenizer, hf_openai: CLIPTokenizer,
                                corpus: list[str]) -> None:
    assert_same_ids(openai, hf_openai, corpus)


@pytest.mark.parametrize("padding", ["max_length", "longest"])
def test_batch_equals_transformers(openai: Tokenizer, hf_openai: CLIPTokenizer, corpus: list[str],
                                   padding: str) -> None:
    batch = corpus[:200]
    ours = openai(batch, padding=padding)
    theirs = hf_openai(batch, padding=padding, truncation=True, max_length=77, return_tensors="pt")
    assert torch.equal(ours["input_ids"], theirs["input_ids"])
    assert torch.equal(ours["attention_mask"], theirs["attention_mask"])


def test_every_character_is_cleaned_and_split_like_transformers(openai: Tokenizer,
                                                                hf_openai: CLIPTokenizer) -> None:
    """All characters up to U+3000, one in 16 above, that Python's Unicode tables know."""
    characters = [chr(c) for c in range(0x110000) if (c < 0x3000 or c % 16 == 0)
                  and unicodedata.category(chr(c)) not in ("Cn", "Cs")]
    backend = hf_openai.backend_tokenizer
    for start in range(0, len(characters), 64):
        text = "".join(f"A{c}b{c}1{c}{c}! " for c in characters[start:start + 64])
        normalized = backend.normalizer.normalize_str(text)
        theirs = [word for word, _ in backend.pre_tokenizer.pre_tokenize_str(normalized)]
        ours = ["".join(BYTE_TO_CHAR[b] for b in word.encode()) for word in openai.words(text)]
        assert ours == theirs, f"different words for {text!r}"


def test_decode_gives_the_words_separated_by_spaces(openai: Tokenizer, corpus: list[str]) -> None:
    assert openai.decode(openai.encode("A  Dog's toy,\tRED!")) == "a dog 's toy , red !"
    for text in corpus:
        if "<|" not in text:
            assert openai.decode(openai.encode(text)) == " ".join(openai.words(text))


def test_decode_of_plain_words_is_the_lowercased_text(openai: Tokenizer) -> None:
    text = "  A Photo\tof\n\nTwo DOGS  playing "
    assert openai.decode(openai(text)["input_ids"][0].tolist()) == "a photo of two dogs playing"


def test_trained_vocabulary_gives_transformers_ids(trained: Tokenizer, corpus: list[str],
                                                   tmp_path) -> None:
    assert trained.vocab_size == 1000
    assert (trained.bos_token_id, trained.eos_token_id) == (998, 999)  # special tokens last
    trained.save_pretrained(tmp_path)
    theirs = CLIPTokenizer.from_pretrained(tmp_path)
    assert_same_ids(trained, theirs, corpus)
    batch = corpus[:100]
    expected = theirs(batch, padding="max_length", truncation=True, return_tensors="pt")
    assert torch.equal(trained(batch)["input_ids"], expected["input_ids"])  # context_length 32


def test_each_learnt_merge_is_a_most_frequent_pair(openai: Tokenizer, corpus: list[str]) -> None:
    """Recount every pair from scratch before each merge: the merge learnt has the top count."""
    word_counts = Counter(word for text in corpus[:300] for word in openai.words(text))
    words = {word: word_to_symbols(word) for word in word_counts}
    for merge in learn_merges(word_counts, 100):
        pair_counts = Counter()
        for word, symbols in words.items():
            for pair in pairwise(symbols):
                pair_counts[pair] += word_counts[word]
        assert pair_counts[merge] == max(pair_counts.values())
        words = {word: merge_pair(symbols, merge) for word, symbols in words.items()}


def test_trained_vocabulary_compresses(trained: Tokenizer) -> None:
    text = caption(random.Random(1))
    assert len(trained.encode(text)) < len(text.encode()) / 2


def test_training_stops_when_every_word_is_one_token() -> None:
    small = Tokenizer.train(["a red star", "the red circle"], vocab_size=5000)
    assert small.vocab_size < 5000
    for word in ("a", "red", "star", "the", "circle"):
        assert len(small.encode(word)) == 1


def test_from_pretrained_reads_our_files_and_transformers_files(openai: Tokenizer,
                                                                hf_openai: CLIPTokenizer,
                                                                tmp_path) -> None:
    openai.save_pretrained(tmp_path / "ours")
    hf_openai.save_pretrained(tmp_path / "theirs")  # tokenizer.json and tokenizer_config.json
    for directory in (tmp_path / "ours", tmp_path / "theirs"):
        loaded = Tokenizer.from_pretrained(directory)
        assert loaded.encoder == openai.encoder and loaded.merges == openai.merges
        assert (loaded.pad_token_id, loaded.context_length) == (49407, 77)


def test_truncation_keeps_end_of_text_last(openai: Tokenizer) -> None:
    text = " ".join(["dog"] * 100)
    row = openai(text)["input_ids"][0]
    assert row.shape == (77,)
    assert row[0] == openai.bos_token_id and row[-1] == openai.eos_token_id
    assert row[1:-1].tolist() == openai.encode(text)[:75]
    assert openai(text, context_length=10)["input_ids"][0, -1] == openai.eos_token_id


def test_no_truncation_raises_with_counts_and_text(openai: Tokenizer) -> None:
    text = "a very long caption " + "dog " * 100
    with pytest.raises(ValueError) as error:
        openai(["short", text], truncation=False)
    message = str(error.value)
    assert "104 tokens" in message and "context_length=77" in message
    assert "'a very long caption dog" in message and "..." in message


def test_padding_modes(openai: Tokenizer) -> None:
    batch = openai(["a dog", "a photo of a cat"], padding="longest")
    assert batch["input_ids"].shape == batch["attention_mask"].shape == (2, 7)
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1, 0, 0, 0], [1] * 7]
    assert batch["input_ids"][0, 4:].tolist() == [openai.pad_token_id] * 3
    assert openai("a dog")["input_ids"].shape == (1, 77)
    assert openai([], padding="longest")["input_ids"].shape == (0, 0)
    assert Tokenizer.from_openai(pad_token_id=0)("a dog")["input_ids"][0, 4:].sum() == 0
    with pytest.raises(ValueError, match="padding"):
        openai("a dog", padding=True)


def test_save_refuses_a_padding_token_that_transformers_would_split_out(tmp_path) -> None:
    with pytest.raises(ValueError, match="padding"):
        Tokenizer.from_openai(pad_token_id=0).save_pretrained(tmp_path)  # 0 is "!"


def test_openai_cleaning_fixes_mojibake_and_html(openai: Tokenizer) -> None:
    original = Tokenizer.from_openai(clean="openai")
    assert original.encode("CafÃ© &amp;amp; Bar") == openai.encode("café & bar")
    text = "A Dog,  running on the BEACH!"
    assert original.encode(text) == openai.encode(text)


def test_missing_vocabulary_file_names_the_path(monkeypatch, tmp_path) -> None:
    missing = tmp_path / "bpe_simple_vocab_16e6.txt.gz"
    monkeypatch.setattr(tokenizer_module, "OPENAI_BPE_FILE", missing)
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        Tokenizer.from_openai()
