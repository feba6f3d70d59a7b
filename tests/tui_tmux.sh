#!/usr/bin/env bash
# End-to-end check of the dashboard in a real terminal: runs `depthagg --demo` inside a private tmux
# server at 120×40, reads the screen with capture-pane, presses + - 1 1 q, and checks that the bin
# size changed, Binance was switched off and on, the process exited with status 0 and the terminal
# was restored (main screen, visible cursor, cooked mode).
#
# Usage: tests/tui_tmux.sh [PATH_TO_DEPTHAGG]   (default: target/debug/depthagg)
# Run by tests/tui_tmux.rs under `cargo nextest run`. Exits 0 when every check passed.
set -euo pipefail

bin=${1:-"$(dirname "$0")/../target/debug/depthagg"}
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
[[ -x $bin ]] || { echo "FAIL: no executable depthagg at $bin" >&2; exit 2; }
command -v tmux >/dev/null || { echo "FAIL: tmux is not installed" >&2; exit 2; }

# The dashboard draws UTF-8 (· ─ █); tmux and grep must read it as such whatever the caller's locale.
export LC_ALL=C.UTF-8
unset TMUX
# Each expectation is polled for up to this long; the 2-core CI machine may be busy building.
wait_s=${TUI_TMUX_WAIT_S:-20}
cols=120 rows=40

work=$(mktemp -d "${TMPDIR:-/tmp}/depthagg-tui.XXXXXX")
sock="depthagg-tui-$$-$RANDOM"
tm() { tmux -L "$sock" "$@"; }
socket_path=
cleanup() {
  tm kill-server >/dev/null 2>&1 || true
  # tmux 3.3 leaves the socket file behind after kill-server.
  [[ -n $socket_path ]] && rm -f "$socket_path"
  rm -rf "$work"
}
trap cleanup EXIT

checks=0
pass() { checks=$((checks + 1)); printf 'ok %2d  %s\n' "$checks" "$*"; }
fail() {
  printf 'FAIL   %s\n' "$*" >&2
  if [[ -s $work/screen ]]; then
    printf -- '--- last screen ---\n' >&2
    cat "$work/screen" >&2
    printf -- '-------------------\n' >&2
  fi
  exit 1
}

screen() { tm capture-pane -p -t dash >"$work/screen" 2>/dev/null || : >"$work/screen"; }

# Poll the screen until the extended regex matches a line, for at most wait_s seconds.
wait_for() {
  local what=$1 re=$2 deadline=$((SECONDS + wait_s))
  while :; do
    screen
    if grep -Eq -- "$re" "$work/screen"; then
      pass "$what"
      return 0
    fi
    ((SECONDS < deadline)) || fail "$what: no line matching /$re/ within ${wait_s}s"
    sleep 0.2
  done
}

# Poll until the screen has no line matching the regex.
wait_for_absent() {
  local what=$1 re=$2 deadline=$((SECONDS + wait_s))
  while :; do
    screen
    if ! grep -Eq -- "$re" "$work/screen"; then
      pass "$what"
      return 0
    fi
    ((SECONDS < deadline)) || fail "$what: a line still matches /$re/ after ${wait_s}s"
    sleep 0.2
  done
}

# Poll a tmux format (e.g. #{alternate_on}) until it equals the expected value.
wait_for_format() {
  local what=$1 format=$2 want=$3 deadline=$((SECONDS + wait_s)) got
  while :; do
    got=$(tm display -p -t dash "$format" 2>/dev/null || echo '?')
    if [[ $got == "$want" ]]; then
      pass "$what ($format = $got)"
      return 0
    fi
    ((SECONDS < deadline)) || fail "$what: $format is '$got', expected '$want' after ${wait_s}s"
    sleep 0.2
  done
}

# Poll until a file exists and is not empty.
wait_for_file() {
  local what=$1 file=$2 deadline=$((SECONDS + wait_s))
  while [[ ! -s $file ]]; do
    ((SECONDS < deadline)) || fail "$what: $file not written within ${wait_s}s"
    sleep 0.2
  done
}

