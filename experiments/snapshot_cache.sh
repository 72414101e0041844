#!/usr/bin/env bash
# Stage a consistent snapshot of each call cache while the recorder is still writing to it: SQLite's
# online backup copies a transaction-consistent image, which goes into git's index as the file's
# content, so the working file (and the recorder) are never touched. A cache holding no more calls
# than the committed one is left alone (a backup lays pages out anew: same calls, other bytes).
# Then commit as usual:
#   bash experiments/snapshot_cache.sh && git commit -m "Pool snapshot: ..."
set -euo pipefail
cd "$(dirname "$0")/.."
count() { python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from archsearch_llm_calls').fetchone()[0])" "$1"; }
for db in experiments/*/calls.sqlite; do
  snap=$(mktemp --suffix=.sqlite)
  python3 -c "import sqlite3,sys; s=sqlite3.connect(sys.argv[1]); d=sqlite3.connect(sys.argv[2]); s.backup(d); d.execute('pragma journal_mode=delete'); d.close()" "$db" "$snap"
  committed=$(mktemp --suffix=.sqlite)
  git show "HEAD:$db" > "$committed" 2>/dev/null || true
  now=$(count "$snap"); before=$( [ -s "$committed" ] && count "$committed" || echo 0 )
  if [ "$now" -gt "$before" ]; then
    git update-index --cacheinfo "100644,$(git hash-object -w "$snap"),$db"
    echo "$db: $now calls staged (committed: $before)"
  else
    echo "$db: $now calls, as committed: left alone"
  fi
  rm -f "$snap" "$committed"
done
