"""How fast the procedural shapes are made: images per second, one process.

The README's "Measured" section quotes the numbers. Each item is generated from scratch
(scene, captions, pixels); a DataLoader with N workers makes about N times as many.

    python benchmarks/bench_shapes.py [--count 2000]
"""

import argparse
import time

from miniclip.data import load_dataset
from miniclip.image import ImageProcessor


def images_per_second(
    image_size: int, count: int, processor: ImageProcessor | None = None
) -> float:
    data = load_dataset("shapes", image_size=image_size, length=count)
    start = time.perf_counter()
    for i in range(count):
        image, _ = data[i]
        if processor is not None:
            processor(image)
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000, help="images per measurement")
    count = parser.parse_args().count
    for size in (64, 224):
        made = images_per_second(size, count)
        processed = images_per_second(size, count // 2, ImageProcessor(size))
        print(
            f"{size:>3} px: {made:6.0f} images/s generated, "
            f"{processed:5.0f} images/s generated and preprocessed"
        )


if __name__ == "__main__":
    main()
