"""``archsearch`` command line. Errors in user input print one line and exit 2, never a traceback."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from .errors import ArchsearchError, SpecError, one_line


def _client(cache_url: str | None, concurrency: int):
    from .llm.cache import CallCache
    from .llm.client import LLMClient
    from .llm.local import local_slots

    return LLMClient(cache=CallCache(cache_url) if cache_url else None, max_concurrency=concurrency,
                     provider_concurrency={"local": local_slots()})


def cmd_run(args: argparse.Namespace) -> int:
    from .pipeline import Pipeline
    from .spec import load_spec

    spec = load_spec(args.spec)
    pipe = Pipeline(spec, _client(args.cache, args.concurrency))
    detail = args.trace is not None
    if args.question is not None:
        rows = [{"id": None, "question": args.question}]
        results = [pipe(args.question, detail=detail)]
        print(results[0].answer if results[0].answer is not None else "(abstained)")
        t = results[0].trace
        print(f"[{t.calls} calls, {t.cache_hits} cache hits, ${t.usd:.6f}, {t.seconds:.1f}s]", file=sys.stderr)
    else:
        rows = _read_jsonl(Path(args.input))
        results = pipe.batch([{k: v for k, v in r.items()} for r in rows], concurrency=args.concurrency, detail=detail)
        for row, result in zip(rows, results):
            print(json.dumps({"id": row.get("id"), "answer": result.answer, "calls": result.trace.calls,
                              "cache_hits": result.trace.cache_hits, "usd": result.trace.usd}))
    stats = pipe.client.stats
    if stats.held_summary():
        print(f"slow calls: {stats.held_summary()}", file=sys.stderr)
    if detail:
        with open(args.trace, "w", encoding="utf-8") as fh:
            for row, result in zip(rows, results):
                fh.write(json.dumps({"id": row.get("id"), "answer": result.answer, **result.trace.as_dict()}) + "\n")
        print(f"wrote the trace of {len(results)} questions to {args.trace}", file=sys.stderr)
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    from .init import InitRequest, init

    folder = Path(args.folder)
    written = init(InitRequest(folder, Path(args.data), args.model or [], args.task_kind, args.question_field,
                               args.reference_field, args.api_base, args.api_key_env))
    print(f"wrote {', '.join(str(p) for p in written)}")
    print("next:")
    print(f"  archsearch optimize {folder} --estimate    # what the search would cost, before any call")
    print(f"  archsearch optimize {folder}               # the search itself")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from .serve import serve
    from .spec import load_spec

    serve(load_spec(args.spec), lambda: _client(args.cache, args.concurrency), args.host, args.port,
          args.max_concurrent, workers=args.workers)
    return 0


def _read_jsonl(path: Path) -> list[dict]:
    rows = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise SpecError(str(path), "", f"cannot read file ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise SpecError(str(path), "", "expected UTF-8 text") from None
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SpecError(str(path), f"line {i}", f"invalid JSON: {exc.msg}") from None
        if not isinstance(row, dict):
            raise SpecError(str(path), f"line {i}", "expected a JSON object")
        rows.append(row)
    return rows


def cmd_evaluate(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from .evaluate import aevaluate
    from .pipeline import Pipeline
    from .spec import load_spec
    from .tasks.task import Task

    spec = load_spec(args.spec)
    task_file = args.task
    if task_file is None:
        recorded = spec.provenance.task_file if spec.provenance else None
        if recorded is None:
            raise SpecError(args.spec, "provenance.task_file", "no task recorded in the spec: pass --task TASK.yaml")
        task_file = str(Path(args.spec).resolve().parent / recorded)
    task = Task(task_file)
    args.split = args.split or task.final_split
    records = task.split(args.split)[: args.limit] if args.limit else task.split(args.split)
    cache_url = args.cache or task.cache_url
    pipe = Pipeline(spec, _client(cache_url, args.concurrency))
    console = Console(stderr=True)
    with Progress(TextColumn("evaluating"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.fields[status]}"), console=console, transient=True) as progress:
        bar = progress.add_task("eval", total=len(records), status="")

        def done(outcome) -> None:
            s = pipe.client.stats
            progress.update(bar, advance=1, status=f"paid calls {s.calls}, cache hits {s.cache_hits}, ${s.usd:.4f}")

        report = asyncio.run(aevaluate(pipe, task, records, args.split or "all", concurrency=args.concurrency, on_done=done))
    summary = report.summary()
    table = Table(title=escape(f"{spec.name} on {task.name} [{args.split or 'all'}]"), show_header=False)
    rows = [
        ("questions", str(summary["questions"])),
        ("accuracy (95% CI)", f"{summary['accuracy']:.3f} [{summary['accuracy_low']:.3f}, {summary['accuracy_high']:.3f}]"),
        ("$/question", f"{summary['usd_per_question']:.6f}"),
        ("latency p50 / p95", f"{summary['latency_p50_s']:.2f}s / {summary['latency_p95_s']:.2f}s"),
        ("calls/question", f"{summary['calls_per_question']:.2f}"),
        ("paid calls", str(summary["paid_calls"])),
        ("cache hits", str(summary["cache_hits"])),
        ("failed questions", str(summary["failed_questions"])),
    ]
    for name, value in rows:
        table.add_row(name, value)
    Console().print(table)
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Redraw report.html and front.png from a finished search's report.json."""
    from .optimize.report import write_report

    path = Path(args.out_dir) / "report.json"
    if not path.is_file():
        raise SpecError(str(path), "", "no report.json here (expected the out/ folder of a finished archsearch optimize)")
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise SpecError(str(path), f"line {exc.lineno}", f"not JSON: {exc.msg}") from None
    if not isinstance(report, dict) or "study" not in report:
        raise SpecError(str(path), "study", "missing: not an archsearch report")
    write_report(Path(args.out_dir), report)
    print(f"wrote {Path(args.out_dir) / 'report.html'}, {Path(args.out_dir) / 'front.png'}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="archsearch", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="answer questions with a frozen pipeline spec")
    run.add_argument("spec")
    source = run.add_mutually_exclusive_group(required=True)
    source.add_argument("--question", help="one question (the template's single field)")
    source.add_argument("--input", help="JSONL file, one record of template fields per line")
    run.add_argument("--cache", help="SQLAlchemy URL of a call cache, e.g. sqlite:///calls.sqlite")
    run.add_argument("--concurrency", type=int, default=16)
    run.add_argument("--trace", help="write each question's layer-by-layer trace to this JSONL file")
    run.set_defaults(func=cmd_run)

    srv = sub.add_parser("serve", help="serve a frozen pipeline as an OpenAI-compatible chat endpoint")
    srv.add_argument("spec")
    srv.add_argument("--host", default="127.0.0.1")
    srv.add_argument("--port", type=int, default=8000)
    srv.add_argument("--max-concurrent", type=int, default=64,
                     help="questions in flight (per worker) before answering 429")
    srv.add_argument("--cache", help="call cache URL: repeated questions cost nothing")
    srv.add_argument("--concurrency", type=int, default=64, help="model calls in flight (per worker)")
    srv.add_argument("--workers", type=int, default=1,
                     help="server processes sharing the port (one event loop tops out near one core)")
    srv.set_defaults(func=cmd_serve)

    ini = sub.add_parser("init", help="write task, space, objective and experiment files for your own data")
    ini.add_argument("folder", help="the experiment folder to write (never overwritten)")
    ini.add_argument("--data", required=True, help="JSONL, CSV, Parquet or a Hugging Face save_to_disk folder")
    ini.add_argument("--model", action="append", help="a litellm model id (repeat for several)")
    ini.add_argument("--task-kind", choices=["qa", "code", "choice"], help="default: guessed from the references")
    ini.add_argument("--question-field")
    ini.add_argument("--reference-field")
    ini.add_argument("--api-base", help="an OpenAI-compatible endpoint for every model (else litellm's usual "
                                        "environment variables)")
    ini.add_argument("--api-key-env", help="the environment variable holding the key (written as os.environ/NAME)")
    ini.set_defaults(func=cmd_init)

    ev = sub.add_parser("evaluate", help="score a spec on a task split")
    ev.add_argument("spec")
    ev.add_argument("--task", help="task YAML (default: the one recorded in the spec's provenance)")
    ev.add_argument("--split", help="split name, or 'all' (default: the task's final split: final, else test)")
    ev.add_argument("--limit", type=int, help="first N records of the split")
    ev.add_argument("--cache", help="call cache URL (default: the task's cache file)")
    ev.add_argument("--concurrency", type=int, default=16)
    ev.add_argument("--json", help="also write the summary to this JSON file")
    ev.set_defaults(func=cmd_evaluate)

    rep = sub.add_parser("report", help="redraw report.html and front.png from a finished search's out/ folder")
    rep.add_argument("out_dir", help="the out/ folder archsearch optimize wrote (holds report.json)")
    rep.set_defaults(func=cmd_report)

    from .optimize.cli import add_parser

    add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ArchsearchError as exc:
        print(f"archsearch: error: {one_line(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("archsearch: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
