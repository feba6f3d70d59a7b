#!/usr/bin/env bash
# Commit the snapshot CSV and its sidecar when the CSV changed, then push. If the branch moved
# meanwhile, re-apply the snapshot on top of the new tip (the only change is these two files, so
# this is a rebase that cannot conflict) and push once more.
#
# Usage: commit-snapshot.sh [CSV]   (default agg_snapshot.csv; sidecar = <stem>.meta.json)
# Env:   REMOTE (origin), BRANCH (current branch)
# Exit:  0 committed and pushed, or nothing to commit; 1 push failed twice or bad input.
set -euo pipefail

csv="${1:-agg_snapshot.csv}"
meta="${csv%.csv}.meta.json"
remote="${REMOTE:-origin}"
branch="${BRANCH:-$(git rev-parse --abbrev-ref HEAD)}"

[[ -f $csv ]] || { echo "commit-snapshot: $csv does not exist" >&2; exit 1; }
[[ -f $meta ]] || { echo "commit-snapshot: $meta does not exist" >&2; exit 1; }

csv_changed() {
  # Untracked, or different from HEAD.
  ! git ls-files --error-unmatch -- "$csv" >/dev/null 2>&1 || ! git diff --quiet HEAD -- "$csv"
}

if ! csv_changed; then
  echo "commit-snapshot: $csv unchanged; nothing to commit"
  exit 0
fi

# "2026-11-25T10:05:00Z: binance, kraken" from the sidecar.
summary=$(python3 - "$meta" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
venues = m.get("venues_included") or []
print(f"{m.get('taken_at_utc', '?')}: {', '.join(venues) if venues else 'no venue'}")
PY
)
message="snapshot ${summary}"

ident=(-c "user.name=${GIT_AUTHOR_NAME:-depthagg-snapshot}" -c "user.email=${GIT_AUTHOR_EMAIL:-depthagg-snapshot@users.noreply.github.com}")
commit() {
  git add -- "$csv" "$meta"
  git "${ident[@]}" commit --quiet -m "$message" -- "$csv" "$meta"
}

commit
if git push --quiet "$remote" "HEAD:$branch"; then
  echo "commit-snapshot: pushed \"$message\""
  exit 0
fi

echo "commit-snapshot: push refused; the branch moved, re-applying the snapshot on the new tip" >&2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -- "$csv" "$tmp/csv"
cp -- "$meta" "$tmp/meta"
git fetch --quiet "$remote" "$branch"
git reset --quiet --hard FETCH_HEAD
cp -- "$tmp/csv" "$csv"
cp -- "$tmp/meta" "$meta"
if ! csv_changed; then
  echo "commit-snapshot: the new tip already holds this CSV; nothing to commit"
  exit 0
fi
commit
git push --quiet "$remote" "HEAD:$branch"
echo "commit-snapshot: pushed \"$message\" after re-applying"
