#!/usr/bin/env bash
# Measure what the dashboard costs: `depthagg --demo` (simulator in the same process, realistic
# rates) runs in a private tmux server at COLS×ROWS; after WARMUP seconds, the CPU time the
# process used over SECONDS seconds is read from /proc/PID/stat, and RSS from /proc/PID/status.
#
# Usage: .ci/dashboard_cpu.sh [SECONDS] [WARMUP]      (defaults: 30, 10)
# Env: DEPTHAGG_BIN (default: the release binary, built if missing), COLS, ROWS (160, 48).
# Prints one line: percent of one core, RSS at the start and end of the window; fails unless
# all four venues show live in the status panel at the end. Needs tmux.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-30} warmup=${2:-10}
cols=${COLS:-160} rows=${ROWS:-48}
bin=${DEPTHAGG_BIN:-$repo/target/release/depthagg}
if [[ ! $seconds =~ ^[0-9]+$ || ! $warmup =~ ^[0-9]+$ || $seconds -eq 0 ]]; then
  echo "usage: .ci/dashboard_cpu.sh [SECONDS] [WARMUP]" >&2
  exit 2
fi
command -v tmux >/dev/null || { echo "dashboard_cpu: tmux is needed (apt-get install tmux)" >&2; exit 1; }
if [[ -z ${DEPTHAGG_BIN:-} ]]; then
  (cd "$repo" && cargo build --release --locked --quiet --bin depthagg)
fi
[[ -x $bin ]] || { echo "dashboard_cpu: no executable at $bin" >&2; exit 1; }
bin=$(realpath "$bin")

export LC_ALL=C.UTF-8
unset TMUX
work=$(mktemp -d)
sock="$work/tmux.sock"
cleanup() {
  tmux -S "$sock" kill-server 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# The CSV goes to the scratch directory, not into the repository.
tmux -S "$sock" new-session -d -x "$cols" -y "$rows" \
  "cd '$work' && exec '$bin' --demo --out '$work/agg_snapshot.csv'"
pid=""
for _ in $(seq 50); do
  pid=$(tmux -S "$sock" list-panes -F '#{pane_pid}' 2>/dev/null | head -1 || true)
  [[ -n $pid && -r /proc/$pid/stat ]] && break
  sleep 0.1
done
[[ -n $pid && -r /proc/$pid/stat ]] || { echo "dashboard_cpu: the dashboard did not start" >&2; exit 1; }

ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
rss_mib() { awk '/^VmRSS:/ {printf "%.1f", $2 / 1024}' "/proc/$pid/status"; }
hz=$(getconf CLK_TCK)

sleep "$warmup"
kill -0 "$pid" 2>/dev/null || { echo "dashboard_cpu: the dashboard exited during warm-up" >&2; exit 1; }
t0=$(ticks) rss0=$(rss_mib) s0=$(date +%s.%N)
sleep "$seconds"
kill -0 "$pid" 2>/dev/null || { echo "dashboard_cpu: the dashboard exited while measured" >&2; exit 1; }
t1=$(ticks) rss1=$(rss_mib) s1=$(date +%s.%N)
# A figure for a dashboard whose venues are not live would not be the figure asked for: the
# status panel's four rows (`1 binance  live ...`) must all say live at the end of the window.
live=$(tmux -S "$sock" capture-pane -p | grep -c -E '^[1-4] (binance|coinbase|kraken|bitfinex) +live ' || true)
if [[ $live -ne 4 ]]; then
  echo "dashboard_cpu: $live of 4 venues live at the end of the window; no figure" >&2
  tmux -S "$sock" capture-pane -p >&2
  exit 1
fi

awk -v t0="$t0" -v t1="$t1" -v hz="$hz" -v s0="$s0" -v s1="$s1" -v r0="$rss0" -v r1="$rss1" \
  -v c="$cols" -v r="$rows" -v live="$live" 'BEGIN {
  printf "dashboard --demo at %dx%d: %.1f %% of one core over %.0f s; RSS %s MiB -> %s MiB; %d of 4 venues live\n",
    c, r, 100 * (t1 - t0) / hz / (s1 - s0), s1 - s0, r0, r1, live
}'
