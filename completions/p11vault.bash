# SPDX-License-Identifier: Apache-2.0
# bash completion for p11vault(1). Install as
# /usr/share/bash-completion/completions/p11vault, or source it.
# Works with or without the bash-completion package.
# shellcheck disable=SC2207  # compgen's output is split on IFS on purpose

_p11vault_subcommands="list backup restore verify migrate split combine escrow-share record-check"
_p11vault_global_options="--verbose --version --help -h"
_p11vault_token_options="--module --module-init --token --token-label --slot --pin"
_p11vault_file_input_options="--in --password --max-iterations --max-file-size --max-objects --max-label-length"
_p11vault_output_options="--record --json --quiet"
_p11vault_escrow_input_options="--recipient-key --recipient-module --recipient-pin --escrow-share"

# The options of one subcommand, as src/cli/*.cpp defines them.
_p11vault_options_of() {
    local common="--help -h --verbose"
    case $1 in
        list)
            echo "$_p11vault_token_options --json $common" ;;
        backup)
            echo "$_p11vault_token_options --out --password --id --label --all" \
                 "--profile --chain --iter --token-wrap-only --skip-unsupported --force --lock-wait --jobs" \
                 "--recipient --recipient-threshold --recipient-allow-expired" \
                 "$_p11vault_output_options $common" ;;
        restore)
            echo "$_p11vault_token_options $_p11vault_file_input_options" \
                 "--dry-run --on-conflict --extractable --skip-unsupported --lock-wait --jobs" \
                 "--renumber-duplicate-ids $_p11vault_escrow_input_options" \
                 "$_p11vault_output_options $common" ;;
        verify)
            echo "$_p11vault_token_options $_p11vault_file_input_options" \
                 "--drill --jobs $_p11vault_escrow_input_options $_p11vault_output_options $common" ;;
        migrate)
            echo "--from-module --from-module-init --from-token" \
                 "--from-token-label --from-slot --from-pin" \
                 "--to-module --to-module-init --to-token" \
                 "--to-token-label --to-slot --to-pin" \
                 "--id --label --all --token-wrap-only --skip-unsupported --on-conflict" \
                 "--extractable --dry-run --renumber-duplicate-ids --lock-wait --jobs" \
                 "--max-objects --max-label-length" \
                 "$_p11vault_output_options $common" ;;
        split)
            echo "--password --generate --threshold --shares --out-dir --qr --sheet --json $common" ;;
        combine)
            echo "--share --out --json $common" ;;
        escrow-share)
            echo "--in --recipient-key --recipient-module --recipient-pin --out --max-file-size --record $common" ;;
        record-check)
            echo "--json $common" ;;
    esac
}

# Whether an option takes a value (the next word).
_p11vault_takes_value() {
    case $1 in
        --module | --module-init | --token | --token-label | --slot | --pin | \
        --from-module | --from-module-init | --from-token | --from-token-label | \
        --from-slot | --from-pin | \
        --to-module | --to-module-init | --to-token | --to-token-label | \
        --to-slot | --to-pin | \
        --out | --password | --new-password | --id | --label | --profile | \
        --chain | --iter | --record | --in | --max-iterations | \
        --max-file-size | --max-objects | --max-label-length | --on-conflict | --threshold | --shares | \
        --out-dir | --share | --sheet | --recipient | --recipient-threshold | --recipient-key | \
        --recipient-module | --recipient-pin | --escrow-share)
            return 0 ;;
    esac
    return 1
}

# Names of the modules registered with p11-kit: the .module files of its
# configuration directories (what `p11-kit list-modules` names), without
# loading any module.
_p11vault_p11kit_modules() {
    local dir file
    for dir in /usr/share/p11-kit/modules /etc/pkcs11/modules \
        "$HOME/.config/pkcs11/modules"; do
        [[ -d $dir ]] || continue
        for file in "$dir"/*.module; do
            [[ -e $file ]] || continue
            file=${file##*/}
            printf '%s\n' "${file%.module}"
        done
    done
}

_p11vault_files() {
    local IFS=$'\n'
    compopt -o filenames 2>/dev/null
    COMPREPLY+=($(compgen -f -- "$1"))
}

_p11vault_dirs() {
    local IFS=$'\n'
    compopt -o filenames 2>/dev/null
    COMPREPLY+=($(compgen -d -- "$1"))
}

