"""The calibration report as text: a table per finding (80 columns: compact borders, text
that wraps, numbers that never do; details that need more room behind ``wide``), Markdown, or
JSON. Formatting only: every figure is computed by the calibration and read here.
"""

from __future__ import annotations


def _pct(x, digits=1):
    from ..render import pct

    return pct(x, digits) if x is not None else "-"


def _money(x, digits=4):
    from ..render import money

    return money(x, digits) if x is not None else "-"


def _arrow(a: str, b: str) -> str:
    return f"{a} → {b}"


OVERALL_COLUMNS = ["scope", "tasks", "completion", "cost/completed", "spend/task", "defects"]
RUN_COLUMNS = ["run", "strategy", "tasks", "completion", "cost/completed", "defects"]
FIT_COLUMNS = ["scope", "completion", "cost/completed", "defects"]
MODEL_COLUMNS = ["task type/phase", "model", "attempts", "1st try", "retry", "spend"]
MODEL_WIDE_COLUMNS = ["task type/phase", "model", "calls", "in tok", "cached", "out tok"]
ROUTE_COLUMNS = ["task type", "route", "tasks", "completion", "cost/completed"]
REC_COLUMNS = ["#", "action", "task type/phase", "from → to", "cost/completed"]
WEEK_COLUMNS = ["week", "tasks", "completion", "cost/completed", "defects"]


def _summary_row(label, r):
    return [label, f"{r['tasks']:,}", _pct(r["completion_rate"]),
            _money(r["cost_per_completed_task"]), _money(r["spend_per_task"]),
            _pct(r.get("defect_rate"), 2)]


def _strategy_label(run: str, name: str) -> str:
    """A run's strategy without repeating the run's name beside it (an 80-column table folds
    two long names): ``= run`` for a run named after its strategy, ``inferred`` for the policy
    inferred from it (``inferred-RUN``)."""
    if name == run:
        return "= run"
    if name == f"inferred-{run}":
        return "inferred"
    return name


def _rows(result, wide: bool):
    overall = [_summary_row("all tasks", result.overall)]
    overall += [_summary_row(r["task_type"], r) for r in result.by_task_type]
    runs = []
    names = {s["run"]: s["name"] for s in result.strategies}
    for r in result.by_run:
        runs.append([r["run"] or "(none)", _strategy_label(r["run"], names.get(r["run"], "-")),
                     f"{r['tasks']:,}",
                     _pct(r["completion_rate"]), _money(r["cost_per_completed_task"]),
                     _pct(r.get("defect_rate"), 2)])
    fit = []
    multi = len({r["run"] for r in result.fit}) > 1
    for r in result.fit:
        mark = " *" if r.get("flag_significant") else (" ~" if r["flag"] else "")
        scope = (f"{r['run']}: " if multi else "") + r["scope"] + mark
        fit.append([scope,
                    _arrow(_pct(r["measured_completion_rate"]),
                           _pct(r["engine_completion_rate"])),
                    _arrow(_money(r["measured_cost_per_completed_task"]),
                           _money(r["engine_cost_per_completed_task"])),
                    _arrow(_pct(r["measured_defect_rate"], 2), _pct(r["engine_defect_rate"], 2))])
    models = [[f"{r['task_type']}/{r['phase']}", r["model"], f"{r['attempts']:,}",
               _pct(r["first_attempt_success"], 0), _pct(r["retry_success"], 0),
               _money(r["spend"], 2)] for r in result.by_model]
    models_wide = [[f"{r['task_type']}/{r['phase']}", r["model"],
                    f"{r['calls_per_attempt']:.1f}" if r["calls_per_attempt"] else "-",
                    f"{r['mean_input_tokens']:,.0f}", f"{r['mean_cached_input_tokens']:,.0f}",
                    f"{r['mean_output_tokens']:,.0f}"] for r in result.by_model]
    routes = [[r["task_type"], r["route"], f"{r['tasks']:,}", _pct(r["completion_rate"]),
               _money(r["cost_per_completed_task"])] for r in result.by_route]
    weekly = [[r["week"], f"{r['tasks']:,}", _pct(r["completion_rate"]),
               _money(r["cost_per_completed_task"]), _pct(r.get("defect_rate"), 2)]
              for r in result.weekly]
    recs, rec_text = [], []
    for i, r in enumerate(result.recommendations, start=1):
        p = r.get("projected") or {}
        recs.append([str(i), r["action"], f"{r['task_type']}/{r['phase']}",
                     _arrow(r["from_model"], r["to_model"]),
                     _arrow(_money(p.get("cost_per_completed_task_before")),
                            _money(p.get("cost_per_completed_task_after")))])
        rec_text.append(f"{i}. {r['reason']}; projected: {r['evidence']['trade']} "
                        f"({p.get('change', '')}).")
    return overall, runs, fit, models, models_wide, routes, weekly, recs, rec_text


