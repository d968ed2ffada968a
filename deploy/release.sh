#!/usr/bin/env bash
# Builds a release into dist/ (git-ignored): the deepinfant-edge binary with the Swift runtime linked in, its
# resource bundle when the build has one, the shipped model files and their ONNX / Core ML exports (with
# the export checks' figures), the licence and provenance notices, and SHA256SUMS over all of it.
#
#   bash deploy/release.sh            # DIST=other/dir to write elsewhere; SKIP_EXPORTS=1 to leave the exports out
#
# Static linking: `--static-swift-stdlib` links the Swift runtime and Foundation statically, so the binary needs
# only the Debian libraries of deploy/install-deps.sh (listed in dist/BUILD-INFO.txt from ldd). A fully static
# executable (`--static-swift-stdlib -Xlinker -static` or the static Linux SDK) is not possible with Debian's
# packages: there is no static libasound, libsndfile, libsamplerate or libmosquitto (-dev ships only .so), and
# ALSA loads its PCM plugins with dlopen, which a static glibc binary cannot do reliably. This script checks
# for the static archives and says which are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
DIST=${DIST:-dist}
MODELS=(deepinfant-reason deepinfant-cry deepinfant-cry-head)

echo "== building (release, --static-swift-stdlib)"
swift build -c release --static-swift-stdlib --product deepinfant-edge
bin=$(swift build -c release --static-swift-stdlib --show-bin-path)

rm -rf "$DIST"
mkdir -p "$DIST/models" "$DIST/notices"
install -m 0755 "$bin/deepinfant-edge" "$DIST/deepinfant-edge"
# Symbols stripped (x86_64: 95 -> 66 MB); KEEP_SYMBOLS=1 keeps them for symbolicated crash backtraces.
[ "${KEEP_SYMBOLS:-0}" = 1 ] || strip --strip-unneeded "$DIST/deepinfant-edge"
# The models are linked into the binary (Sources/CEmbeddedModels): the one file is the whole node. The model
# files are shipped beside it too, for other engines and for checking the exports.
for m in "${MODELS[@]}" yamnet; do
    install -m 0644 "Sources/Inference/Resources/$m.safetensors" "$DIST/models/$m.safetensors"
done

echo "== exports"
if [ "${SKIP_EXPORTS:-0}" = 1 ]; then
    echo "SKIP_EXPORTS=1: no ONNX / Core ML exports in $DIST" | tee "$DIST/models/EXPORTS-SKIPPED.txt"
elif python3 -c 'import torch, onnx, onnxruntime, safetensors' 2>/dev/null; then
    for m in "${MODELS[@]}"; do
        # Parity against the binary being released, on ../shared/data when it is there.
        parity=(--binary "$DIST/deepinfant-edge")
        [ -f ../shared/data/manifest.csv ] || { parity=(--no-parity); echo "no ../shared/data: parity check not run"; }
        python3 training/export.py "Sources/Inference/Resources/$m.safetensors" \
            --onnx "$DIST/models/$m.onnx" --coreml "$DIST/models/$m.mlpackage" \
            --summary "$DIST/models/$m.export.json" "${parity[@]}" 2>&1 \
            | grep -v -e libcoremlpython -e 'Converting PyTorch' -e 'Running MIL' -e 'scikit-learn version' -e 'has not been tested with coremltools'
    done
    python3 -c 'import coremltools' 2>/dev/null || echo "coremltools missing: no .mlpackage (pip install coremltools)"
else
    echo "Python export dependencies missing (pip install -r training/requirements.txt coremltools):" \
         "no ONNX / Core ML exports in $DIST" | tee "$DIST/models/EXPORTS-SKIPPED.txt"
fi

echo "== notices"
install -m 0644 NOTICE "$DIST/notices/NOTICE"
install -m 0644 docs/front-end.md "$DIST/notices/front-end.md"
install -m 0644 docs/model-card.md "$DIST/notices/model-card.md"
if [ -f /usr/share/common-licenses/Apache-2.0 ]; then
    install -m 0644 /usr/share/common-licenses/Apache-2.0 "$DIST/notices/LICENSE-Apache-2.0.txt"
fi
cat > "$DIST/notices/YAMNET-NOTICE.txt" <<'EOF'
models/yamnet.safetensors (and the cry head trained on its embeddings) derive from Google's YAMNet:
TF Hub lite-model_yamnet_classification_tflite_1, yamnet.tflite,
sha256 10c95ea3eb9a7bb4cb8bddf6feb023250381008177ac162ce169694d05c317de;
class map: tensorflow/models, research/audioset/yamnet/yamnet_class_map.csv.
Copyright 2019 The TensorFlow Authors. Licensed under the Apache License, Version 2.0
(LICENSE-Apache-2.0.txt; https://www.apache.org/licenses/LICENSE-2.0).
Converted by training/yamnet_convert.py: the same int8 weights and per-channel scales, biases as float32.
The YAMNet body is not exported to ONNX / Core ML here: use Google's original yamnet.tflite.
EOF
cat > "$DIST/notices/GPL-FFTW.txt" <<'EOF'
The deepinfant-edge binary links FFTW (GPL-2.0-or-later), so the distributed binary is covered by the
GNU General Public License, version 2 or later (/usr/share/common-licenses/GPL-2 on Debian); the source code
of DeepInfant Edge stays Apache-2.0 (see README.md, "Licence"). The model files and their ONNX / Core ML
exports do not contain FFTW.
EOF
[ -f samples/ATTRIBUTION.md ] && install -m 0644 samples/ATTRIBUTION.md "$DIST/notices/samples-ATTRIBUTION.md"

echo "== build info"
{
    echo "deepinfant-edge release, built $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "git: $(git rev-parse HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (uncommitted changes)')"
    echo "swift: $(swift --version 2>&1 | head -1)"
    echo "build: swift build -c release --static-swift-stdlib (Swift runtime and Foundation linked in)"
    echo
    echo "shared libraries the binary still needs (ldd):"
    ldd "$DIST/deepinfant-edge" | sed 's/ (0x[0-9a-f]*)//; s/^/  /'
    echo
    echo "static archives for a fully static build (none of the missing ones is packaged by Debian):"
    for l in asound fftw3f sndfile samplerate mosquitto sqlite3 openblas; do
        a=$(ls /usr/lib/*/lib$l.a /usr/lib/lib$l.a 2>/dev/null | head -1 || true)
        echo "  lib$l.a: ${a:-MISSING}"
    done
} > "$DIST/BUILD-INFO.txt"
grep -q "MISSING" "$DIST/BUILD-INFO.txt" && echo "fully static build impossible here (see $DIST/BUILD-INFO.txt)"

echo "== SHA256SUMS"
(cd "$DIST" && find . -type f ! -name SHA256SUMS | sed 's|^\./||' | LC_ALL=C sort | xargs -d '\n' sha256sum > SHA256SUMS)
echo "release in $DIST/: $(wc -l < "$DIST/SHA256SUMS") files, $(du -sh "$DIST" | cut -f1)"
