#!/usr/bin/env bash
# check-includes.sh - checks the include graph of the modules (proto, store, gossip, node,
# client): fails (exit 1) on a circle among the files of one folder (foo.c and foo.h count as
# one node "foo"; an edge is an #include "..." of a header of the same folder) and on an
# include that breaks the module rules of the READMEs:
#   proto  includes nothing of ours
#   store  may include proto
#   gossip may include proto
#   node   may include proto, store, gossip
#   client may include proto, gossip/hrw.h, store/ufs*.h
#   nothing outside node/ includes node/
# A header without a .c of its own name (shared declarations such as gossip/swim_int.h,
# store/pagestore_backend.h, client/ctx.h) holds nothing to call, so its includes are type
# dependencies and do not make edges: circles are about which file calls which.
# Prints every finding before it exits. Only `#include "..."` lines count (<...> are system).
# A quoted include resolves as the compiler does: the including file's folder first (and, for
# client/, client/include/), then proto, store, gossip, client/include, client, node.
set -uo pipefail
cd "$(dirname "$0")/.."

modules=(proto store gossip node client)
search=(proto store gossip client/include client node)
declare -A allowed=(
    [proto]=""
    [store]="proto"
    [gossip]="proto"
    [node]="proto store gossip"
    [client]="proto gossip:hrw.h store:ufs*.h"
)
findings=0

# The folder ("module") that `#include "$2"` from a file of module $1 reaches, or "" when it is
# not ours.
resolve() {
    local from=$1 header=$2 dir
    if [ -f "$from/$header" ] || { [ "$from" = client ] && [ -f "client/include/$header" ]; }; then
        echo "$from"
        return
    fi
    for dir in "${search[@]}"; do
        if [ -f "$dir/$header" ]; then
            echo "${dir%%/*}"
            return
        fi
    done
    echo ""
}

# Whether module $1 may include header $3 of module $2.
may_include() {
    local from=$1 to=$2 header=$3 rule
    for rule in ${allowed[$from]}; do
        case $rule in
        *:*)
            # shellcheck disable=SC2254
            [ "${rule%%:*}" = "$to" ] && case $header in ${rule#*:}) return 0 ;; esac
            ;;
        *) [ "$rule" = "$to" ] && return 0 ;;
        esac
    done
    return 1
}

declare -A edges   # "module/node" -> space-separated nodes of the same module it includes
declare -A via     # "module/node>target" -> the file and line that makes the edge
for module in "${modules[@]}"; do
    [ -d "$module" ] || continue
    while IFS= read -r file; do
        base=$(basename "$file")
        node=${base%.*}
        while IFS= read -r line; do
            header=$(sed -E 's/^[[:space:]]*#[[:space:]]*include[[:space:]]+"([^"]+)".*/\1/' <<<"$line")
            header=${header##*/}
            to=$(resolve "$module" "$header")
            [ -n "$to" ] || continue
            if [ "$to" = "$module" ]; then
                case $file in *.h) [ -f "${file%.h}.c" ] || continue ;; esac
                target=${header%.h}
                [ "$target" = "$node" ] && continue
                [ -f "$module/$header" ] || continue # client/include/: the public API
                case " ${edges[$module/$node]:-} " in
                *" $target "*) ;;
                *) edges[$module/$node]="${edges[$module/$node]:-} $target" ;;
                esac
                via[$module/$node\>$target]="$file"
            elif ! may_include "$module" "$to" "$header"; then
                echo "rule: $file includes $to/$header (${module} may include: ${allowed[$module]:-nothing of ours})"
                findings=$((findings + 1))
            fi
        done < <(grep -E '^[[:space:]]*#[[:space:]]*include[[:space:]]+"' "$file")
    done < <(find "$module" -maxdepth 2 \( -name '*.c' -o -name '*.h' \) -not -path '*/python/*' | sort)
done

# Circles: depth-first search per module, white/grey/black; a grey target closes a circle.
declare -A colour
declare -a stack
declare -A reported
visit() {
    local key=$1 module=${1%%/*} target
    colour[$key]=grey
    stack+=("${key#*/}")
    for target in ${edges[$key]:-}; do
        local next="$module/$target"
        case ${colour[$next]:-white} in
        white) visit "$next" ;;
        grey)
            local cycle="" i start=-1
            for i in "${!stack[@]}"; do
                [ "${stack[$i]}" = "$target" ] && start=$i
            done
            for ((i = start; i < ${#stack[@]}; i++)); do
                cycle+="${stack[$i]} -> "
            done
            cycle+="$target"
            if [ -z "${reported[$module:$cycle]:-}" ]; then
                reported[$module:$cycle]=1
                echo "circle in $module/: $cycle (closed by ${via[$key\>$target]})"
                findings=$((findings + 1))
            fi
            ;;
        esac
    done
    unset 'stack[${#stack[@]}-1]'
    colour[$key]=black
}
for key in $(printf '%s\n' "${!edges[@]}" | sort); do
    [ "${colour[$key]:-white}" = white ] && visit "$key"
done

if [ "$findings" -gt 0 ]; then
    echo "check-includes: $findings finding(s)"
    exit 1
fi
echo "check-includes: no circles, every include within the module rules"
