#!/usr/bin/env bash
# Creates .venv and installs coverforge with its pinned dependencies; safe to re-run.
# torch==2.13.0 goes first: it is the CPU wheel on local disk, and installing it before anything
# else stops pip from resolving a bare `torch` to a multi-GB CUDA build. Never add torchvision.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=.venv/.coverforge-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check torch==2.13.0
  .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
  echo "$want" > "$stamp"
fi
# The real CLIP BPE vocabulary (MIT) ships inside the open-clip-torch wheel; take the one file
# without installing the package (installing it would pull torchvision).
bpe="$HOME/.cache/coverforge/bpe_simple_vocab_16e6.txt.gz"
if [ ! -s "$bpe" ] && [ -z "${COVERFORGE_CLIP_BPE:-}" ]; then
  tmp=$(mktemp -d)
  if .venv/bin/python -m pip download -q --disable-pip-version-check --no-deps open-clip-torch==3.3.0 -d "$tmp"; then
    mkdir -p "$(dirname "$bpe")"
    .venv/bin/python - "$tmp" "$bpe" <<'PY'
import glob, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/open_clip_torch-*.whl")[0]
with zipfile.ZipFile(wheel) as z, open(sys.argv[2], "wb") as f:
    f.write(z.read("open_clip/bpe_simple_vocab_16e6.txt.gz"))
PY
  else
    echo "setup: could not fetch open-clip-torch; coverforge will use a stand-in tokenizer" >&2
  fi
  rm -rf "$tmp"
fi
# The studio's browser test drives a real headless Chromium (Playwright, with the system's browser:
# `playwright install` would download one). Install Debian's `chromium` when it is missing and we
# can (root, apt-get); the test skips with a reason otherwise. Never fails the setup.
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1; then
    { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1; } \
      || echo "setup: could not install chromium; the studio's browser test will be skipped" >&2
  fi
fi
