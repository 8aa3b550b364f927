#!/usr/bin/env bash
# Build the peer Sigma engines that benchmarks/peers/detect.py runs beside secmon, from their sources.
#
#   benchmarks/peers/setup.sh [--peers DIR] [--from NAME=PATH ...] [--git URL=PATH ...] [NAME ...]
#
# NAME: zircolite, chainsaw, hayabusa, hayabusa-rules, sigma-to-hayabusa-converter (default: all).
# Each source is cloned at the release tag pinned below from its public GitHub repository, or,
# with --from NAME=PATH, from a local checkout or bare git directory of it (a machine that cannot
# reach GitHub). --git URL=PATH does the same for a git dependency of a Rust build (Cargo.lock's
# "git+URL"), through git's url.<PATH>.insteadOf for this script's commands only. Builds need cargo (crates.io) for Chainsaw and Hayabusa, and python3 with venv
# (PyPI) for Zircolite and the converter. A peer already built is left as it is; delete its folder
# to rebuild it. The layout written is the one benchmarks/peers/engines.py looks for.
set -euo pipefail

declare -A REPOS=(
    [zircolite]=https://github.com/wagga40/Zircolite
    [chainsaw]=https://github.com/WithSecureLabs/chainsaw
    [hayabusa]=https://github.com/Yamato-Security/hayabusa
    [hayabusa-rules]=https://github.com/Yamato-Security/hayabusa-rules
    [sigma-to-hayabusa-converter]=https://github.com/Yamato-Security/sigma-to-hayabusa-converter
)
# The versions the numbers in issue notes were measured with; an empty tag means the default branch.
declare -A TAGS=(
    [zircolite]=v3.7.0
    [chainsaw]=v2.16.4
    [hayabusa]=v4.0.0
    [hayabusa-rules]=v3.6.0
    [sigma-to-hayabusa-converter]=
)
ORDER=(zircolite chainsaw hayabusa hayabusa-rules sigma-to-hayabusa-converter)

peers_dir="${HOME}/.cache/secmon/peers"
declare -A local_sources=()
rewrites=() # PATH URL pairs
wanted=()
while (($#)); do
    case "$1" in
        --peers) peers_dir="$2"; shift 2 ;;
        --from)
            name="${2%%=*}"
            [[ -n "${REPOS[$name]+x}" ]] || { echo "setup.sh: --from $2: unknown peer '$name'" >&2; exit 2; }
            local_sources[$name]="${2#*=}"
            shift 2 ;;
        --git)
            rewrites+=("${2#*=}" "${2%%=*}")
            shift 2 ;;
        -h | --help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *)
            [[ -n "${REPOS[$1]+x}" ]] || { echo "setup.sh: unknown peer '$1' (one of: ${ORDER[*]})" >&2; exit 2; }
            wanted+=("$1"); shift ;;
    esac
done
((${#wanted[@]})) || wanted=("${ORDER[@]}")
if ((${#rewrites[@]})); then
    # Cargo fetches git dependencies with its own library unless told to use git, which reads these.
    export CARGO_NET_GIT_FETCH_WITH_CLI=true GIT_CONFIG_COUNT=$((${#rewrites[@]} / 2))
    for ((i = 0; i < ${#rewrites[@]}; i += 2)); do
        export "GIT_CONFIG_KEY_$((i / 2))=url.${rewrites[i]}.insteadOf" "GIT_CONFIG_VALUE_$((i / 2))=${rewrites[i + 1]}"
    done
fi
mkdir -p "$peers_dir"

fetch_source() { # name -> $peers_dir/name at its pinned tag
    local name="$1" target="$peers_dir/$1" origin="${local_sources[$1]:-${REPOS[$1]}}" tag="${TAGS[$1]:-HEAD}"
    if [[ -d "$target" ]]; then
        echo "· $name: $target is there"
        return
    fi
    echo "· $name: cloning $origin at $tag"
    git clone --quiet --no-checkout "$origin" "$target"
    # A partial mirror (its largest files listed but absent) checks out everything else; git says
    # so on stderr but exits 0. None of the peers needs those (prebuilt rule packs, archives).
    git -C "$target" -c advice.detachedHead=false checkout --quiet "$tag" 2>/dev/null
    local missing
    missing=$(git -C "$target" status --porcelain | sed -n 's/^ D //p' | tr '\n' ' ')
    [[ -z "$missing" ]] || echo "  absent from $origin, left out: $missing"
}

python_venv() { # folder, pip arguments...
    local folder="$1"; shift
    [[ -x "$folder/.venv/bin/python" ]] || python3 -m venv "$folder/.venv"
    "$folder/.venv/bin/pip" install --quiet --disable-pip-version-check "$@"
}

for name in "${wanted[@]}"; do
    fetch_source "$name"
    folder="$peers_dir/$name"
    case "$name" in
        zircolite)
            python_venv "$folder" -r "$folder/requirements.txt" ;;
        chainsaw | hayabusa)
            if [[ ! -x "$folder/target/release/$name" ]]; then
                echo "· $name: cargo build --release (several minutes)"
                (cd "$folder" && cargo build --release --locked --quiet)
            fi ;;
        sigma-to-hayabusa-converter)
            # Its one run-time dependency (pyproject.toml, poetry); the runner uses this .venv when it is there.
            python_venv "$folder" "ruamel.yaml>=0.18.5,<0.19" ;;
    esac
    echo "✓ $name"
done
