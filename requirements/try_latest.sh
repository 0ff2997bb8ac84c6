#!/usr/bin/env bash
# Try today's releases: install exportkit's test extra unpinned into .venv-latest, run ruff and the suite there,
# and write what moved against requirements/lock.txt and what broke to the Markdown file named by $1.
# Upgrades stay deliberate: this never touches the lock; `make lock` does, once the result here is understood.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: try_latest.sh REPORT.md}
venv=.venv-latest
log=$(mktemp)
trap 'rm -f "$log"' EXIT

rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip >/dev/null
if ! "$venv/bin/python" -m pip install --quiet -e '.[test]' >"$log" 2>&1; then
  echo "try-latest: the unpinned install failed; see $log" >&2
  tail -20 "$log" >&2
  exit 3
fi

# name==version, names normalized as the lock writes them (lower case, runs of -_. as one -).
normalize() { awk -F'==' '{n = tolower($1); gsub(/[-_.]+/, "-", n); v = $2; sub(/ .*/, "", v); print n, v}' \
  | LC_ALL=C sort; }
moved=$("$venv/bin/python" -m pip freeze --exclude-editable | grep '==' | normalize \
  | LC_ALL=C join -a1 - <(grep -E '^[A-Za-z0-9_.-]+==' requirements/lock.txt | normalize) \
  | awk '$2 != $3 {printf "| `%s` | %s | %s |\n", $1, ($3 == "" ? "(not in the lock)" : $3), $2}')

ruff_status=0; "$venv/bin/ruff" check . >"$log" 2>&1 || ruff_status=$?
ruff_tail=$(tail -1 "$log")
start=$(date +%s)
test_status=0; "$venv/bin/python" -m pytest -q -p no:cacheprovider >"$log" 2>&1 || test_status=$?
minutes=$(( ($(date +%s) - start) / 60 ))
summary=$(grep -E '^(=+ )?[0-9]+ (passed|failed)' "$log" | tail -1)
failures=$(grep -E '^FAILED ' "$log" | cut -c1-200)

{
  echo "# Today's releases against the lock"
  echo
  echo "\`make try-latest\` on $(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD), $(uname -m), $("$venv/bin/python" --version)."
  echo
  echo "## Versions that moved"
  echo
  if [ -z "$moved" ]; then echo "None: the lock holds today's releases."; else
    echo "| package | lock | today |"; echo "|---|---|---|"; echo "$moved"; fi
  echo
  echo "## Result"
  echo
  echo "- ruff (exit $ruff_status): $ruff_tail"
  echo "- pytest (exit $test_status, $minutes min): $summary"
  if [ -n "$failures" ]; then echo; echo '```'; echo "$failures"; echo '```'; fi
} >"$out"
cat "$out"
[ "$ruff_status" = 0 ] && [ "$test_status" = 0 ]
