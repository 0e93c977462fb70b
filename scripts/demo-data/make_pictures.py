#!/usr/bin/env python3
"""Rebuilds the demo's profile pictures in pictures/ (already committed; run only to change them).

Sources: scikit-image's sample images (PyPI scikit-image 0.26.0, skimage/data/): astronaut.png
(public domain, NASA), camera.png, chelsea.png and coffee.png (CC0), rocket.jpg (public domain,
SpaceX); everything else is drawn here. Needs Pillow and numpy.

    pip download --no-deps scikit-image==0.26.0 && unzip -o scikit_image-*.whl 'skimage/data/*'
    python make_pictures.py skimage/data
"""
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

src = Path(sys.argv[1])
out = Path(__file__).parent / "pictures"
out.mkdir(exist_ok=True)


def save(img, name, size=150):
    img.convert("RGB").resize((size, size), Image.LANCZOS).save(out / f"{name}.jpg", quality=90)


def crop(img, box):
    return img.crop(box)


astronaut = Image.open(src / "astronaut.png").convert("RGB")
camera = Image.open(src / "camera.png").convert("RGB")
save(crop(astronaut, (130, 0, 380, 250)), "astronaut-portrait")
save(crop(astronaut, (60, 0, 460, 400)), "astronaut-wide", 320)
save(crop(astronaut, (150, 20, 330, 200)).transpose(Image.FLIP_LEFT_RIGHT), "astronaut-mirrored")
save(crop(camera, (150, 30, 400, 280)), "photographer")
# Two people side by side: a group.
pair = Image.new("RGB", (500, 250), (230, 230, 230))
pair.paste(crop(astronaut, (130, 0, 380, 250)), (0, 0))
pair.paste(crop(camera, (150, 30, 400, 280)), (250, 0))
save(pair.resize((500, 250)), "two-people", 320)
save(Image.open(src / "chelsea.png").convert("RGB").crop((50, 0, 350, 300)), "cat")
save(Image.open(src / "coffee.png").convert("RGB").crop((100, 0, 500, 400)), "coffee")
save(Image.open(src / "rocket.jpg").convert("RGB").crop((100, 0, 527, 427)), "rocket")

# Instagram-like default avatar: grey silhouette on light grey.
img = Image.new("RGB", (150, 150), (219, 219, 219))
d = ImageDraw.Draw(img)
d.ellipse((50, 28, 100, 78), fill=(255, 255, 255))
d.ellipse((22, 88, 128, 190), fill=(255, 255, 255))
img.save(out / "default-avatar.jpg", quality=90)

# A wordmark logo.
img = Image.new("RGB", (150, 150), (20, 60, 120))
d = ImageDraw.Draw(img)
try:
    font = ImageFont.truetype("DejaVuSans-Bold.ttf", 40)
except OSError:
    font = ImageFont.load_default()
d.text((18, 50), "NOVA", fill=(255, 210, 60), font=font)
img.save(out / "logo.jpg", quality=90)

# A sunset gradient (a landscape-like picture with no one in it).
y = np.linspace(0, 1, 150)[:, None]
sky = np.stack([255 * (0.9 - 0.3 * y) + 0 * y, 120 + 80 * y, 80 + 150 * (1 - y)], axis=-1) * np.ones((150, 150, 1))
Image.fromarray(sky.clip(0, 255).astype("uint8")).save(out / "sunset.jpg", quality=90)
