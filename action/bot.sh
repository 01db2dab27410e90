#!/usr/bin/env bash
# How the shipbot action (action.yml) gets its `bot` binary, with nothing
# published beforehand:
#
#   bot.sh resolve   Find bot for the action's ref and say so in GITHUB_OUTPUT:
#                    path=<bot> when it is at hand (built from this very source
#                    earlier on this runner, or the release binary published
#                    for the ref, downloaded and checked against the release's
#                    checksums.txt); always build-path, build-dir, cache-key
#                    and go-mod for building it when it is not.
#   bot.sh build D   Build bot from the action's own checkout into D: the static
#                    binary the release workflow and the Dockerfile build.
#   bot.sh key       Print the build's cache key.
#
# The runner keeps an action's files at _actions/<owner>/<repo>/<ref>/, so the
# repository root is the parent of this script's directory. Environment read:
# ACTION_REPOSITORY and ACTION_REF (github.action_repository / action_ref, which
# composite actions are not always given: then they are read from that path),
# GH_TOKEN (to find the release of a ref that is not a version tag),
# GITHUB_SERVER_URL, RUNNER_OS, RUNNER_ARCH, RUNNER_TOOL_CACHE, RUNNER_TEMP,
# GITHUB_OUTPUT, and SHIPBOT_ACTION_DOWNLOAD_URL (where releases are downloaded
# from instead of <server>/<repo>/releases/download, for a mirror or a test).
set -euo pipefail

action_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$action_dir/.." && pwd)

say() { echo "shipbot action: $*" >&2; }

if command -v sha256sum >/dev/null 2>&1; then
  sha=(sha256sum)
else
  sha=(shasum -a 256) # macOS
fi

# The runner's OS and architecture as Go (and the release archives) name them.
read -r os arch < <(
  case "${RUNNER_OS:-$(uname -s)}" in
    Linux) o=linux ;; macOS | Darwin) o=darwin ;; Windows | MINGW* | MSYS*) o=windows ;; *) o=other ;;
  esac
  case "${RUNNER_ARCH:-$(uname -m)}" in
    X64 | x86_64 | amd64) a=amd64 ;; ARM64 | arm64 | aarch64) a=arm64 ;; *) a=other ;;
  esac
  echo "$o $a"
)
exe=""
if [ "$os" = windows ]; then exe=.exe; fi

# source_hash identifies the source bot is built from: every file of the
# checkout but VCS metadata (the checkout is what go build sees).
source_hash() {
  (cd "$root" && find . -type f ! -path './.git/*' -print0 | LC_ALL=C sort -z | xargs -0 "${sha[@]}" | "${sha[@]}" | cut -c1-20)
}

cache_root() { echo "${RUNNER_TOOL_CACHE:-${RUNNER_TEMP:-${TMPDIR:-/tmp}}}/shipbot-action"; }

build() {
  local out=$1 version
  version=${SHIPBOT_VERSION:-source-$(source_hash)}
  mkdir -p "$out"
  cd "$root"
  # The runner's job may cross-compile (GOOS, GOARCH) or vendor (GOFLAGS)
  # for its own code: none of that applies to bot. Modules come through the
  # job's GOPROXY as for any Go build.
  env -u GOOS -u GOARCH -u GOFLAGS GOWORK=off CGO_ENABLED=0 \
    go build -trimpath -buildvcs=false -ldflags "-s -w -X main.version=$version" -o "$out/bot$exe" ./cmd/bot
  say "built $out/bot$exe ($version) with $(go version)"
}

