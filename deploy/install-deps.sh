#!/usr/bin/env bash
# Installs the Debian packages DeepInfant Edge needs to build, test and run.
# Idempotent: packages already present are left alone, and `apt-get update` runs only when something is missing.
set -euo pipefail

PACKAGES=(
  pkg-config
  libasound2-dev libasound2-plugins alsa-utils   # ALSA capture (+ aplay/arecord for diagnostics)
  libfftw3-dev                                    # fftw3f: STFT for the log-mel front end
  libopenblas-dev                                 # sgemm/sgemv for the CRNN engine (Inference)
  libsndfile1-dev                                 # reading WAV/FLAC/OGG recordings
  libsamplerate0-dev                              # band-limited resampling to 16 kHz
  libmosquitto-dev mosquitto mosquitto-clients    # MQTT client library, a local broker, mosquitto_sub
  libsqlite3-dev                                  # durable outbox
  openssl                                         # test certificates for TLS
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all system packages present"
  exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
