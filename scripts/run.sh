#!/usr/bin/env bash
# CueLab bootstrap: sets everything up (idempotent), then runs one action.
#
#   bash scripts/run.sh demo    set up, then open CueLab on the bundled demo
#   bash scripts/run.sh test    set up, then run ruff, mypy and the whole test suite
#
# Set-up: Debian packages (when missing, as root or through sudo), a virtual
# environment in .venv, PyTorch (a CPU build unless an NVIDIA GPU is present;
# CUELAB_TORCH=cuda|cpu overrides), then CueLab itself with its dev extra.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV=${CUELAB_VENV:-$ROOT/.venv}
PY=${PYTHON:-python3}
ACTION=${1:-demo}
shift || true

say() { printf '[cuelab setup] %s\n' "$*" >&2; }

# --- Debian packages ---------------------------------------------------------
DEB_PKGS=(espeak-ng libsndfile1 libportaudio2 xvfb xauth libegl1 libgl1 libglib2.0-0
  libxkbcommon0 libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-image0
  libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-shape0 libxcb-xinerama0
  libxcb-xkb1 libfontconfig1 libdbus-1-3 git e2fsprogs)

install_debs() {
  command -v dpkg-query >/dev/null 2>&1 || { say "not a Debian system: install ${DEB_PKGS[*]} yourself"; return 0; }
  local missing=()
  for p in "${DEB_PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ! "$PY" -c 'import ensurepip, venv' >/dev/null 2>&1; then
    missing+=("python3-venv")
  fi
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
      say "missing Debian packages (run as root to install): ${missing[*]}"; return 0; fi
  fi
  say "installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# --- Python environment ------------------------------------------------------
setup_venv() {
  if [ ! -x "$VENV/bin/python" ]; then
    say "creating virtual environment $VENV"
    "$PY" -m venv "$VENV"
  fi
  # pip shows what it collects, downloads and installs (minutes of silence look like a hang):
  # a progress bar on a terminal, plain lines in a log (SLURM, nohup, CI).
  local bar=off
  [ -t 1 ] && bar=on
  # (--progress-bar is an option of `pip install`, not of pip itself)
  local pip=("$VENV/bin/python" -m pip --disable-pip-version-check)
  local install=("${pip[@]}" install --progress-bar "$bar")
  if ! "$VENV/bin/python" -c 'import torch' >/dev/null 2>&1; then
    local flavour=${CUELAB_TORCH:-}
    if [ -z "$flavour" ]; then
      if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then flavour=cuda; else flavour=cpu; fi
    fi
    if [ "$flavour" = cuda ]; then
      say "installing PyTorch (CUDA build, from the default index; about 3 GB, several minutes)"
      "${install[@]}" torch
    else
      say "installing PyTorch (CPU build)"
      # A CPU wheel already on this machine (pip's find-links) is used first,
      # its dependencies from the normal index; otherwise PyTorch's own CPU
      # index. Either way no CUDA wheels are downloaded.
      local want_torch="torch==${CUELAB_TORCH_VERSION:-2.13.0}" wheels
      wheels=$(mktemp -d)
      if "${pip[@]}" download --no-deps --no-index -d "$wheels" "$want_torch" >/dev/null 2>&1 \
          && ls "$wheels"/torch-*+cpu-*.whl >/dev/null 2>&1; then
        "${install[@]}" "$wheels"/torch-*.whl
      else
        "${install[@]}" "$want_torch" --index-url "${CUELAB_TORCH_INDEX:-https://download.pytorch.org/whl/cpu}"
      fi
      rm -rf "$wheels"
    fi
  fi
  local stamp="$VENV/.cuelab-installed"
  local want
  want=$(cat pyproject.toml | sha256sum | cut -c1-16)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    say "installing CueLab and its dependencies (a few minutes on first run)"
    "${install[@]}" -e ".[dev]"
    echo "$want" > "$stamp"
  fi
}

install_debs
setup_venv
export PATH="$VENV/bin:$PATH"

case "$ACTION" in
  demo)
    if cuelab --help 2>/dev/null | grep -q '^    gui'; then
      if [ -z "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
        say "no display: starting the window on a virtual screen and saving a screenshot to cuelab-demo.png"
        exec xvfb-run -a cuelab gui --screenshot cuelab-demo.png "$@"
      fi
      exec cuelab "$@"
    fi
    # Until the window lands, the demo runs the command-line pipeline.
    exec cuelab tokens --norms assets/norms/demo-norms.json assets/demo/*.flac "$@"
    ;;
  test)
    ruff check .
    ruff format --check .
    mypy
    exec python -m pytest "$@"
    ;;
  *)
    say "unknown action '$ACTION' (use: demo | test)"; exit 2 ;;
esac
