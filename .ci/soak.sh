#!/usr/bin/env bash
# Fault soak: run `depthagg --demo --headless` for DURATION seconds with a seeded random schedule of
# faults on all four venues, and check it survives them (see .ci/soak_check.py for the checks).
#
#   .ci/soak.sh DURATION_SECS [SEED] [WORKDIR]
#
# DEPTHAGG_BIN picks the binary; without it the release binary is built (or found up to date) and
# used. SOAK_MALLOC=default runs glibc's allocator as shipped instead of with its mmap threshold
# pinned (see soak_check.py: the dynamic threshold makes RSS wander by 2x without any leak). Files (log, schedule, last CSV pair) go to WORKDIR if given, else to a temporary directory
# that is removed when the soak passes. Exit status 0 when every check passes, 1 otherwise.
#
# An hour:  nice .ci/soak.sh 3600 42 /tmp/soak-hour
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $# -lt 1 || $# -gt 3 || ! $1 =~ ^[0-9]+$ ]]; then
  echo "usage: .ci/soak.sh DURATION_SECS [SEED] [WORKDIR]   (DEPTHAGG_BIN=path overrides the binary)" >&2
  exit 2
fi
duration=$1
seed=${2:-1}
workdir=${3:-}

bin=${DEPTHAGG_BIN:-}
if [[ -z $bin ]]; then
  cargo build --release --locked --quiet --bin depthagg
  bin=target/release/depthagg
fi
if [[ ! -x $bin ]]; then
  echo "soak: no executable at $bin" >&2
  exit 2
fi

args=(--bin "$bin" --duration "$duration" --seed "$seed" --malloc "${SOAK_MALLOC:-pinned}")
[[ -n $workdir ]] && args+=(--workdir "$workdir")
exec python3 .ci/soak_check.py "${args[@]}"