def _fitted_lines(result) -> list[str]:
    f = result.fitted
    forms = f.get("success_form_counts", {})
    gain = f.get("feedback_gain")
    se = f.get("feedback_gain_se")
    lines = [
        f"Fitted: system_tokens {f['system_tokens']:,}, cache hit rate "
        f"{_pct(f['cache_hit_rate'])}, feedback_gain "
        + ("-" if gain is None else f"{gain:.3f}" + (f" (± {se:.3f})" if se else ""))
        + f"; success: logistic rule in {forms.get('logistic', 0)} phases, success map in "
        f"{forms.get('map', 0)}.",
    ]
    for run, m in f.get("runs", {}).items():
        who = f"run {run}" if run else "the log"
        hand = (f"summary handoff ({m['summary_tokens']:,} tokens by {m['summarizer']})"
                if m["handoff"] == "summary" else "full-history handoff")
        lines.append(f"{who}: {hand}, retry context {m['retry_context']}.")
    v = f.get("tasks_per_month")
    if v is not None:
        se = f" (± {v['cv_se']:.2f})" if v.get("cv_se") is not None else ""
        over = (f"over {v['months']:.1f} months of timestamps ({v['calendar_months']} "
                f"calendar months)")
        if v["varies"]:
            lines.append(f"Tasks per month: mean {v['mean']:,.0f}, varying from month to month "
                         f"with cv {v['cv']:.2f}{se} (gamma-Poisson), {over}.")
        elif v["cv_source"] == "log":
            lines.append(f"Tasks per month: {v['mean']:,.0f}, {over}; the monthly counts vary "
                         f"no more than chance, so one number.")
    var = f.get("variation")
    if var is not None:
        def part(k, label):
            x = f"{label} {var[k]:.2f}"
            if k == "difficulty" and var.get("se_difficulty") and var["source"][k] == "log":
                x += f" (± {var['se_difficulty']:.2f})"
            return x + (" from --workload" if var["source"].get(k) != "log" else "")
        lines.append("How tasks differ (variation): "
                     + ", ".join(part(k, k.replace("_", " ")) for k in
                                 ("difficulty", "tokens", "tokens_follow_difficulty"))
                     + f"; read from {var['tasks']:,} tasks, {var['tasks_seen_twice']:,} of "
                     "them with more than one outcome (runs, retries, escalations).")
        if var["source"].get("difficulty") != "log":
            lines.append("The difficulty spread decides how often a dearer model also fails "
                         "the tasks a cheaper one failed, so what routing saves. To measure it, "
                         "run a sample of tasks (a few dozen or more) on two models too, each "
                         "model its own run.")
    if result.from_base:
        lines.append("From --workload (the log cannot show them): "
                     + "; ".join(f for f, _ in result.from_base) + ".")
    return lines


def _table(title, headers, rows, right=(), wrap=()):
    """A compact table: no vertical rules; text columns in ``wrap`` fold, numbers never do."""
    from rich import box
    from rich.table import Table

    t = Table(title=title, box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False,
              title_justify="left", collapse_padding=True)
    for i, h in enumerate(headers):
        t.add_column(h, justify="right" if i in right else "left",
                     no_wrap=i not in wrap, overflow="fold")
    for r in rows:
        t.add_row(*[str(v) for v in r])
    return t


def _width() -> int:
    import shutil
    import sys

    if sys.stdout.isatty():
        return shutil.get_terminal_size((100, 24)).columns
    # Off a terminal: COLUMNS when set (tests pin it), else wide enough for --wide tables.
    return shutil.get_terminal_size((160, 24)).columns


