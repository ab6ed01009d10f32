#!/usr/bin/env bash
# Builds the libFuzzer targets (clang-14, ASan, UBSan; the PTQ_FUZZ configuration) and runs
# each one on its seed corpus (fuzz/corpus/TARGET) and on every input that once crashed it
# (fuzz/regressions/TARGET), then fuzzes it for SECONDS. Exit 0 when no target crashed, leaked,
# or ran out of time or memory on an input; otherwise 1, naming the input libFuzzer saved.
#
#   fuzz/run.sh [--seconds N] [--build-dir DIR] [--keep-corpus DIR] [TARGET...]
#
# CTest runs it briefly (fuzz_smoke); a longer campaign is e.g. `fuzz/run.sh --seconds 600
# --keep-corpus /var/tmp/ptq-fuzz-corpus`. A crash becomes a regression: copy the saved input
# into fuzz/regressions/TARGET/ with the fix.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=30
build_dir=build-fuzz
keep_corpus=
targets=()
while (($#)); do
  case $1 in
    --seconds) seconds=$2; shift 2 ;;
    --build-dir) build_dir=$2; shift 2 ;;
    --keep-corpus) keep_corpus=$2; shift 2 ;;
    -*) echo "fuzz/run.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
((${#targets[@]})) || targets=(fuzz_job_config_json fuzz_job_config_proto fuzz_calibration_batch fuzz_idx
                              fuzz_model_archive)

cmake -S . -B "$build_dir" -G Ninja -DPTQ_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER=clang++-14 > /dev/null
cmake --build "$build_dir" --target "${targets[@]}"

work=$(mktemp -d /tmp/ptq-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
failed=()
for target in "${targets[@]}"; do
  corpus=${keep_corpus:+$keep_corpus/$target}
  corpus=${corpus:-$work/corpus/$target}
  mkdir -p "$corpus" "$work/artifacts" "fuzz/regressions/$target"
  # Inputs a target writes for itself (the data root of fuzz_job_config_proto, the IDX file
  # of fuzz_idx) go under TMPDIR, which is the work folder.
  echo "==> $target: ${seconds} s"
  if ! TMPDIR=$work "$build_dir/fuzz/$target" "$corpus" "fuzz/corpus/$target" "fuzz/regressions/$target" \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
      -artifact_prefix="$work/artifacts/$target-" -print_final_stats=1 2> "$work/$target.log"; then
    tail -40 "$work/$target.log"
    saved=$(mkdir -p /var/tmp/ptq-fuzz-artifacts && cp -v "$work"/artifacts/"$target"-* /var/tmp/ptq-fuzz-artifacts/ 2>&1 || true)
    echo "fuzz/run.sh: $target failed; the input it failed on: $saved" >&2
    failed+=("$target")
    continue
  fi
  grep -E "^stat::(number_of_executed_units|new_units_added)|^#[0-9]+.*DONE" "$work/$target.log" || true
  echo "    corpus: $(find "$corpus" -type f | wc -l) inputs"
done
((${#failed[@]} == 0)) || { echo "fuzz/run.sh: failed: ${failed[*]}" >&2; exit 1; }
echo "fuzz/run.sh: ${#targets[@]} targets, ${seconds} s each, no crash"
