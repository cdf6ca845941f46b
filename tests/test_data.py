"""The caption datasets: deterministic splits, held-out data, bad input named, batches."""

import csv
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from miniclip.data import HELD_OUT_PAIRS, Collate, DataError, load_dataset
from miniclip.data import fashion as fashion_module
from miniclip.data.emoji import captions_for
from miniclip.data.preview import show_samples
from miniclip.data.shapes import CLASSNAMES, COLOURS, OPPOSITE, SEEN_PAIRS, Shape, render, rgb
from miniclip.image import ImageProcessor
from miniclip.tokenizer import Tokenizer

# ----- shapes ---------------------------------------------------------------------------------


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image)


def test_shapes_item_is_a_function_of_seed_split_and_index():
    first, again = load_dataset("shapes", length=50), load_dataset("shapes", length=50)
    for i in (49, 3, 0):  # any order of access
        assert np.array_equal(pixels(first[i][0]), pixels(again[i][0]))
        assert first[i][1] == again[i][1]
    other_seed, other_split = load_dataset("shapes", seed=1), load_dataset("shapes", "val")
    assert first[3][1] != other_seed[3][1] and first[3][1] != other_split[3][1]


def test_cached_shapes_equal_drawn_ones():
    drawn, cached = load_dataset("shapes", length=20), load_dataset("shapes", length=20, cache=True)
    for _ in range(2):  # the second pass reads the cache
        for i in (7, 0, 19):
            assert np.array_equal(pixels(drawn[i][0]), pixels(cached[i][0]))
            assert drawn[i][1] == cached[i][1]
    assert sorted(cached.cache) == [0, 7, 19]
    cached[7][1].append("not a caption of item 7")  # what a caller does to its copy stays there
    assert cached[7][1] == drawn[7][1]


def test_shapes_image_size_and_captions():
    images = load_dataset("shapes", image_size=96, length=20)
    for i in range(20):
        image, captions = images[i]
        assert image.size == (96, 96) and image.mode == "RGB"
        assert len(captions) >= 4 and all(isinstance(c, str) and c for c in captions)


def test_held_out_pairs_never_in_training_images_or_captions():
    held_out = re.compile("|".join(f"{colour} {kind}" for colour, kind in HELD_OUT_PAIRS))
    for split in ("train", "val"):
        data = load_dataset("shapes", split, length=1500)
        for i in range(len(data)):
            assert all((s.colour, s.kind) in SEEN_PAIRS for s in data.scene(i))
        for i in range(0, len(data), 5):  # the captions of every fifth scene: the slow half
            assert not any(held_out.search(c) for c in data[i][1]), data[i][1]


def test_shapes_test_split_is_zero_shot_over_all_classes():
    test, seen = (
        load_dataset("shapes", "test", length=200),
        load_dataset("shapes", "test_seen", length=200),
    )
    assert test.classnames == CLASSNAMES and len(CLASSNAMES) == 36
    held_out = {f"{colour} {kind}" for colour, kind in HELD_OUT_PAIRS}
    assert {test.classnames[test.label(i)] for i in range(200)} == held_out
    assert not {seen.classnames[seen.label(i)] for i in range(200)} & held_out
    assert test.classnames[test.label(0)] in test[0][1][1]
    assert all("{}" in template for template in test.templates)
    with pytest.raises(ValueError, match="one-shape split"):
        load_dataset("shapes", "train").label(0)


def test_shapes_are_drawn_in_named_colours_or_in_any_colour_by_code():
    assert rgb("red") == COLOURS["red"]
    assert rgb("#a0c814") == (160, 200, 20)
    for bad in ("pink", "#a0c81", "#a0c8zz"):
        with pytest.raises(ValueError, match=re.escape(repr(bad))):
            rgb(bad)
    shape = Shape("#00ffff", "star", "large", 1, 1)
    image = np.asarray(render(np.random.default_rng(0), [shape], 72)).astype(int)
    centre = image[30:42, 30:42].reshape(-1, 3).mean(axis=0)
    assert centre[0] < 80 and centre[1] > 180 and centre[2] > 180  # cyan, whatever the noise


