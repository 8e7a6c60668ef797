#!/usr/bin/env bash
# Deep fuzzing on demand (CI runs the bounded variant in `cargo test`, see tests/fuzzing.rs).
#
#   fuzz/run.sh [SECONDS] [TARGET...]      default: 120 s for each target in fuzz/Cargo.toml
#
# Seeds each target from the test fixtures named in fuzz/seeds.txt (copied to fuzz/seeds/, not
# committed), runs it, and merges the inputs that reach code the seeds and the committed corpus
# do not into fuzz/corpus/<target>, the corpus to commit: at most KEEP (default 40) of them, the
# smallest, each under 8 KB, so the repository keeps a regression set rather than a fuzzer's
# working set. Crashes land in fuzz/artifacts/<target>/;
# `cargo fuzz run <target> <file>` replays one. Needs `cargo install cargo-fuzz`; works on
# stable Rust: RUSTC_BOOTSTRAP lets it pass libFuzzer's -Z flags, and without nightly there is
# no AddressSanitizer (Rust code is memory safe; panics, hangs and OOMs are still caught).
set -euo pipefail
cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1

secs="${1:-120}"
[ "$#" -gt 0 ] && shift
if [ "$#" -gt 0 ]; then targets=("$@"); else mapfile -t targets < <(cargo fuzz list); fi
flags=(-O --sanitizer none)
keep="${KEEP:-40}"
bin="target/x86_64-unknown-linux-gnu/release"

# Built once, then run directly: `cargo fuzz run` would rebuild whenever the tree changes.
cargo fuzz build "${flags[@]}"
for target in "${targets[@]}"; do
  rm -rf "seeds/$target" "work/$target"
  mkdir -p "seeds/$target" "work/$target" "corpus/$target"
  while read -r name folder suffix; do
    [ "$name" = "$target" ] || continue
    [ -d "../$folder" ] || { echo "seeds for $target: ../$folder not found" >&2; continue; }
    while IFS= read -r -d '' file; do
      cp "$file" "seeds/$target/$(sha1sum < "$file" | cut -c1-16)"
    done < <(find "../$folder" -type f -name "*$suffix" -print0)
  done < <(grep -v '^#' seeds.txt)

  echo "== $target: $(ls "seeds/$target" | wc -l) seeds, $(ls "corpus/$target" | wc -l) in corpus, ${secs}s"
  mkdir -p "artifacts/$target"
  "$bin/$target" -artifact_prefix="artifacts/$target/" -max_total_time="$secs" -timeout=10 \
    -rss_limit_mb=2048 -max_len=262144 -print_final_stats=1 \
    "work/$target" "corpus/$target" "seeds/$target" || echo "== $target: CRASH, see fuzz/artifacts/$target/"

  # Keep only what adds coverage beyond the seeds and the committed corpus.
  base=$(mktemp -d)
  cp "seeds/$target/." "$base/" -r
  cp "corpus/$target/." "$base/" -r
  ls "$base" | sort > "$base.before"
  "$bin/$target" -merge=1 -timeout=10 "$base" "work/$target" 2>/dev/null || true
  ls "$base" | sort | comm -13 "$base.before" - | while read -r new; do
    size=$(stat -c %s "$base/$new")
    [ "$size" -lt 8192 ] && echo "$size $new"
  done | sort -n | head -n "$keep" | while read -r _ new; do
    cp "$base/$new" "corpus/$target/$new"
  done || true  # head closing the pipe early is expected
  echo "== $target: corpus now $(ls "corpus/$target" | wc -l) inputs"
  rm -rf "$base" "$base.before"
done
