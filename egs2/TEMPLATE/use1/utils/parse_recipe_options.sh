#!/usr/bin/env bash
# utils/parse_recipe_options.sh: options of a corpus recipe's run.sh, the rest left for use.sh.
#
# Usage, inside run.sh (after the recipe's defaults, before it calls use.sh):
#
#   librimix_dir=""     # LibriMix root (comment shown by --help)
#   num_src=2           # 2, 3 or both
#   recipe_options="librimix_dir num_src"
#   recipe_help="Usage: ./run.sh --librimix_dir <dir> [options]"
#   . utils/parse_recipe_options.sh || exit 1
#   ./use.sh ... "$@"
#
# Rules:
#   --name value, --name=value   for a name in $recipe_options: set that shell variable
#                                (hyphens become underscores, as in utils/parse_options.sh).
#   any other --name value       kept, with its value, in "$@" for use.sh, in the order
#                                given; use.sh's own parser then checks it.
#   --name=value, -- and what follows, and positional words are kept alone.
#   --help, -h                   print $recipe_help and run.sh's options with their current
#                                values and comments; --help stays in "$@" so that use.sh
#                                prints its stages and options next.
# use.sh's options all take a value, which is why a kept option takes the next word along:
# `--stage1_args "--num_src 3"` stays one option of use.sh.
# Running this file (instead of sourcing it) prints this text.

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    sed -n '2,/^$/s/^# \{0,1\}//p' "$0"
    exit 0
fi

_ro_script="${BASH_SOURCE[1]:-$0}"

# Whether $1 names one of the recipe's own options.
_ro_is_recipe_option() {
    local _ro_n
    for _ro_n in ${recipe_options:-}; do
        [ "${_ro_n}" = "$1" ] && return 0
    done
    return 1
}

_ro_print_help() {
    local _ro_n _ro_comment
    printf '%s\n\n' "${recipe_help:-Usage: $0 [options]}"
    echo "Options of ${0##*/} (current values):"
    for _ro_n in ${recipe_options:-}; do
        # The comment of the option's default assignment in run.sh, if any.
        _ro_comment=$(awk -v n="${_ro_n}" \
            'index($0, n "=") == 1 && /#/ { sub(/^[^#]*#[ ]*/, ""); print; exit }' \
            "${_ro_script}" 2>/dev/null || true)
        printf '  --%s %q%s\n' "${_ro_n}" "${!_ro_n}" "${_ro_comment:+    # ${_ro_comment}}"
    done
    echo
    echo "Every other option goes to use.sh (its help follows)."
    echo
}

_ro_rest=()
while [ $# -gt 0 ]; do
    case "$1" in
        --help|-h)
            _ro_print_help
            _ro_rest+=("$1")
            shift
            ;;
        --)
            _ro_rest+=("$@")
            break
            ;;
        --*=*)
            _ro_name="${1%%=*}"
            _ro_name="${_ro_name#--}"
            _ro_name="${_ro_name//-/_}"
            if _ro_is_recipe_option "${_ro_name}"; then
                printf -v "${_ro_name}" '%s' "${1#*=}"
            else
                _ro_rest+=("$1")
            fi
            shift
            ;;
        --*)
            _ro_name="${1#--}"
            _ro_name="${_ro_name//-/_}"
            if [ $# -lt 2 ]; then
                echo "$0: option $1 needs a value" >&2
                exit 1
            fi
            if _ro_is_recipe_option "${_ro_name}"; then
                printf -v "${_ro_name}" '%s' "$2"
            else
                _ro_rest+=("$1" "$2")
            fi
            shift 2
            ;;
        *)
            _ro_rest+=("$1")
            shift
            ;;
    esac
done
set -- ${_ro_rest[@]+"${_ro_rest[@]}"}

unset _ro_name _ro_rest _ro_script
unset -f _ro_is_recipe_option _ro_print_help
true
