"""``out/report.html``: the whole report of a search as one self-contained page (no script, no font,
no network), rendered from ``report.json`` alone, so ``archsearch report OUT_DIR`` can redraw it.

The page: the front (accuracy against the objective's cost metric, an inline SVG), the options with
their posterior and P(beats baseline), the verifiers' error rates, the choice and why, the final
split against its prediction, and three example questions traced layer by layer for the chosen
pipeline and the baseline."""

from __future__ import annotations

from html import escape

COST_LABELS = {"usd_per_question": "dollars per question", "calls_per_question": "calls per question",
               "latency_p50_s": "median latency (s)", "latency_p95_s": "p95 latency (s)"}
STYLE = """body{font:14px/1.45 system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;
vertical-align:top}th{background:#f4f4f4}.num{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#17702b}.bad{color:#a4161a}.muted{color:#777}details{margin:.3em 0}pre{white-space:pre-wrap;
background:#f7f7f7;padding:.4em;margin:.2em 0;max-height:14em;overflow:auto}.chosen{background:#eef5ff}"""


def render(report: dict) -> str:
    parts = [f"<h1>archsearch: {escape(str(report.get('study', '')))}</h1>", _choice(report), _front(report),
             _options(report), _verifiers(report), _final(report), _traces(report), _notes(report)]
    return ("<!doctype html><html><head><meta charset='utf-8'><title>archsearch report: "
            f"{escape(str(report.get('study', '')))}</title><style>{STYLE}</style></head><body>"
            + "".join(p for p in parts if p) + "</body></html>\n")


def _f(x, digits: int = 3) -> str:
    return "" if x is None else f"{x:.{digits}f}"


def _band(b: dict | None, low: str = "low90", high: str = "high90") -> str:
    if not b:
        return ""
    return f"{b['mean']:.3f} [{b[low]:.3f}, {b[high]:.3f}]"


def _table(head: list[str], rows: list[list[str]], classes: list[str] | None = None) -> str:
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join(f"<tr class='{(classes or [''] * len(rows))[i]}'>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>"
                   for i, row in enumerate(rows))
    return f"<table><tr>{th}</tr>{body}</table>"


def _choice(report: dict) -> str:
    choice = report.get("choice")
    if not choice:
        return "<p>No Pareto pipeline met the objective's constraints; nothing was chosen.</p>"
    c, b = choice["chosen"], choice["baseline"]
    surrogate = report.get("surrogate") or {}
    how = (f"posterior by {escape(str(surrogate.get('method')))}" if surrogate.get("modelled")
           else "no posterior (chosen on raw search scores)")
    return (f"<h2>The choice</h2><p><b>trial {c['trial']}: {escape(c['pipeline'])}</b></p>"
            f"<p>{escape(choice['reason'])}</p><p class='muted'>baseline: trial {b['trial']}, {escape(b['pipeline'])}; "
            f"{how}</p>")


def _front(report: dict, width: int = 640, height: int = 360) -> str:
    """Accuracy (with its 95% interval) against the cost metric: every trial grey, the front blue."""
    trials, cost = report.get("trials") or [], report.get("cost_metric", "calls_per_question")
    if not trials:
        return ""
    pad = 50
    xs = [t[cost] for t in trials]
    x0, x1 = min(xs), max(xs)
    x1 = x1 if x1 > x0 else x0 + 1.0
    x0, x1 = x0 - 0.05 * (x1 - x0), x1 + 0.05 * (x1 - x0)    # no point on the frame
    sx = lambda x: pad + (x - x0) / (x1 - x0) * (width - 2 * pad)   # noqa: E731
    sy = lambda y: height - pad - y * (height - 2 * pad)            # noqa: E731
    marks = []
    for t in sorted(trials, key=lambda t: t["front"]):
        color = "#1f77b4" if t["front"] else "#bbb"
        x = sx(t[cost])
        tip = escape(f"trial {t['trial']}: {t.get('pipeline', '')} -- accuracy {t['accuracy']:.3f}, {cost} {t[cost]:.4g}")
        marks.append(f"<g><title>{tip}</title><line x1='{x:.1f}' x2='{x:.1f}' y1='{sy(t['low']):.1f}' "
                     f"y2='{sy(t['high']):.1f}' stroke='{color}'/><circle cx='{x:.1f}' cy='{sy(t['accuracy']):.1f}' "
                     f"r='4' fill='{color}'/></g>")
        if t["front"]:
            marks.append(f"<text x='{x + 6:.1f}' y='{sy(t['accuracy']) - 6:.1f}' font-size='10'>{t['trial']}</text>")
    axes = (f"<line x1='{pad}' y1='{height - pad}' x2='{width - pad}' y2='{height - pad}' stroke='#444'/>"
            f"<line x1='{pad}' y1='{pad}' x2='{pad}' y2='{height - pad}' stroke='#444'/>"
            + "".join(f"<text x='{pad - 6}' y='{sy(v) + 4:.1f}' font-size='10' text-anchor='end'>{v:.1f}</text>"
                      for v in (0.0, 0.5, 1.0))
            + f"<text x='{pad}' y='{height - pad + 16}' font-size='10'>{x0:.4g}</text>"
            f"<text x='{width - pad}' y='{height - pad + 16}' font-size='10' text-anchor='end'>{x1:.4g}</text>"
            f"<text x='{width / 2}' y='{height - 10}' font-size='12' text-anchor='middle'>"
            f"{escape(COST_LABELS.get(cost, cost))}</text>"
            f"<text x='14' y='{height / 2}' font-size='12' text-anchor='middle' transform='rotate(-90 14 {height / 2})'>"
            "accuracy on the search split (95% CI)</text>")
    return (f"<h2>The front</h2><p class='muted'>Every finished trial; the Pareto front in blue. The cost axis is "
            f"the objective's: {escape(COST_LABELS.get(cost, cost))}.</p><svg xmlns='http://www.w3.org/2000/svg' "
            f"width='{width}' height='{height}' role='img'>{axes}{''.join(marks)}</svg>")


