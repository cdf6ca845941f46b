"""Build the emoji caption pack in data/emoji/: one sheet of emoji images and their names.

Chapter 08 ("Caption data") describes the pack; `miniclip.data.emoji` reads it. Sources:

- images: Noto Color Emoji (Debian `fonts-noto-color-emoji`, OFL-1.1), drawn by Pillow,
  which needs its raqm layout engine to draw multi-codepoint emoji as one picture;
- names and keywords: Unicode CLDR annotations (Debian `unicode-cldr-core`, Unicode
  licence), falling back to the names of the `emoji` package (BSD) for emoji newer than
  the CLDR release.

Skin-tone variants are left out (they repeat an emoji with the same name plus a tone).
Run from the repository root:

    apt-get install fonts-noto-color-emoji unicode-cldr-core && pip install emoji
    python scripts/build_emoji_pack.py
"""

import argparse
import json
from importlib.metadata import version
from pathlib import Path
from xml.etree import ElementTree

import emoji
from PIL import Image, ImageDraw, ImageFont, features

FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
CLDR = Path("/usr/share/unicode/cldr/common")
OUT = Path(__file__).resolve().parents[1] / "data" / "emoji"
GLYPH = 109  # the one bitmap size the font holds: 136 x 128 pixels
SKIN_TONES = {chr(c) for c in range(0x1F3FB, 0x1F400)}
MAX_EMOJI_VERSION = 15.1  # what Noto Color Emoji 2.042 draws


def cldr_annotations() -> dict[str, dict]:
    """{emoji without variation selectors: {"name": ..., "keywords": [...]}} from CLDR's English."""
    table: dict[str, dict] = {}
    for path in (CLDR / "annotations" / "en.xml", CLDR / "annotationsDerived" / "en.xml"):
        for node in ElementTree.parse(path).iter("annotation"):
            entry = table.setdefault(node.get("cp"), {"name": None, "keywords": []})
            if node.get("type") == "tts":
                entry["name"] = node.text.strip()
            else:
                entry["keywords"] = [word.strip() for word in node.text.split("|")]
    return table


def package_name(character: str) -> str:
    """The `emoji` package's name, ':grinning_face:' -> 'grinning face'."""
    return emoji.EMOJI_DATA[character]["en"].strip(":").replace("_", " ")


def candidates() -> list[str]:
    """Fully qualified emoji the font can draw, without skin-tone variants."""
    return [
        character
        for character, data in emoji.EMOJI_DATA.items()
        if data["status"] == emoji.STATUS["fully_qualified"]
        and data["E"] <= MAX_EMOJI_VERSION
        and not SKIN_TONES & set(character)
    ]


def draw(character: str, font: ImageFont.FreeTypeFont, tile: int) -> Image.Image | None:
    """The emoji on white, `tile` pixels square; None if the font has no single glyph for it."""
    if round(font.getlength(character)) != 136:  # drawn as several glyphs side by side
        return None
    glyph = Image.new("RGBA", (136, 136), (0, 0, 0, 0))
    ImageDraw.Draw(glyph).text((0, 4), character, font=font, embedded_color=True)
    if glyph.getbbox() is None:
        return None
    white = Image.new("RGBA", glyph.size, (255, 255, 255, 255))
    square = Image.alpha_composite(white, glyph).convert("RGB")
    return square.resize((tile, tile), Image.Resampling.LANCZOS)


def entry(character: str, cldr: dict[str, dict]) -> dict:
    annotation = cldr.get(character.replace("\ufe0f", ""), {})
    name = annotation.get("name") or package_name(character)
    keywords = [k for k in annotation.get("keywords", []) if k.lower() != name.lower()]
    return {"emoji": character, "name": name, "keywords": keywords}


def build(tile: int, columns: int, quality: int) -> None:
    if not features.check("raqm"):
        raise SystemExit("Pillow lacks raqm (libraqm), which joins emoji sequences into one glyph")
    font = ImageFont.truetype(str(FONT), GLYPH)
    cldr = cldr_annotations()
    entries, tiles = [], []
    for character in candidates():
        picture = draw(character, font, tile)
        if picture is not None:
            entries.append(entry(character, cldr))
            tiles.append(picture)
    rows = -(-len(tiles) // columns)
    sheet = Image.new("RGB", (columns * tile, rows * tile), (255, 255, 255))
    for index, picture in enumerate(tiles):
        sheet.paste(picture, ((index % columns) * tile, (index // columns) * tile))
    OUT.mkdir(parents=True, exist_ok=True)
    sheet.save(OUT / "emoji.jpg", quality=quality, subsampling=0, optimize=True)
    sources = {
        "images": f"Noto Color Emoji ({FONT.name}, Debian fonts-noto-color-emoji)",
        "names": "Unicode CLDR annotations (Debian unicode-cldr-core), "
        f"else the emoji package {version('emoji')}",
    }
    header = json.dumps({"tile": tile, "columns": columns, "sources": sources}, indent=1)
    lines = ",\n".join(json.dumps(e, ensure_ascii=False) for e in entries)  # one emoji a line
    (OUT / "emoji.json").write_text(header[:-2] + ',\n "emoji": [\n' + lines + "\n]}\n")
    megabytes = (OUT / "emoji.jpg").stat().st_size / 1e6
    print(f"{len(entries)} emoji -> {OUT} ({megabytes:.1f} MB of pictures)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tile", type=int, default=48, help="pixels per emoji (default 48)")
    parser.add_argument("--columns", type=int, default=40, help="emoji per row of the sheet")
    parser.add_argument("--quality", type=int, default=90, help="JPEG quality of the sheet")
    arguments = parser.parse_args()
    build(arguments.tile, arguments.columns, arguments.quality)


if __name__ == "__main__":
    main()