def test_shapes_backgrounds_change_the_ground_and_nothing_else():
    dark, mixed = (load_dataset("shapes", "train", length=20, background=b) for b in ("dark", "mixed"))
    default = load_dataset("shapes", "train", length=20)
    for i in range(20):
        assert mixed.scene(i) == dark.scene(i) and mixed[i][1] == dark[i][1]
        assert np.array_equal(pixels(default[i][0]), pixels(dark[i][0]))  # dark unless asked
        assert not np.array_equal(pixels(mixed[i][0]), pixels(dark[i][0]))
    grounds = {"dark": [], "mixed": []}
    for seed in range(40):
        for colour in COLOURS:  # one shape in the middle cell; the corners are ground
            shape = Shape(colour, "square", "large", 1, 1)
            for background in grounds:
                image = np.asarray(render(np.random.default_rng(seed), [shape], 72, background))
                image = image.astype(float)
                ground = image[:12, :12].reshape(-1, 3).mean(axis=0)
                inside = image[32:40, 32:40].reshape(-1, 3).mean(axis=0)
                grounds[background].append(ground.mean())
                if background == "dark":  # every shape lighter than its ground in every channel
                    assert (inside > ground + 25).all(), (colour, seed, inside, ground)
    assert max(grounds["dark"]) < 60 and np.mean(grounds["dark"]) < 40
    assert min(grounds["mixed"]) > 25 and max(grounds["mixed"]) > 150  # dark to light
    for bad in ("light", 2, None):
        with pytest.raises(ValueError, match="background"):
            load_dataset("shapes", "train", background=bad)


def test_unknown_data_options_are_named_with_those_that_exist():
    with pytest.raises(ValueError, match=r"shapes has no option 'backgrounds'; its options: .*background"):
        load_dataset("shapes", "train", backgrounds="dark")


def test_relations_captions_are_true_and_contrasts_false():
    data = load_dataset("shapes", "relations", length=100)
    for i in range(100):
        (a, b), relation = data.relation(i)
        assert relation in a.relations_to(b) and OPPOSITE[relation] not in a.relations_to(b)
        assert a.colour != b.colour and a.kind != b.kind
        captions = data[i][1]
        assert captions[0] == f"{article(a.name)} {relation} {article(b.name)}"
        for swap in ("relation", "colours"):
            contrast = data.contrast(i, swap)
            assert contrast != captions[0] and contrast not in captions
    assert data.contrast(0, "colours").split()[2] == data.relation(0)[0][0].kind  # kinds stay put


def article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


# ----- fashion ---------------------------------------------------------------------------------

needs_fashion = pytest.mark.skipif(
    not fashion_module.DEBIAN_DIR.exists(),
    reason="Fashion-MNIST absent: apt-get install dataset-fashion-mnist",
)


@needs_fashion
def test_fashion_official_test_set_with_captions():
    test = load_dataset("fashion", "test")
    assert len(test) == 10_000 and len(test.classnames) == 10 and "ankle boot" in test.classnames
    image, captions = test[0]
    assert image.size == (28, 28) and image.mode == "L"
    assert test.classnames[test.label(0)] in captions[0]
    assert len(set(captions)) >= 6
    assert sorted({test.label(i) for i in range(200)}) == list(range(10))


@needs_fashion
def test_fashion_val_slice_is_seeded_and_disjoint_from_train():
    train, val = (load_dataset("fashion", s, val_size=500) for s in ("train", "val"))
    assert len(train) == 59_500 and len(val) == 500
    assert not set(train.indices) & set(val.indices)
    assert np.array_equal(val.indices, load_dataset("fashion", "val", val_size=500).indices)
    assert not np.array_equal(
        val.indices, load_dataset("fashion", "val", seed=1, val_size=500).indices
    )


def test_fashion_missing_names_the_three_ways(tmp_path):
    with pytest.raises(FileNotFoundError, match="Three ways") as error:
        load_dataset("fashion", root=tmp_path)
    assert "apt-get install dataset-fashion-mnist" in str(error.value)
    assert "root=" in str(error.value) and "download=True" in str(error.value)


def test_fashion_download_keeps_nothing_that_fails_its_checksum(tmp_path, monkeypatch):
    monkeypatch.setattr(
        fashion_module.urllib.request, "urlopen", lambda url, timeout: io.BytesIO(b"junk")
    )
    with pytest.raises(OSError, match="MD5"):
        load_dataset("fashion", root=tmp_path, download=True)
    assert list(tmp_path.iterdir()) == []