# release_tag prints the release tag of the action's ref: the ref itself when
# it is a version tag (v1.2.3), else the version tag on the ref's commit (the
# major tag v1, a commit SHA), looked up with gh when it is there; nothing
# when there is none.
release_tag() {
  if [[ $ref =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
    echo "$ref"
    return
  fi
  if ! command -v gh >/dev/null 2>&1 || [ -z "${GH_TOKEN:-}" ]; then
    return
  fi
  local host=${GITHUB_SERVER_URL:-https://github.com} commit
  host=${host#https://}
  host=${host#http://}
  commit=$(GH_HOST=$host gh api "repos/$repo/commits/$ref" --jq .sha 2>/dev/null) || return 0
  GH_HOST=$host gh api "repos/$repo/tags?per_page=100" --jq ".[] | select(.commit.sha == \"$commit\") | .name" 2>/dev/null |
    grep -E '^v[0-9]+\.[0-9]+\.[0-9]+$' | head -n 1 || true
}

# download fetches the release archive of tag for this runner into dir and
# checks it against the release's checksums.txt; it fails, saying why, when
# either is missing or they disagree.
download() {
  local tag=$1 dir=$2 base archive tmp want got
  base=${SHIPBOT_ACTION_DOWNLOAD_URL:-${GITHUB_SERVER_URL:-https://github.com}/$repo/releases/download}/$tag
  archive="shipbot_${tag#v}_${os}_${arch}.tar.gz"
  tmp=$(mktemp -d "${RUNNER_TEMP:-${TMPDIR:-/tmp}}/shipbot-action.XXXXXX")
  if ! curl -fsSL --retry 3 -o "$tmp/checksums.txt" "$base/checksums.txt" ||
    ! curl -fsSL --retry 3 -o "$tmp/$archive" "$base/$archive"; then
    say "release $tag has no $archive and checksums.txt to download"
    rm -rf "$tmp"
    return 1
  fi
  want=$(awk -v f="$archive" '$2 == f || $2 == "*" f { print $1 }' "$tmp/checksums.txt")
  got=$("${sha[@]}" "$tmp/$archive" | cut -d' ' -f1)
  if [ -z "$want" ] || [ "$want" != "$got" ]; then
    echo "::warning title=shipbot action::$archive of release $tag does not match its checksums.txt (sha256 $got, listed ${want:-nowhere}): not used; building bot from source instead"
    rm -rf "$tmp"
    return 1
  fi
  mkdir -p "$tmp/x" "$dir"
  tar -xzf "$tmp/$archive" -C "$tmp/x" bot
  mv "$tmp/x/bot" "$dir/bot"
  chmod +x "$dir/bot"
  rm -rf "$tmp"
  say "using $archive of release $tag (sha256 $got, as its checksums.txt lists)"
}

resolve() {
  local hash key build_dir out=${GITHUB_OUTPUT:-/dev/stdout}
  hash=$(source_hash)
  key="shipbot-bot-$os-$arch-$hash"
  build_dir="$(cache_root)/source-$hash-$os-$arch"
  {
    echo "build-dir=$build_dir"
    echo "build-path=$build_dir/bot$exe"
    echo "cache-key=$key"
    echo "go-mod=$root/go.mod"
  } >>"$out"
  if [ -x "$build_dir/bot$exe" ]; then
    say "using bot built from this source earlier on this runner ($build_dir)"
    echo "path=$build_dir/bot$exe" >>"$out"
    return
  fi
  repo=${ACTION_REPOSITORY:-}
  ref=${ACTION_REF:-}
  if [ -z "$repo" ] || [ -z "$ref" ]; then
    # _actions/<owner>/<repo>/<ref>/: where the runner put this action.
    local up=${root%/}
    if [[ $up == */_actions/*/*/* ]]; then
      ref=${up##*/}
      up=${up%/*}
      repo="${up%/*}"
      repo="${repo##*/}/${up##*/}"
    fi
  fi
  if [ -z "$repo" ] || [ -z "$ref" ]; then
    say "the action's repository and ref are not known (a local action?): building bot from source"
    return
  fi
  if [ "$os" != linux ] && [ "$os" != darwin ] || [ "$arch" = other ]; then
    say "no release binary for $os/$arch: building bot from source"
    return
  fi
  local tag dir
  tag=$(release_tag)
  if [ -z "$tag" ]; then
    say "$repo@$ref is not a release: building bot from source"
    return
  fi
  dir="$(cache_root)/release-$tag-$os-$arch"
  if [ -x "$dir/bot" ] || download "$tag" "$dir"; then
    echo "path=$dir/bot" >>"$out"
    return
  fi
  say "building bot from source"
}

case "${1:-}" in
resolve) resolve ;;
build) build "${2:?usage: bot.sh build DIR}" ;;
key) echo "shipbot-bot-$os-$arch-$(source_hash)" ;;
*)
  echo "usage: bot.sh resolve | build DIR | key" >&2
  exit 2
  ;;
esac
