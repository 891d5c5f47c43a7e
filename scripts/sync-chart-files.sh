#!/usr/bin/env bash
# Copy the rules and templates from config/ into the chart (Helm can only read files inside it).
# tests/helm/test_chart_files.py fails while helm/winback/files/ differs from config/.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=helm/winback/files
rm -rf "$dest"
mkdir -p "$dest/templates"
cp config/rules.yaml "$dest/rules.yaml"
cp config/templates/*.j2 "$dest/templates/"
echo "synced config/rules.yaml and config/templates/*.j2 into $dest/"