def test_fashion_truncated_file_is_named(tmp_path):
    broken = tmp_path / "t10k-labels-idx1-ubyte"
    broken.write_bytes(
        b"\x00\x00\x08\x01\x00\x00\x27\x10" + bytes(10)
    )  # says 10,000 labels, has 10
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte"):
        fashion_module.read_idx(broken)


# ----- emoji ---------------------------------------------------------------------------------


def test_emoji_held_out_split_for_retrieval():
    train, test = load_dataset("emoji", "train"), load_dataset("emoji", "test")
    assert len(test) > 150 and len(train) > 9 * len(test) - 20
    train_names = {train[i][1][0] for i in range(len(train))}
    test_names = {test[i][1][0] for i in range(len(test))}
    assert not train_names & test_names
    assert [test.emoji(i) for i in range(5)] == [
        load_dataset("emoji", "test").emoji(i) for i in range(5)
    ]
    assert test.indices != load_dataset("emoji", "test", seed=1).indices
    image, captions = test[0]
    assert image.size == (48, 48) and image.mode == "RGB"
    assert captions[1].startswith("an emoji of ") and captions[2].endswith(" emoji")


def test_emoji_second_design_adds_training_pictures_only(tmp_path):
    train, test = load_dataset("emoji", "train"), load_dataset("emoji", "test")
    chosen = [train.indices[0], train.indices[-1]]
    for k, index in enumerate(chosen):  # a transparent picture, red in its middle
        picture = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
        picture.paste((255, 0, 0, 255), (16, 16, 48, 48))
        emoji = train.entries[index]["emoji"]
        name = "-".join(f"{ord(c):x}" for c in emoji if k == 0 or c != "\ufe0f")  # with and without U+FE0F
        picture.save(tmp_path / f"{name}.png")
    held_out_name = "-".join(f"{ord(c):x}" for c in test.emoji(0))
    Image.new("RGB", (64, 64)).save(tmp_path / f"{held_out_name}.png")  # a held-out emoji's
    (tmp_path / "notes.txt").write_text("not a picture")
    more = load_dataset("emoji", "train", second_design=str(tmp_path))
    assert len(more) == len(train) + 2
    for k, index in enumerate(chosen):
        image, captions = more[len(train) + k]
        assert captions == train[train.indices.index(index)][1]
        assert more.emoji(len(train) + k) == train.entries[index]["emoji"]
        assert image.size == (48, 48) and image.mode == "RGB"
        assert image.getpixel((0, 0)) == (255, 255, 255) and image.getpixel((24, 24)) == (255, 0, 0)
    assert more[0][1] == train[0][1]
    held_out = load_dataset("emoji", "test", second_design=str(tmp_path))
    assert held_out.indices == test.indices and len(held_out) == len(test)


def test_emoji_second_design_names_a_folder_without_pictures(tmp_path):
    with pytest.raises(FileNotFoundError, match="no folder .*nowhere"):
        load_dataset("emoji", "train", second_design=str(tmp_path / "nowhere"))
    Image.new("RGB", (64, 64)).save(tmp_path / "smiley.png")
    with pytest.raises(ValueError, match=f"no PNG in {re.escape(str(tmp_path))} is named by an emoji"):
        load_dataset("emoji", "train", second_design=str(tmp_path))


@pytest.mark.parametrize(("name", "described"), [
    ("grinning face", "an emoji of a grinning face"),
    ("raised hands", "an emoji of raised hands"),
    ("flag: Italy", "an emoji of the flag of Italy"),
    ("foggy", "an emoji for foggy"),
    ("locked with key", "an emoji for locked with key"),
])
def test_emoji_captions_read_as_english(name, described):
    captions = captions_for(name, ["keyword"])
    assert captions[:2] == [name, described]
    assert captions[3] == "an emoji for keyword"


# ----- folder: fixtures the tests make -----------------------------------------------------------


