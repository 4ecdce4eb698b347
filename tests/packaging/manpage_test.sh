#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Usage: manpage_test.sh P11VAULT_BINARY MAN_PAGE
# The man page renders with `man -l`, has a section for every subcommand the binary
# offers, and mentions every long option of `p11vault --help` and of each
# `p11vault SUBCOMMAND --help`. Prints what is missing; exits 1 if anything is.
set -euo pipefail
bin=$1 page=$2

rendered=$(MANWIDTH=100 man -l "$page" 2>/dev/null | col -b) || { echo "man -l $page failed"; exit 1; }
[[ -n $rendered ]] || { echo "man -l $page rendered nothing"; exit 1; }

# Subcommands: the names in the "Subcommands:" block of the top-level help.
mapfile -t subcommands < <("$bin" --help | sed -n '/^Subcommands:/,/^$/p' | awk 'NR>1 && NF {print $1}')
((${#subcommands[@]} >= 8)) || { echo "found only ${#subcommands[@]} subcommands in p11vault --help"; exit 1; }

missing=()
for sub in "${subcommands[@]}"; do
  # A heading of its own: a line of the rendered page that starts with the name
  # (section or subsection), e.g. "   backup" or "BACKUP".
  grep -qiE "^ {0,3}(p11vault +)?${sub}( |$)" <<<"$rendered" || missing+=("section for subcommand '$sub'")
  while read -r option; do
    grep -qF -- "$option" <<<"$rendered" || missing+=("$sub $option")
  done < <("$bin" "$sub" --help | grep -oE -- '--[a-z0-9][a-z0-9-]*' | sort -u)
done
while read -r option; do
  grep -qF -- "$option" <<<"$rendered" || missing+=("global $option")
done < <("$bin" --help | grep -oE -- '--[a-z0-9][a-z0-9-]*' | sort -u)
for heading in NAME SYNOPSIS DESCRIPTION EXAMPLES "EXIT STATUS" ENVIRONMENT "SECRET SOURCES"; do
  grep -qE "^${heading}\$" <<<"$rendered" || missing+=("section $heading")
done

if ((${#missing[@]})); then
  printf 'the man page lacks: %s\n' "${missing[@]}"
  exit 1
fi
echo "man page: ${#subcommands[@]} subcommands, every option present"