press() {
  # -l sends the key as typed text; -- keeps "-" from being read as an option.
  tm send-keys -t dash -l -- "$1"
  printf '       pressed %s\n' "$1"
}

# The pane runs depthagg, then records its exit status and the terminal modes it left behind, and
# stays open (sleep) so the restored screen can be read. Settings from the caller's environment
# are cleared so the defaults (bin $10, Binance weight 0.50) hold.
cat >"$work/pane.sh" <<EOF
for v in \$(compgen -e | grep '^DEPTHAGG_'); do unset "\$v"; done
"$bin" --demo --out "$work/agg.csv" 2>"$work/stderr"
echo \$? >"$work/status.tmp"
stty -a >"$work/stty" 2>&1
mv "$work/status.tmp" "$work/status"
echo "depthagg exited with status \$(cat "$work/status")"
exec sleep 600
EOF

tm -f /dev/null new-session -d -s dash -x "$cols" -y "$rows" "bash --norc --noprofile $work/pane.sh"
socket_path=$(tm display -p '#{socket_path}')
tm set-option -t dash status off >/dev/null
echo "tmux $(tmux -V | cut -d' ' -f2), socket -L $sock, running $bin --demo --out $work/agg.csv"

wait_for_format "pane is ${cols}×${rows}" '#{pane_width}x#{pane_height}' "${cols}x${rows}"
# The header's second row starts with the bin size (render.rs render_header: "bin ${bin_size} · window …").
wait_for "header shows the default bin size: 'bin \$10 ·'" '^bin \$10 · window ±2%'
for venue in '1 binance' '2 coinbase' '3 kraken' '4 bitfinex'; do
  wait_for "venue panel: '$venue' is live and in sync" "^$venue +live .*in sync\$"
done
wait_for_format "dashboard is on the alternate screen" '#{alternate_on}' 1
wait_for_format "dashboard hides the cursor" '#{cursor_flag}' 0

press +
wait_for "after +, header shows 'bin \$20 ·'" '^bin \$20 · window'
press -
wait_for "after -, header shows 'bin \$10 ·' again" '^bin \$10 · window'

# Switched off, the weight column reads "0.50 off" and the reason "not in aggregate (switched off)"
# (render.rs VenueColumn::Weight and venue_reason).
press 1
wait_for "after 1, Binance row shows weight '0.50 off' and 'not in aggregate (switched off)'" \
  '^1 binance +live +0\.50 off .*not in aggregate \(switched off\)'
wait_for "after 1, the other venues stay in: '2 coinbase ... 0.20' without 'off'" \
  '^2 coinbase +live +0\.20 +[0-9.]+ .*in sync$'
press 1
wait_for "after 1 again, Binance row shows weight '0.50' and 'in sync'" \
  '^1 binance +live +0\.50 +[0-9.]+ .*in sync$'
wait_for_absent "after 1 again, no row says 'switched off'" 'switched off'

press q
wait_for_file "exit status recorded after q" "$work/status"
status=$(cat "$work/status")
[[ $status == 0 ]] || fail "depthagg exited with status $status, expected 0 (stderr: $(head -c 2000 "$work/stderr"))"
pass "depthagg exited with status 0"
wait_for_format "terminal left the alternate screen" '#{alternate_on}' 0
wait_for_format "cursor is visible again" '#{cursor_flag}' 1
# Raw mode turns off canonical input and echo; a restored terminal has both back.
grep -Eq '(^|[ ;])icanon([ ;]|$)' "$work/stty" || fail "terminal still in raw mode: $(cat "$work/stty")"
grep -Eq '(^|[ ;])echo([ ;]|$)' "$work/stty" || fail "terminal still without echo: $(cat "$work/stty")"
pass "terminal is back in cooked mode (stty shows icanon and echo)"
wait_for "pane shows the shell's line after depthagg" '^depthagg exited with status 0$'
wait_for_absent "pane no longer shows the dashboard (no 'bin \$', '─ venues', 'keys:' lines)" \
  '^bin \$|─ venues|^keys: '

echo "all $checks checks passed"