def save_image(path: Path, mode: str = "RGB", size: tuple[int, int] = (40, 30)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    noise = np.random.default_rng(len(path.name)).integers(
        0, 256, (size[1], size[0], 3), dtype=np.uint8
    )
    Image.fromarray(noise).convert(mode).save(path)


def make_folder(root: Path, broken: bool = False) -> dict[str, list[str]]:
    """Good images a.jpg (JPEG), b.png (grey PNG), c.jpg; with `broken`, also bad ones."""
    save_image(root / "a.jpg")
    save_image(root / "b.png", mode="L")
    save_image(root / "c.jpg", size=(17, 61))
    pairs = {
        "a.jpg": ["a dog runs", "a brown dog"],
        "b.png": ["a grey square"],
        "c.jpg": ["a tall thing"],
    }
    if broken:
        data = (root / "a.jpg").read_bytes()
        (root / "truncated.jpg").write_bytes(data[: len(data) // 2])
        (root / "text.jpg").write_text("not an image")
        pairs |= {
            "truncated.jpg": ["half a picture"],
            "text.jpg": ["words"],
            "missing.jpg": ["nothing"],
        }
    return pairs


def write_csv(path: Path, pairs: dict[str, list[str]], header=("file", "caption")) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(
            (file, caption) for file, captions in pairs.items() for caption in captions
        )


def as_dict(data) -> dict[str, list[str]]:
    return {data.files[i].name: data[k][1] for k, i in enumerate(data.indices)}


def test_folder_csv_keeps_all_captions_of_an_image_together(tmp_path):
    pairs = make_folder(tmp_path)
    write_csv(tmp_path / "captions.csv", pairs)
    data = load_dataset("folder", root=tmp_path, split="all")
    assert as_dict(data) == pairs
    image, _ = data[0]
    assert isinstance(image, Image.Image) and image.size == (40, 30)


def test_folder_jsonl_with_caption_or_captions(tmp_path):
    make_folder(tmp_path)
    lines = [
        {"file": "a.jpg", "captions": ["a dog runs", "a brown dog"]},
        {"image": "b.png", "caption": "a grey square"},
        {"file": "c.jpg", "text": "a tall thing"},
    ]
    (tmp_path / "data.jsonl").write_text("\n".join(map(json.dumps, lines)) + "\n\n")
    data = load_dataset("folder", root=tmp_path, captions="data.jsonl", split="all")
    assert as_dict(data) == {
        "a.jpg": ["a dog runs", "a brown dog"],
        "b.png": ["a grey square"],
        "c.jpg": ["a tall thing"],
    }


@pytest.mark.parametrize("style", ["csv", "tab"])
def test_folder_flickr8k_layout(tmp_path, style):
    pairs = make_folder(tmp_path / "Images")
    if style == "csv":  # the captions.txt of today's Flickr8k downloads
        write_csv(tmp_path / "captions.txt", pairs, header=("image", "caption"))
    else:  # the original Flickr8k.token.txt lines
        lines = [f"{f}#{n}\t{c}" for f, cs in pairs.items() for n, c in enumerate(cs)]
        (tmp_path / "captions.txt").write_text("\n".join(lines) + "\n")
    assert as_dict(load_dataset("folder", root=tmp_path, split="all")) == pairs


def test_folder_coco_layout(tmp_path):
    pairs = make_folder(tmp_path / "val2017")
    images = [{"id": 10 + k, "file_name": f} for k, f in enumerate(pairs)]
    ids = {image["file_name"]: image["id"] for image in images}
    annotations = [
        {"id": n, "image_id": ids[f], "caption": c}
        for n, (f, c) in enumerate((f, c) for f, cs in pairs.items() for c in cs)
    ]
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "captions_val2017.json").write_text(
        json.dumps({"images": images, "annotations": annotations})
    )
    assert as_dict(load_dataset("folder", root=tmp_path, split="all")) == pairs


def test_folder_splits_are_seeded_disjoint_and_complete(tmp_path):
    pairs = {f"{k}.png": [f"picture {k}"] for k in range(20)}
    for file in pairs:
        save_image(tmp_path / file, size=(4, 4))
    write_csv(tmp_path / "captions.csv", pairs)
    splits = {
        s: load_dataset("folder", s, root=tmp_path, val_fraction=0.2, test_fraction=0.25)
        for s in ("train", "val", "test")
    }
    names = {s: set(as_dict(d)) for s, d in splits.items()}
    assert [len(names[s]) for s in ("train", "val", "test")] == [11, 4, 5]
    assert names["train"] | names["val"] | names["test"] == set(pairs)
    again = load_dataset("folder", "test", root=tmp_path, val_fraction=0.2, test_fraction=0.25)
    assert set(as_dict(again)) == names["test"]
    other = load_dataset(
        "folder", "test", seed=1, root=tmp_path, val_fraction=0.2, test_fraction=0.25
    )
    assert set(as_dict(other)) != names["test"]


# ----- folder: bad input -------------------------------------------------------------------


def broken_csv(root: Path) -> Path:
    pairs = make_folder(root, broken=True)
    write_csv(root / "captions.csv", pairs)
    with open(root / "captions.csv", "a") as handle:
        handle.write("b.png,too,many fields\n")  # line 9, after the header and 7 good rows
        handle.write("c.jpg,\n")  # line 10: an empty caption
    return root / "captions.csv"


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ('b.png,"unclosed quote\n', r"captions.csv line 2: malformed CSV"),
        ("b.png,two,commas\n", r"captions.csv line 2: expected 2 fields, found 3"),
        ("b.png,   \n", r"captions.csv line 2: empty caption for 'b.png'"),
        ("missing.jpg,a caption\n", r"captions.csv line 2: .*missing.jpg: missing file"),
        ("text.jpg,a caption\n", r"captions.csv line 2: .*text.jpg: unreadable image"),
        (
            "truncated.jpg,a caption\n",
            r"captions.csv line 2: .*truncated.jpg: unreadable image .*truncated",
        ),
    ],
)
def test_folder_bad_csv_input_names_file_and_line(tmp_path, bad_line, message):
    make_folder(tmp_path, broken=True)
    (tmp_path / "captions.csv").write_text("file,caption\n" + bad_line + "a.jpg,a dog\n")
    with pytest.raises(DataError, match=message):
        load_dataset("folder", root=tmp_path)


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ('{"file": "a.jpg", "caption": \n', r"data.jsonl line 2: malformed JSON"),
        ('["a.jpg", "a caption"]\n', r'data.jsonl line 2: expected an object with "file"'),
        ('{"file": "a.jpg", "caption": ""}\n', r"data.jsonl line 2: empty caption for 'a.jpg'"),
    ],
)
def test_folder_bad_jsonl_input_names_file_and_line(tmp_path, bad_line, message):
    make_folder(tmp_path)
    (tmp_path / "data.jsonl").write_text('{"file": "b.png", "caption": "fine"}\n' + bad_line)
    with pytest.raises(DataError, match=message):
        load_dataset("folder", root=tmp_path, captions=tmp_path / "data.jsonl")


