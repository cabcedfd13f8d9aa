#!/usr/bin/env bash
# One entry point for a fresh machine: `./run.sh app` sets up and starts the dashboard,
# `./run.sh test` sets up and runs the whole test suite (what CI runs), `./run.sh ray` starts the
# dashboard with trainings as Ray tasks (a local Ray, or the cluster at $RAY_ADDRESS).
set -euo pipefail
cd "$(dirname "$0")"
what=${1:-app}
shift || true
VENV=${VENV:-.venv}

apt_install() {
  # Debian packages for offline data (and the browser for tests); skipped where apt is absent.
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "note: not a Debian system; install ${missing[*]} yourself if you want them" >&2; return 0
  fi
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo -n"
  echo "installing Debian packages: ${missing[*]}" >&2
  $sudo apt-get update -q >/dev/null && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null \
    || echo "note: could not apt-get install ${missing[*]} (offline Fashion-MNIST / browser tests need them)" >&2
}

venv() {
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$1"
}

npm_ci() {
  # the browser-side libraries pinned in $1/package-lock.json, from the npm registry (never a CDN), into
  # $1/node_modules; npm ci only when the lock file changed since the last install. $2: what goes without them
  cmp -s "$1/package-lock.json" "$1/node_modules/.installed-lock.json" && return 0
  if (cd "$1" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >/dev/null); then
    cp "$1/package-lock.json" "$1/node_modules/.installed-lock.json"
  else
    echo "note: npm ci in $1/ failed: $2" >&2
  fi
}

browser_libs() {
  # web/package.json: ONNX Runtime Web (the web-page export, Predict in the browser) and uPlot (the Train page's charts)
  if ! command -v npm >/dev/null 2>&1; then
    echo "note: no npm here; the web-page export needs it, and the Train page falls back to slower live charts" \
      "(apt-get install npm, then run this again)" >&2; return 0
  fi
  npm_ci web "the web-page export needs ONNX Runtime Web, and the Train page's fast charts uPlot, from it"
}

case "$what" in
  app)
    apt_install dataset-fashion-mnist
    venv requirements.txt
    browser_libs
    exec "$VENV/bin/python" -m streamlit run streamlit_app.py "$@"
    ;;
  ray)
    apt_install dataset-fashion-mnist
    venv requirements-ray.txt
    browser_libs
    CLASSIFIER_LAB_ENGINE=ray exec "$VENV/bin/python" -m streamlit run streamlit_app.py "$@"
    ;;
  test)
    # the handwriting fonts let the drawn-digit generator's tests run (scripts/make_drawn_digits.py)
    apt_install dataset-fashion-mnist chromium chromium-headless-shell fonts-bwht fonts-comic-neue fonts-dancingscript fonts-dkg-handwriting \
      fonts-humor-sans fonts-klee fonts-kristi fonts-rufscript fonts-sjfonts fonts-tomsontalks fonts-yusei-magic \
      fonts-kaushanscript fonts-breip fonts-dejavu-core fonts-dejavu-extra fonts-liberation
    venv requirements-dev.txt
    browser_libs
    exec "$VENV/bin/python" -m pytest "$@"
    ;;
  *)
    echo "usage: ./run.sh app|ray|test [extra args for streamlit or pytest]" >&2; exit 2 ;;
esac
