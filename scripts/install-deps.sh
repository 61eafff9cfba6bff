#!/usr/bin/env bash
# Installs what the tests, benchmarks and demo need on a fresh Debian machine (idempotent).
# - apt: the real ostree CLI and GLib's GVariant through PyGObject (test oracles only; the
#   library never uses them at run time), gnupg for signed fixtures, zstd/xz/bzip2 for archives,
#   zsh to load the completion script the CLI writes for it.
# - pip: this package in editable mode with its dev extras and the docs toolchain.
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
apt_packages=(ostree gir1.2-ostree-1.0 python3-gi gnupg zstd xz-utils bzip2 nginx wrk zsh)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

python3 -m pip install -q --disable-pip-version-check -e '.[dev,docs]' 2>&1 \
  | grep -v -e '^WARNING: Running pip as' -e 'is ignored: it is neither' || true
python3 -c "import ostree_repo"
