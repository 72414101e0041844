"""Two worker processes share one Optuna study, one call cache and one dollar budget in a real
PostgreSQL (started by .ci/start_postgres.sh; .ci/run does that)."""

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import optuna
import pytest
from sqlalchemy import create_engine, text

from archsearch.llm import CallCache
from archsearch.llm.shared_budget import SharedBudget

ROOT = Path(__file__).resolve().parent.parent
WORKER = Path(__file__).parent / "search_worker.py"


@pytest.fixture(scope="module")
def pg_url():
    url = os.environ.get("ARCHSEARCH_TEST_PG_URL")
    if not url:
        if os.geteuid() != 0 or not shutil.which("su"):
            pytest.skip("needs ARCHSEARCH_TEST_PG_URL or root to start PostgreSQL (.ci/run provides it)")
        url = subprocess.run(["bash", str(ROOT / ".ci/start_postgres.sh")], capture_output=True, text=True,
                             check=True).stdout.strip().splitlines()[-1]
    base = create_engine(url, isolation_level="AUTOCOMMIT")
    name = f"archsearch_{uuid.uuid4().hex[:8]}"
    with base.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    yield url.rsplit("/", 1)[0] + "/" + name
    base.dispose()


def test_two_workers_share_study_cache_and_budget(pg_url, tmp_path):
    budget = 0.40
    procs = [subprocess.Popen([sys.executable, str(WORKER), str(tmp_path), "60", "--storage", pg_url, "--cache", pg_url,
                               "--budget-usd", str(budget), "--seed", str(i), "--log", f"paid{i}.log"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-3000:]
        outs.append(json.loads(out.strip().splitlines()[-1]))
    study = optuna.load_study(study_name="crash", storage=pg_url)
    numbers = [t.number for t in study.trials]
    assert len(numbers) == len(set(numbers))  # no duplicate trials
    ran = outs[0]["trials"] + outs[1]["trials"]
    assert sorted(ran) == sorted(numbers)  # the union of what the workers ran is the study, once each
    pids = {t.user_attrs["pid"] for t in study.trials if "pid" in t.user_attrs}
    assert len(pids) == 2  # both workers contributed trials to the one study
    spent = SharedBudget(CallCache(pg_url).engine, "study:crash", usd=budget).spent_usd
    assert spent <= budget + 1e-9
    # every dollar the budget holds is a call a worker paid: answers, and the losing requests of hedges
    assert sum(o["usd"] + o["hedge_usd"] for o in outs) == pytest.approx(spent)
    # no lost updates to the cache: every call any worker paid for is in it, and none was paid twice
    paid = Counter((tmp_path / "paid0.log").read_text().split() + (tmp_path / "paid1.log").read_text().split())
    assert len(CallCache(pg_url)) == len(paid)
    assert sum(c - 1 for c in paid.values()) == 0
    print(f"two workers on PostgreSQL: {len(numbers)} trials, spent ${spent:.4f} of ${budget}, "
          f"{sum(paid.values())} paid calls, stopped: {[o['stopped'][:40] for o in outs]}")
