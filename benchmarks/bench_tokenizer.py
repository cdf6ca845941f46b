"""How fast is miniclip's pure-Python tokenizer next to transformers' Rust CLIPTokenizer?

Both turn the same generated captions into padded (B, 77) `input_ids` and `attention_mask`
tensors, in batches; the script prints captions per second for each, their ratio, and
whether the ids are identical. miniclip starts with an empty word cache.

    python benchmarks/bench_tokenizer.py            # 100,000 captions
    python benchmarks/bench_tokenizer.py --n 10000
"""

import argparse
import random
import tempfile
import time
from functools import cache
from itertools import accumulate

import torch
from transformers import CLIPTokenizer

from miniclip.tokenizer import Tokenizer

SUBJECTS = ["dog", "cat", "man", "woman", "boy", "girl", "child", "baby", "horse", "bird", "car",
            "bus", "train", "bicycle", "motorcycle", "pizza", "sandwich", "cake", "laptop", "phone",
            "giraffe", "elephant", "zebra", "cow", "sheep", "surfer", "skateboarder", "teddy bear",
            "plate of food", "group of people", "couple", "player", "kitchen", "bathroom", "clock"]
ADJECTIVES = ["small", "large", "young", "old", "white", "black", "brown", "red", "blue", "green",
              "yellow", "wooden", "little", "cute", "smiling", "happy", "empty", "busy", "tall",
              "fluffy", "vintage", "modern", "colorful", "snowy", "wet", "shiny"]
ACTIONS = ["sitting on", "standing next to", "walking down", "riding", "holding", "eating",
           "looking at", "lying on", "playing with", "jumping over", "parked in front of",
           "flying over", "crossing", "waiting at", "covered with", "hanging from"]
PLACES = ["the street", "a table", "the beach", "a field", "the grass", "a bench", "the snow",
          "a park", "the water", "a wall", "the sidewalk", "a counter", "the road", "a window",
          "a bed", "the ocean", "the station", "a tree", "the airport", "a city street"]
STYLES = ["a photo of {}", "an image of {}", "{}", "{}.", "close-up of {}", "{}, taken in {year}",
          "stock photo: {} | {n} views", "{} #travel #photography", "A painting of {} by {name}",
          "{} at {name}'s house", "{} (4K, HDR)", "{}!!", "it's {}", "{} on {month} {day}"]
MONTHS = ["January", "March", "June", "July", "October", "December"]
SYLLABLES = ["ka", "lo", "mi", "ra", "ven", "tor", "shi", "ell", "an", "dre", "qui", "zo", "bel"]


@cache
def zipf_cumulative_weights(n: int) -> list[float]:
    return list(accumulate(1 / k for k in range(1, n + 1)))


def zipf_choice(rng: random.Random, items: list[str]) -> str:
    """Pick an item, the k-th one 1/k as often as the first: a few words are most words."""
    return rng.choices(items, cum_weights=zipf_cumulative_weights(len(items)))[0]


def thing(rng: random.Random) -> str:
    """A subject with an adjective and an article: "a small dog", "the old car"."""
    adjective = zipf_choice(rng, ADJECTIVES)
    article = rng.choice(["an" if adjective[0] in "aeiou" else "a", "the", "one"])
    return f"{article} {adjective} {zipf_choice(rng, SUBJECTS)}"


def caption(rng: random.Random, names: list[str]) -> str:
    scene = f"{thing(rng)} {zipf_choice(rng, ACTIONS)} {zipf_choice(rng, PLACES)}"
    if rng.random() < 0.3:
        scene += f" with {thing(rng)}"
    if rng.random() < 0.25:
        scene += f" in {zipf_choice(rng, names)}"
    text = zipf_choice(rng, STYLES).format(
        scene, year=rng.randint(1950, 2024), n=rng.randint(1, 99999), name=zipf_choice(rng, names),
        month=rng.choice(MONTHS), day=rng.randint(1, 28))
    return text.capitalize() if rng.random() < 0.5 else text


def generate_captions(n: int, seed: int = 0) -> list[str]:
    """Template captions over a Zipf-distributed vocabulary plus 5,000 made-up names."""
    rng = random.Random(seed)
    names = sorted({"".join(rng.choices(SYLLABLES, k=rng.randint(2, 4))).title()
                    for _ in range(5000)})
    rng.shuffle(names)
    return [caption(rng, names) for _ in range(n)]


def rate(tokenize, captions: list[str], batch_size: int) -> tuple[float, list[torch.Tensor]]:
    """Captions per second, and the input_ids of every batch."""
    start = time.perf_counter()
    ids = [tokenize(captions[i:i + batch_size])["input_ids"]
           for i in range(0, len(captions), batch_size)]
    return len(captions) / (time.perf_counter() - start), ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="number of captions")
    parser.add_argument("--batch-size", type=int, default=1024)
    args = parser.parse_args()

    captions = generate_captions(args.n)
    ours = Tokenizer.from_openai()
    with tempfile.TemporaryDirectory() as directory:
        ours.save_pretrained(directory)
        theirs = CLIPTokenizer.from_pretrained(directory)

    def hf_tokenize(texts: list[str]) -> dict[str, torch.Tensor]:
        return theirs(texts, padding="max_length", truncation=True, max_length=77,
                      return_tensors="pt")

    hf_rate, hf_ids = rate(hf_tokenize, captions, args.batch_size)
    our_rate, our_ids = rate(ours, captions, args.batch_size)
    same = all(torch.equal(a, b) for a, b in zip(our_ids, hf_ids))
    print(f"{args.n:,} captions, {len(set(captions)):,} distinct, batches of {args.batch_size}; "
          f"miniclip cached {len(ours.cache):,} words")
    print(f"transformers (Rust, batched): {hf_rate:10,.0f} captions/s")
    print(f"miniclip (pure Python):       {our_rate:10,.0f} captions/s")
    print(f"transformers / miniclip:      {hf_rate / our_rate:10.2f}x   identical ids: {same}")


if __name__ == "__main__":
    main()
