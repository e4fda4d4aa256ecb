#!/bin/sh
# dvc.yaml's first stage (resolve_config) runs this before anything else: DVC runs every stage's command with the
# `python` first on PATH, and with one that lacks the package (`.venv/bin/dvc repro` without the venv activated)
# each stage would fail with only "No module named tempered".
python -c 'import tempered' 2>/dev/null && exit 0
echo "the tempered package is not importable by the \`python\` on PATH ($(command -v python || echo 'none found')):" \
     "run \`source .venv/bin/activate\` first (\`make reproduce\` puts the venv on PATH itself)" >&2
exit 1