def _options(report: dict) -> str:
    options = report.get("options") or []
    if not options:
        return ""
    chosen = (report.get("choice") or {}).get("chosen", {}).get("trial")
    rows, classes = [], []
    for o in options:
        s = o.get("search") or {}
        p = o.get("p_beats_baseline")
        with_select = o.get("p_beats_baseline_with_select")
        rows.append([str(o["trial"]), escape(o["pipeline"]),
                     f"{_f(s.get('accuracy'))} [{_f(s.get('accuracy_low'), 2)}, {_f(s.get('accuracy_high'), 2)}]",
                     _band(o.get("posterior_new_questions")), _f(p, 2) + (f" &rarr; {with_select:.2f}" if with_select is not None
                                                                         else ""),
                     f"<span class='num'>{_f(s.get('usd_per_question'), 5)}</span>",
                     f"<span class='num'>{_f(s.get('calls_per_question'), 1)}</span>"])
        classes.append("chosen" if o["trial"] == chosen else "")
    return ("<h2>The options</h2><p class='muted'>Search-split accuracy (95% interval), the posterior for new "
            "questions (90%), and the chance of beating the baseline (after the select split when it spoke).</p>"
            + _table(["trial", "pipeline", "search accuracy", "posterior", "P(beats baseline)", "$/question", "calls/q"],
                     rows, classes))


def _verifiers(report: dict) -> str:
    rows = [[escape(v["verifier"]), escape(v["generator"]), str(v["judged"]), _band(v["tpr"], "low", "high"),
             _band(v["fpr"], "low", "high")] for v in report.get("verifiers") or []]
    if not rows:
        return ""
    return ("<h2>Verifiers</h2><p class='muted'>How often each verifier accepts a right answer (TPR) and a wrong one "
            "(FPR), per generator, with 90% intervals.</p>"
            + _table(["verifier", "of generator", "judged", "TPR", "FPR"], rows))


def _final(report: dict) -> str:
    final = report.get("final")
    if not final:
        return ""
    predicted = report.get("predicted_final")
    base = report.get("baseline_final")
    lines = [f"<p>{escape(report.get('final_split', 'final'))} split, touched once: <b>{final['accuracy']:.3f}</b> "
             f"[{final['accuracy_low']:.2f}, {final['accuracy_high']:.2f}] on {final['questions']} questions"]
    if predicted:
        lines.append(f"; predicted {predicted['mean']:.3f} [{predicted['low']:.3f}, {predicted['high']:.3f}]")
    if base:
        lines.append(f"; the baseline {base['accuracy']:.3f} [{base['accuracy_low']:.2f}, {base['accuracy_high']:.2f}]")
    return "<h2>The held-out check</h2>" + "".join(lines) + "</p>"


def _traces(report: dict) -> str:
    traces = report.get("traces") or {}
    if not traces:
        return ""
    out = ["<h2>Example questions</h2><p class='muted'>The first questions of the final split, answered layer by "
           "layer (replayed from the call cache).</p>"]
    for who, rows in traces.items():
        out.append(f"<h3>{escape(who)}</h3>")
        for i, row in enumerate(rows):
            mark = ("<span class='ok'>right</span>" if row.get("correct") else "<span class='bad'>wrong</span>"
                    if "correct" in row else f"<span class='muted'>{escape(row.get('error', ''))}</span>")
            out.append(f"<details{' open' if i == 0 else ''}><summary>{escape(str(row['id']))}: answer "
                       f"<code>{escape(_short(row.get('answer')))}</code> (reference <code>{escape(_short(row['reference']))}"
                       f"</code>) &mdash; {mark}</summary>"
                       f"<pre>{escape(row['question'][:2000])}</pre>"
                       + "".join(_layer(layer) for layer in row.get("layers", [])) + "</details>")
    return "".join(out)


def _short(text, width: int = 70) -> str:
    """One line of at most ``width`` characters (a whole program is in the layer tables below)."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= width else flat[: width - 1] + "\u2026"


def _layer(layer: dict) -> str:
    rows = []
    for o in layer.get("outputs") or []:
        verdicts = ", ".join(f"{escape(k)}: {'accept' if v else 'reject'}" for k, v in (o.get("verdicts") or {}).items())
        extra = [verdicts] if verdicts else []
        if o.get("tests_passed") is not None:
            extra.append(f"tests passed {o['tests_passed']}")
        if o.get("score") is not None:
            extra.append(f"score {o['score']:.3g}")
        rows.append([escape(o["id"]), escape(", ".join(o.get("parents") or [])), f"<code>{escape(_short(o.get('answer'), 60))}</code>",
                     "; ".join(extra), f"<pre>{escape((o.get('text') or '')[:1500])}</pre>"])
    head = (f"<p><b>{escape(layer['kind'])}</b> <span class='muted'>{layer['candidates_in']} in, "
            f"{layer['candidates_out']} out; {layer['calls']} paid calls, {layer['cache_hits']} from the cache</span></p>")
    return head + (_table(["candidate", "from", "answer", "verdicts / votes", "text"], rows) if rows else "")


def _notes(report: dict) -> str:
    notes = list(report.get("notes") or [])
    if report.get("stopped"):
        notes.insert(0, f"the search stopped early: {report['stopped']}")
    return ("<h2>Notes</h2><ul>" + "".join(f"<li>{escape(n)}</li>" for n in notes) + "</ul>") if notes else ""
