#!/usr/bin/env bash
# Copy the rules, templates and bridge sources from config/ into the chart (Helm can only read files inside it).
# tests/helm/test_chart_files.py fails while helm/winback/files/ differs from config/.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=helm/winback/files
rm -rf "$dest"
mkdir -p "$dest/templates"
cp config/rules.yaml "$dest/rules.yaml"
cp config/templates/*.j2 "$dest/templates/"
cp config/sources.yaml "$dest/sources.yaml"
echo "synced config/rules.yaml, config/sources.yaml and config/templates/*.j2 into $dest/"
