#!/usr/bin/env bash
# utils/parse_options.sh: turn a script's --name value options into its shell variables.
#
# Usage, inside a bash script (after its defaults, before it reads its positional arguments):
#
#   stage=1              # first stage to run
#   stop_stage=100
#   use_gpu=false
#   help_message="Usage: $0 [options] <data-dir>"
#   . utils/parse_options.sh || exit 1
#   # "$@" now holds the positional arguments only.
#
# Rules (Kaldi's parse_options.sh, plus the --name=value form):
#   --name value, --name=value   set the shell variable `name`; it must already be set (a
#                                default), otherwise this is an error that lists the script's
#                                options. Hyphens become underscores: --stop-stage 3 is
#                                --stop_stage 3.
#   booleans                     a variable whose current value is true or false only takes
#                                true or false.
#   --help, -h                   print $help_message, then every option with its current value,
#                                and exit 0.
#   --                           end of the options; what follows stays positional.
#   The first argument that does not start with -- ends the options.
#   An empty --cmd value is an error, as it is always a scripting mistake.
# The options listed by --help and in errors are the script's top-level assignments (lines
# `name=...` at the start of a line before the line that sources this file) whose variables
# are set; names in capitals only (PATH, SECONDS, ...) are left out of the list.
# Running this file (instead of sourcing it) prints this text.

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    sed -n '2,/^$/s/^# \{0,1\}//p' "$0"
    exit 0
fi

_po_script="${BASH_SOURCE[1]:-$0}"

# Names of the options the sourcing script declares (see the header).
_po_known_options() {
    # Locals carry a prefix so that they cannot hide a script variable of the same name.
    local _po_n
    [ -r "${_po_script}" ] || return 0
    while IFS= read -r _po_n; do
        if [[ "${_po_n}" != help_message && "${_po_n}" =~ [a-z] && -n "${!_po_n+x}" ]]; then
            printf '%s\n' "${_po_n}"
        fi
    done < <(awk '
        /^[[:space:]]*(\.|source)[[:space:]].*parse_options\.sh/ { exit }
        /^[A-Za-z_][A-Za-z0-9_]*=/ { sub(/=.*/, ""); if (!seen[$0]++) print }
    ' "${_po_script}")
}

_po_print_help() {
    local _po_n
    if [ -n "${help_message:-}" ]; then
        printf '%s\n' "${help_message}"
    else
        echo "Usage: $0 [options] ..."
    fi
    echo
    echo "Options (current values):"
    while IFS= read -r _po_n; do
        printf '  --%s %q\n' "${_po_n}" "${!_po_n}"
    done < <(_po_known_options)
}

_po_fail() {
    echo "$0: $1" 1>&2
    echo "$0: known options: $(_po_known_options | sed 's/^/--/' | paste -sd ' ' -)" 1>&2
    echo "$0: run '$0 --help' for the usage" 1>&2
    exit 1
}

while [ $# -gt 0 ]; do
    case "$1" in
        --help|-h)
            _po_print_help
            exit 0
            ;;
        --)
            shift
            break
            ;;
        --*)
            if [[ "$1" == *=* ]]; then
                _po_name="${1%%=*}"
                _po_value="${1#*=}"
                _po_shift=1
            else
                [ $# -ge 2 ] || _po_fail "option $1 needs a value"
                _po_name="$1"
                _po_value="$2"
                _po_shift=2
            fi
            _po_name="${_po_name#--}"
            _po_name="${_po_name//-/_}"
            # The name check guards the indirect expansion against arbitrary text.
            if ! [[ "${_po_name}" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || [ -z "${!_po_name+x}" ]; then
                _po_fail "unknown option '${1%%=*}'"
            fi
            if [[ "${!_po_name}" == true || "${!_po_name}" == false ]] \
                && [[ "${_po_value}" != true && "${_po_value}" != false ]]; then
                _po_fail "option ${1%%=*} expects true or false, got '${_po_value}'"
            fi
            printf -v "${_po_name}" '%s' "${_po_value}" || _po_fail "cannot set ${_po_name}"
            shift "${_po_shift}"
            ;;
        *)
            break
            ;;
    esac
done

if [ -n "${cmd+x}" ] && [ -z "${cmd}" ]; then
    _po_fail "empty value of --cmd"
fi

unset _po_name _po_value _po_shift _po_script
unset -f _po_known_options _po_print_help _po_fail
true