def test_folder_csv_header_without_the_columns_is_named(tmp_path):
    make_folder(tmp_path)
    (tmp_path / "captions.csv").write_text("name,words\na.jpg,a dog\n")
    with pytest.raises(DataError, match=r"captions.csv line 1: the header .* needs a file column"):
        load_dataset("folder", root=tmp_path)


def test_folder_malformed_coco_json_names_file_and_line(tmp_path):
    make_folder(tmp_path)
    (tmp_path / "captions_train2017.json").write_text('{"images": [],\n "annotations": [,]}')
    with pytest.raises(DataError, match=r"captions_train2017.json line 2: malformed JSON"):
        load_dataset("folder", root=tmp_path)


def test_folder_skip_leaves_out_bad_items_and_says_which(tmp_path):
    broken_csv(tmp_path)
    with pytest.warns(UserWarning, match=r"skipped 5 problem\(s\), kept 3 images") as record:
        data = load_dataset("folder", root=tmp_path, split="all", on_error="skip")
    assert set(as_dict(data)) == {"a.jpg", "b.png", "c.jpg"}
    assert as_dict(data)["c.jpg"] == ["a tall thing"]  # its empty caption alone was dropped
    summary = str(record[0].message)
    for why in (
        "line 9: expected 2 fields",
        "line 10: empty caption",
        "missing.jpg: missing file",
        "text.jpg: unreadable image",
        "truncated.jpg: unreadable image",
    ):
        assert why in summary
    assert len(data.skipped) == 5


