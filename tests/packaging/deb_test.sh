#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Usage: deb_test.sh BUILD_DIR
# `cpack -G DEB` yields a package whose Depends are runtime libraries only, which
# lintian finds no error in, and which dpkg installs into a scratch root (its own dpkg
# database), where `p11vault --version` runs, and removes again without a trace.
set -euo pipefail
build=$1
work=$(mktemp -d "${TMPDIR:-/tmp}/p11vault-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT

cpack -G DEB --config "$build/CPackConfig.cmake" -B "$work/out" >"$work/cpack.log" 2>&1 || {
  cat "$work/cpack.log"
  exit 1
}
debs=("$work"/out/p11vault_*.deb)
[[ -f ${debs[0]} ]] || { echo "cpack wrote no p11vault_*.deb"; ls -R "$work/out"; exit 1; }
deb=${debs[0]}
fail() { echo "$*"; dpkg-deb -I "$deb"; exit 1; }

depends=$(dpkg-deb -f "$deb" Depends)
for lib in libssl3 libp11-kit0 libfmt9 libgfshare2 libc6 libstdc++6; do
  [[ $depends == *"$lib"* ]] || fail "Depends lacks $lib: $depends"
done
IFS=',' read -ra entries <<<"$depends"
for entry in "${entries[@]}"; do
  name=$(awk '{print $1}' <<<"$entry")
  [[ $name == lib* && $name != *-dev ]] || fail "Depends holds something other than a runtime library: $name"
done
[[ $(dpkg-deb -f "$deb" Recommends) == *softhsm2* ]] || fail "softhsm2 is not recommended"
[[ $(dpkg-deb -f "$deb" Suggests) == *qrencode* ]] || fail "qrencode is not suggested"

files=$(dpkg-deb -c "$deb" | awk '{print $6}')
for file in ./usr/bin/p11vault ./usr/share/man/man1/p11vault.1.gz ./usr/share/bash-completion/completions/p11vault \
  ./usr/share/zsh/vendor-completions/_p11vault ./usr/share/doc/p11vault/copyright ./usr/share/doc/p11vault/changelog.gz; do
  grep -qxF "$file" <<<"$files" || fail "the package lacks $file"
done

# The package is the program: the library and its development files (docs/library.md)
# are not in it.
if library_files=$(grep -E '^\./usr/(include|lib)/|libp11vault|p11vault\.pc|library\.md' <<<"$files"); then
  fail "the package holds the library's files: $library_files"
fi

# lintian: no error (warnings and informational tags are shown, not fatal).
lintian --tag-display-limit 0 "$deb" >"$work/lintian.log" 2>&1 || true
if grep -q '^E:' "$work/lintian.log"; then
  cat "$work/lintian.log"
  exit 1
fi

root=$work/root
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates"
touch "$root/var/lib/dpkg/status"
# --force-depends: the scratch root's database knows no libraries; the host has them.
dpkg --root="$root" --force-depends --force-script-chrootless -i "$deb" >"$work/dpkg.log" 2>&1 || {
  cat "$work/dpkg.log"
  exit 1
}
"$root/usr/bin/p11vault" --version >"$work/version" || fail "the installed p11vault --version failed"
grep -q '^p11vault ' "$work/version" || fail "the installed p11vault --version printed: $(cat "$work/version")"
dpkg --root="$root" -L p11vault >"$work/listed"
grep -qx /usr/bin/p11vault "$work/listed" || fail "dpkg -L does not list /usr/bin/p11vault"
dpkg --root="$root" --force-depends -r p11vault >>"$work/dpkg.log" 2>&1
[[ ! -e $root/usr/bin/p11vault ]] || fail "dpkg -r left /usr/bin/p11vault"
echo "$(basename "$deb"): Depends: $depends; lintian: $(grep -c '^[WI]:' "$work/lintian.log") warnings/infos, no error"
