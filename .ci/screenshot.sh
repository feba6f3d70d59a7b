#!/usr/bin/env bash
# Take the README screenshot from a real `depthagg --demo` run: the dashboard runs in a private
# tmux server at 160×48, the coloured screen is read with `tmux capture-pane -e -p` once all four
# venues are live and a snapshot has been written, and .ci/ansi_to_png.py draws it cell by cell
# in DejaVu Sans Mono.
#
# Usage: .ci/screenshot.sh [OUT.png]   (default: assets/dashboard-demo.png)
# Env: DEPTHAGG_BIN (default: target/debug/depthagg, built if missing), COLS, ROWS, FONT_PX.
# Needs tmux, fonts-dejavu-core and Pillow; installs the Debian packages when run as root.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$repo/assets/dashboard-demo.png}
cols=${COLS:-160} rows=${ROWS:-48} font_px=${FONT_PX:-14}
bin=${DEPTHAGG_BIN:-$repo/target/debug/depthagg}
max_bytes=$((400 * 1024))
export LC_ALL=C.UTF-8
unset TMUX

pillow_python() {
  local py
  for py in python3 /usr/bin/python3; do
    if command -v "$py" >/dev/null && "$py" -c 'import PIL' 2>/dev/null; then
      echo "$py"
      return 0
    fi
  done
  return 1
}

need_apt=()
command -v tmux >/dev/null || need_apt+=(tmux)
[[ -f /usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf ]] || need_apt+=(fonts-dejavu-core)
pillow_python >/dev/null || need_apt+=(python3-pil)
if ((${#need_apt[@]})); then
  [[ $(id -u) == 0 ]] || { echo "missing: ${need_apt[*]} (apt-get install them)" >&2; exit 1; }
  apt-get update -qq && apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
py=$(pillow_python) || { echo "Pillow is not importable" >&2; exit 1; }
if [[ ! -x $bin ]]; then
  (cd "$repo" && cargo build --locked --bin depthagg)
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/depthagg-shot.XXXXXX")
sock="depthagg-shot-$$-$RANDOM"
socket_path=
tm() { tmux -L "$sock" "$@"; }
cleanup() {
  tm kill-server >/dev/null 2>&1 || true
  [[ -n $socket_path ]] && rm -f "$socket_path"
  rm -rf "$work"
}
trap cleanup EXIT

# --interval 5 so the footer shows a written snapshot within the wait; run in the temporary
# directory so the footer shows the default file name and nothing is written in the repo.
cat >"$work/pane.sh" <<EOF
for v in \$(compgen -e | grep '^DEPTHAGG_'); do unset "\$v"; done
cd "$work" && "$bin" --demo --interval 5 --out agg_snapshot.csv
echo "depthagg exited with status \$?"
exec sleep 600
EOF
tm -f /dev/null new-session -d -s shot -x "$cols" -y "$rows" "bash --norc --noprofile $work/pane.sh"
socket_path=$(tm display -p '#{socket_path}')
tm set-option -t shot status off >/dev/null
started=$SECONDS

# Ready: all four venues live and a snapshot written, and at least 6 s in so rates have settled.
ready() {
  local screen
  screen=$(tm capture-pane -p -t shot)
  for v in '1 binance' '2 coinbase' '3 kraken' '4 bitfinex'; do
    grep -Eq "^$v +live " <<<"$screen" || return 1
  done
  grep -Eq '^csv: [0-9]{2}:[0-9]{2}:[0-9]{2} ' <<<"$screen" && ((SECONDS - started >= 6))
}
until ready; do
  if ((SECONDS - started > 40)); then
    echo "the dashboard did not get ready within 40 s; screen:" >&2
    tm capture-pane -p -t shot >&2
    exit 1
  fi
  sleep 0.5
done
tm capture-pane -e -p -t shot >"$work/screen.ans"
sed 's/\x1b\[[0-9;:]*m//g' "$work/screen.ans"
tm send-keys -t shot q

mkdir -p "$(dirname "$out")"
"$py" "$repo/.ci/ansi_to_png.py" "$work/screen.ans" "$out" "$cols" "$rows" "$font_px"
bytes=$(stat -c %s "$out")
echo "wrote $out ($bytes bytes, ${cols}×${rows} cells)"
((bytes < max_bytes)) || { echo "$out is over $max_bytes bytes" >&2; exit 1; }
