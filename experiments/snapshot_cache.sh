#!/usr/bin/env bash
# Stage a consistent snapshot of each call cache while the recorder is still writing to it: SQLite's
# online backup copies a transaction-consistent image, which goes into git's index as the file's
# content, so the working file (and the recorder) are never touched. Then commit as usual:
#   bash experiments/snapshot_cache.sh && git commit -m "Pool snapshot: ..."
set -euo pipefail
cd "$(dirname "$0")/.."
for db in experiments/*/calls.sqlite; do
  snap=$(mktemp --suffix=.sqlite)
  python3 -c "import sqlite3,sys; s=sqlite3.connect(sys.argv[1]); d=sqlite3.connect(sys.argv[2]); s.backup(d); d.execute('pragma journal_mode=delete'); d.close()" "$db" "$snap"
  blob=$(git hash-object -w "$snap")
  git update-index --cacheinfo "100644,$blob,$db"
  echo "$db: $(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from archsearch_llm_calls').fetchone()[0])" "$snap") calls staged"
  rm -f "$snap"
done
