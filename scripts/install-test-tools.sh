#!/usr/bin/env bash
# Install the chart-test tools into the project's venv (default .venv, or $VENV).
# helm-python-sdk declares Python >= 3.12 but works on 3.11, so it needs --ignore-requires-python,
# which pyproject extras cannot express; the rest are also in the `dev` extra.
set -euo pipefail
cd "$(dirname "$0")/.."
pip="${VENV:-.venv}/bin/pip"
"$pip" install --quiet --ignore-requires-python "helm-python-sdk==0.2.2"
"$pip" install --quiet "kubernetes-validate>=1.31,<2" "jsonschema>=4.18,<5"
