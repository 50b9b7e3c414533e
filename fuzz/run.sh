#!/bin/sh
# Runs one fuzz target the way fuzz/README.md reports it: niced, one job, one worker,
# from fuzz/seeds/TARGET into fuzz/corpus/TARGET (not in git), crashes into
# fuzz/artifacts/TARGET, libFuzzer's log into fuzz/logs/TARGET.log.
#   fuzz/run.sh TARGET [SECONDS] [extra libFuzzer flags...]
set -eu
t=$1; secs=${2:-300}; shift; [ $# -gt 0 ] && shift
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
nice -n 19 cargo fuzz build "$t" >/dev/null
mkdir -p "corpus/$t" "artifacts/$t" logs
cd logs
rm -f fuzz-0.log
# -jobs=1 makes libFuzzer write its output to ./fuzz-0.log.
nice -n 19 "$here/target/x86_64-unknown-linux-gnu/release/$t" -jobs=1 -workers=1 \
  -max_total_time="$secs" -artifact_prefix="$here/artifacts/$t/" -print_final_stats=1 "$@" \
  "$here/corpus/$t" "$here/seeds/$t" || echo "exit status $?" >> fuzz-0.log
mv fuzz-0.log "$t.log"
