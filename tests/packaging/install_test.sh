#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Usage: install_test.sh BUILD_DIR
# `cmake --install` into a fresh prefix yields the program (hardened, and it runs), the
# man page (which renders), the bash and zsh completions (which parse) and the
# documentation.
set -euo pipefail
build=$1
prefix=$(mktemp -d "${TMPDIR:-/tmp}/p11vault-install.XXXXXX")
trap 'rm -rf "$prefix"' EXIT

cmake --install "$build" --prefix "$prefix" >/dev/null

expect=(
  bin/p11vault
  share/man/man1/p11vault.1.gz
  share/bash-completion/completions/p11vault
  share/zsh/vendor-completions/_p11vault
  share/doc/p11vault/README.md
  share/doc/p11vault/cli.md
  share/doc/p11vault/json.md
  share/doc/p11vault/security.md
  share/doc/p11vault/extraction.md
  share/doc/p11vault/tokens.md
  share/doc/p11vault/escrow.md
  share/doc/p11vault/copyright
)
status=0
for file in "${expect[@]}"; do
  [[ -f $prefix/$file ]] || { echo "not installed: $file"; status=1; }
done
((status == 0)) || { (cd "$prefix" && find . -type f | sort); exit 1; }

# Hardened as Debian builds: PIE, full RELRO (BIND_NOW), stack protector, fortified calls.
bin=$prefix/bin/p11vault
# (Outputs are captured first: `grep -q` closing a pipe early fails it under pipefail.)
header=$(readelf -h "$bin") dynamic=$(readelf -d "$bin") segments=$(readelf -l "$bin") symbols=$(nm -D "$bin")
grep -q 'Position-Independent Executable' <<<"$header" || { echo "not PIE"; exit 1; }
grep -q 'BIND_NOW' <<<"$dynamic" || { echo "no BIND_NOW (full RELRO)"; exit 1; }
grep -q 'GNU_RELRO' <<<"$segments" || { echo "no GNU_RELRO"; exit 1; }
grep -q '__stack_chk_fail' <<<"$symbols" || { echo "no stack protector"; exit 1; }
grep -qE '__[a-z]+_chk@' <<<"$symbols" || { echo "no _FORTIFY_SOURCE checks"; exit 1; }

version=$("$prefix/bin/p11vault" --version)
[[ $version == "p11vault "*" (commit "*") with OpenSSL "*", p11-kit "* ]] || { echo "--version: $version"; exit 1; }
page=$(MANWIDTH=80 man -l "$prefix/share/man/man1/p11vault.1.gz")
grep -q 'p11vault' <<<"$page" || { echo "man page does not render"; exit 1; }
bash -n "$prefix/share/bash-completion/completions/p11vault"
zsh -n "$prefix/share/zsh/vendor-completions/_p11vault"
echo "installed: ${#expect[@]} files; $version"