def test_folder_without_a_caption_file_says_what_it_looked_for(tmp_path):
    make_folder(tmp_path)
    with pytest.raises(DataError, match="expected one caption file"):
        load_dataset("folder", root=tmp_path)


def test_folder_image_that_breaks_after_loading_is_named(tmp_path):
    make_folder(tmp_path)
    write_csv(tmp_path / "captions.csv", {"a.jpg": ["a dog"]})
    data = load_dataset("folder", root=tmp_path, split="all")
    (tmp_path / "a.jpg").write_text("gone bad")
    with pytest.raises(DataError, match="a.jpg: unreadable image"):
        data[0]


# ----- batches and pictures ---------------------------------------------------------------------


def stand_in_tokenizer(texts, context_length=77, padding="max_length", truncation=True):
    """A tokenizer's call and outputs, one id per character: a caption can be read back from its ids."""
    rows = [[ord(c) % 1000 for c in text][:context_length] for text in texts]
    length = context_length if padding == "max_length" else max(map(len, rows))
    ids = torch.zeros(len(rows), length, dtype=torch.long)
    mask = torch.zeros(len(rows), length, dtype=torch.long)
    for k, row in enumerate(rows):
        ids[k, : len(row)], mask[k, : len(row)] = torch.tensor(row), 1
    return {"input_ids": ids, "attention_mask": mask}


@pytest.fixture(scope="module")
def tokenizer():
    return Tokenizer.from_openai()


def test_collate_makes_model_inputs(tokenizer):
    items = [load_dataset("shapes", length=8)[i] for i in range(8)]
    batch = Collate(tokenizer, ImageProcessor(32), context_length=24, caption="first")(items)
    assert (
        batch["pixel_values"].shape == (8, 3, 32, 32)
        and batch["pixel_values"].dtype == torch.float32
    )
    assert batch["input_ids"].shape == (8, 24) and batch["input_ids"].dtype == torch.long
    assert batch["attention_mask"].dtype == torch.long
    expected = tokenizer(
        [captions[0] for _, captions in items], context_length=24, padding="max_length"
    )
    assert torch.equal(batch["input_ids"], expected["input_ids"])
    assert torch.equal(batch["attention_mask"], expected["attention_mask"])


def test_collate_random_caption_is_reproducible(tokenizer):
    items = [load_dataset("shapes", length=16)[i] for i in range(16)]
    processor = ImageProcessor(16)

    def two_batches(collate):
        return [collate(items)["input_ids"] for _ in range(2)]

    first, again = (
        two_batches(Collate(tokenizer, processor)),
        two_batches(Collate(tokenizer, processor)),
    )
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not torch.equal(first[0], first[1])  # the next batch draws anew
    next_epoch = Collate(tokenizer, processor)
    next_epoch.set_epoch(1)
    assert not torch.equal(next_epoch(items)["input_ids"], first[0])


def test_dataloader_batches_from_workers_are_reproducible():
    # Every item offers the same ten captions, so a batch's ids say which caption each draw picked.
    data = [(Image.new("RGB", (16, 16)), [f"caption {k}" for k in range(10)])] * 32
    collate = Collate(stand_in_tokenizer, ImageProcessor(16), context_length=16)

    def epoch():
        loader = torch.utils.data.DataLoader(data, batch_size=8, num_workers=2, collate_fn=collate)
        return [batch["input_ids"] for batch in loader]

    first, again = epoch(), epoch()
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    # Batch 0 is worker 0's first, batch 1 worker 1's: keyed alike, they would pick the same captions.
    assert not torch.equal(first[0], first[1])
    # Worker 0 draws what the main process draws.
    fresh = Collate(stand_in_tokenizer, ImageProcessor(16), context_length=16)
    assert torch.equal(first[0], fresh(data[:8])["input_ids"])


def test_show_samples_draws_images_with_captions():
    figure = show_samples(load_dataset("shapes", length=6), n=6, columns=3)
    images = [axis for axis in figure.axes if axis.images]
    assert len(images) == 6 and all(axis.get_title(loc="left") for axis in images)


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(ValueError, match="emoji"):
        load_dataset("cifar")