# A secret source: env:VAR, file:PATH, fd:N, stdin; --password also
# shares:FILE,FILE,...  pass: works but is not offered (argv is public).
_p11vault_secret_source() {
    local option=$1 cur=$2 item
    local IFS=$'\n'  # file and variable names, one a line
    case $cur in
        env:*)
            for item in $(compgen -e -- "${cur#env:}"); do
                COMPREPLY+=("env:$item")
            done ;;
        file:*)
            compopt -o filenames 2>/dev/null
            for item in $(compgen -f -- "${cur#file:}"); do
                COMPREPLY+=("file:$item")
            done ;;
        fd:*) ;;
        shares:*)
            [[ $option == --password ]] || return
            local given=${cur#shares:} done_part=''
            [[ $given == *,* ]] && done_part=${given%,*},
            compopt -o nospace 2>/dev/null
            for item in $(compgen -f -- "${given##*,}"); do
                COMPREPLY+=("shares:$done_part$item")
            done ;;
        *)
            local sources=$'env:\nfile:\nfd:\nstdin'
            [[ $option == --password ]] && sources+=$'\nshares:'
            COMPREPLY=($(compgen -W "$sources" -- "$cur"))
            [[ ${#COMPREPLY[@]} -eq 1 && ${COMPREPLY[0]} == stdin ]] ||
                compopt -o nospace 2>/dev/null ;;
    esac
}

# Completes the value of option $1 from the text $2.
_p11vault_value() {
    local option=$1 cur=$2
    case $option in
        --in | --out | --chain | --record | --share | --recipient | --escrow-share)
            _p11vault_files "$cur" ;;
        --out-dir)
            _p11vault_dirs "$cur" ;;
        --module | --from-module | --to-module)
            if [[ $cur != */* ]]; then
                COMPREPLY+=($(compgen -W "$(_p11vault_p11kit_modules)" -- "$cur"))
            fi
            _p11vault_files "$cur" ;;
        --token | --from-token | --to-token)
            [[ $cur == pkcs11:* ]] ||
                { COMPREPLY=($(compgen -W "pkcs11:" -- "$cur")); compopt -o nospace 2>/dev/null; } ;;
        --profile)
            COMPREPLY=($(compgen -W "modern fips legacy" -- "$cur")) ;;
        --on-conflict)
            COMPREPLY=($(compgen -W "fail skip replace" -- "$cur")) ;;
        --sheet)
            COMPREPLY=($(compgen -W "pdf html" -- "$cur")) ;;
        --pin | --password | --from-pin | --to-pin | --new-password | --recipient-pin)
            _p11vault_secret_source "$option" "$cur" ;;
        *) ;;  # labels, ids, numbers, init strings: nothing to offer
    esac
}

_p11vault() {
    COMPREPLY=()
    # Re-join what COMP_WORDBREAKS split at ':' and '=' (env:VAR, --pin=SRC),
    # so that `words` holds the words as p11vault will see them.
    local -a words=()
    local i word n=0 joined_last=0
    for ((i = 0; i <= COMP_CWORD; i++)); do
        word=${COMP_WORDS[i]}
        if ((n > 0)) && [[ $word == : || ${words[n - 1]} == *: ]] &&
            [[ ${words[n - 1]} != --* || $word == : ]]; then
            words[n - 1]+=$word
            ((i == COMP_CWORD)) && joined_last=1
        else
            words[n++]=$word
        fi
    done
    local cur=${words[n - 1]} prev=''
    ((n > 1)) && prev=${words[n - 2]}
    if [[ $cur == = ]]; then
        cur=
    elif [[ $prev == = ]] && ((n > 2)); then
        prev=${words[n - 3]}
    fi
    local option_prefix=''
    if [[ $cur == --*=* ]]; then  # --pin=env:X as one word ('=' not a break)
        prev=${cur%%=*}
        option_prefix=$prev=
        cur=${cur#*=}
    fi

    # The subcommand: the first word that is not an option.
    local sub='' j
    for ((j = 1; j < n - 1; j++)); do
        case ${words[j]} in
            -*) ;;
            *) sub=${words[j]}; break ;;
        esac
    done

    if [[ -z $sub ]]; then
        COMPREPLY=($(compgen -W "$_p11vault_subcommands $_p11vault_global_options" -- "$cur"))
    elif _p11vault_takes_value "$prev"; then
        _p11vault_value "$prev" "$cur"
    elif [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$(_p11vault_options_of "$sub")" -- "$cur"))
    elif [[ $sub == record-check ]]; then
        _p11vault_files "$cur"
    fi

    # bash inserts only the text after the last ':' of the word when ':' is a
    # word break: drop what the line already holds.
    if ((joined_last)) && [[ $cur == *:* && $COMP_WORDBREAKS == *:* ]]; then
        local colon_prefix=${cur%"${cur##*:}"}
        for i in "${!COMPREPLY[@]}"; do
            COMPREPLY[i]=${COMPREPLY[i]#"$colon_prefix"}
        done
    elif [[ -n $option_prefix ]]; then
        for i in "${!COMPREPLY[@]}"; do
            COMPREPLY[i]=$option_prefix${COMPREPLY[i]}
        done
    fi
    return 0
}

complete -F _p11vault p11vault
