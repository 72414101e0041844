"""The deployment path (import archsearch, load a spec) must not pull in optuna, jax, numpyro, scipy
(nor litellm until a model is actually called)."""

import json
import subprocess
import sys


def test_loading_a_spec_imports_no_search_stack(root):
    code = (
        "import sys, json, archsearch\n"
        "pipe = archsearch.load('experiments/gsm8k-local/baseline.yaml')\n"
        "heavy = ['optuna', 'jax', 'numpyro', 'scipy', 'litellm']\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in heavy)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_redrawing_a_report_imports_no_search_stack(root):
    """`archsearch report` reads a finished search's report.json: it needs neither optuna nor jax."""
    code = (
        "import sys, json\n"
        "from archsearch.optimize import report, conclude\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & {'optuna', 'jax', 'numpyro'})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