def _render(items, width: int) -> str:
    import io
    import sys

    from rich.console import Console

    buf = io.StringIO()
    tty = sys.stdout.isatty()
    console = Console(file=buf, width=width, force_terminal=tty,
                      color_system="auto" if tty else None, highlight=False, soft_wrap=False)
    for r in items:
        console.print(r)
    return buf.getvalue()


def render_calibration(result, fmt: str, wide: bool = False) -> str:
    from ..render import to_json, to_markdown

    if fmt == "json":
        return to_json(result.to_dict())
    overall, runs, fit, models, models_wide, routes, weekly, recs, rec_text = _rows(result,
                                                                                     wide)
    head = (f"{result.log}: {result.rows:,} rows, {result.tasks:,} tasks; prices as of "
            f"{result.prices_as_of}; baseline: {result.baseline}")
    fitted = _fitted_lines(result)
    flags = list(result.fit_flags)
    notes = list(result.notes)
    if fmt == "markdown":
        out = [f"**{head}**\n", "#### What the log shows\n", to_markdown(OVERALL_COLUMNS,
                                                                           overall)]
        if runs:
            out += ["\n#### Per run\n", to_markdown(RUN_COLUMNS, runs)]
        if weekly:
            out += ["\n#### Per week\n", to_markdown(WEEK_COLUMNS, weekly)]
        out += ["\n#### Fit check (log → engine): the fitted workload under the log's own "
                "strategy\n",
                to_markdown(FIT_COLUMNS, fit) if fit else "None.\n"]
        out += ["\n" + "\n".join(f"- gap: {f}" for f in flags) + "\n"] if flags else []
        out += ["\n#### Fitted workload\n", "\n".join(f"- {x}" for x in fitted) + "\n",
                "\n#### Recommendations\n",
                (to_markdown(REC_COLUMNS, recs) + "\n" + "\n".join(rec_text) + "\n")
                if recs else "None.\n",
                "\n#### Per task type, phase and model\n", to_markdown(MODEL_COLUMNS, models)]
        if wide:
            out += ["\n#### Tokens per attempt\n", to_markdown(MODEL_WIDE_COLUMNS, models_wide),
                    "\n#### Per task type and route\n", to_markdown(ROUTE_COLUMNS, routes)]
        if notes:
            out += ["\n" + "\n".join(f"- {n}" for n in notes) + "\n"]
        return "\n".join(out)

    from rich.text import Text

    width = _width()
    items = [Text(head),
             _table("What the log shows", OVERALL_COLUMNS, overall, right=range(1, 6))]
    if runs:
        items.append(_table("Per run", RUN_COLUMNS, runs, right=range(2, 6), wrap=(0, 1)))
    if weekly:
        items.append(_table("Per ISO week (of each task's first timestamp)", WEEK_COLUMNS,
                            weekly, right=range(1, 5)))
    if fit:
        items.append(_table("Fit check, log → engine: the fitted workload under the log's own "
                            "strategy, evaluated as `costsim compare` does (* = a gap over 5% "
                            "beyond the log's sampling error, ~ = within it)",
                            FIT_COLUMNS, fit, right=range(1, 4), wrap=(0,)))
    items += [Text(f"gap: {f}") for f in flags]
    if fit and not any(r.get("flag_significant") for r in result.fit):
        items.append(Text("No gap over 5% beyond sampling error: the fitted workload "
                          "reproduces the log."))
    items += [Text(x) for x in fitted]
    if recs:
        items.append(_table("Recommendations (projected by the engine on the fitted workload)",
                            REC_COLUMNS, recs, right=(0, 4), wrap=(2, 3)))
        items += [Text(x) for x in rec_text]
    else:
        items.append(Text("No recommendations: no route crosses a threshold with enough "
                          "samples and a projection that pays."))
    items.append(_table("Per task type, phase and model", MODEL_COLUMNS, models,
                        right=range(2, 6), wrap=(0, 1)))
    if wide:
        items.append(_table("Tokens per attempt (means)", MODEL_WIDE_COLUMNS, models_wide,
                            right=range(2, 6), wrap=(0, 1)))
        items.append(_table("Per task type and route (the models a task used)",
                            ROUTE_COLUMNS, routes, right=range(2, 5), wrap=(1,)))
    items += [Text(f"note: {n}") for n in notes]
    return _render(items, width)
