#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Usage: completions_test.sh P11VAULT_BINARY SOURCE_DIR
# The bash and zsh completions parse, and offer every subcommand and, per subcommand,
# every long option that `p11vault SUBCOMMAND --help` defines (they are written by hand:
# this is what keeps them from drifting from the CLI).
set -euo pipefail
bin=$1 source=$2
bash_completion=$source/completions/p11vault.bash
zsh_completion=$source/completions/_p11vault
bash -n "$bash_completion"
zsh -n "$zsh_completion"

# shellcheck source=/dev/null
source "$bash_completion"
mapfile -t subcommands < <("$bin" --help | sed -n '/^Subcommands:/,/^$/p' | awk 'NR>1 && NF {print $1}')
((${#subcommands[@]} >= 8)) || { echo "found only ${#subcommands[@]} subcommands in p11vault --help"; exit 1; }
missing=()
for sub in "${subcommands[@]}"; do
  grep -qw -- "$sub" <<<"$_p11vault_subcommands" || missing+=("bash: subcommand $sub")
  grep -qF -- "$sub" "$zsh_completion" || missing+=("zsh: subcommand $sub")
  offered=" $(_p11vault_options_of "$sub") "
  while read -r option; do
    [[ $offered == *" $option "* ]] || missing+=("bash: $sub $option")
    grep -qF -- "$option" "$zsh_completion" || missing+=("zsh: $sub $option")
  done < <("$bin" "$sub" --help | awk '/^ +-/ {print $1}' | grep -oE -- '--[a-z0-9][a-z0-9-]*' | sort -u)
done
if ((${#missing[@]})); then
  printf 'the completions lack: %s\n' "${missing[@]}"
  exit 1
fi
echo "completions: ${#subcommands[@]} subcommands, every option offered"
