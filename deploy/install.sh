#!/usr/bin/env bash
# Builds DeepInfant Edge and installs it as a systemd service on this machine (Debian, Raspberry Pi OS).
# Usage: sudo bash deploy/install.sh      (then edit /etc/deepinfant-edge/config.toml and restart)
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/install-deps.sh
# Swift's runtime and Foundation linked in: the binary needs only the Debian libraries of install-deps.sh
# (and ~5 MB less resident memory than with the shared Swift libraries).
swift build -c release --static-swift-stdlib --product deepinfant-edge
bin=$(swift build -c release --static-swift-stdlib --show-bin-path)
install -m 0755 "$bin/deepinfant-edge" /usr/local/bin/deepinfant-edge
# The models are linked into the executable; remove the resource folder older versions installed beside it.
rm -rf /usr/local/bin/DeepInfantEdge_Inference.resources
install -d -m 0755 /etc/deepinfant-edge /usr/local/share/doc/deepinfant-edge
[ -f /etc/deepinfant-edge/config.toml ] || install -m 0644 config.example.toml /etc/deepinfant-edge/config.toml
[ -f /etc/deepinfant-edge/secrets.env ] || install -m 0600 /dev/null /etc/deepinfant-edge/secrets.env
install -m 0644 README.md /usr/local/share/doc/deepinfant-edge/README.md
install -m 0644 deploy/systemd/deepinfant-edge.service /etc/systemd/system/deepinfant-edge.service
systemctl daemon-reload
systemctl enable --now deepinfant-edge.service
systemctl --no-pager status deepinfant-edge.service || true
echo "installed: edit /etc/deepinfant-edge/config.toml (and secrets.env), then: systemctl restart deepinfant-edge"
