"""`costsim optimize` in a terminal: tables that fit, frontiers that say something, outputs that
never replace an input, a plot whose labels can be read."""

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

import costsim.search.optimize as search_mod
from costsim import paths
from costsim.cli import app
from costsim.cli.optimize import _spread_labels, plot_figure
from costsim.search.optimize import optimize
from costsim.search.result import PolicyPoint, distinct_at

from helpers import assert_fits

FIX = Path(__file__).parent / "fixtures"
TINY = ["--prices", str(FIX / "prices.yaml"), "--workload", str(FIX / "workload.yaml"),
        "--policy", str(FIX / "policy.yaml")]
# bundled defaults with long model names, small enough to search in a blink
BUNDLED_FEW = ["--candidates", "gemini-3.5-flash-lite,gpt-5.6-luna",
               "--candidates", "claude-sonnet-5,claude-opus-5"]
runner = CliRunner()


@pytest.fixture(scope="module")
def bundled():
    """The bundled defaults, searched in full (the story of the issue; with the bundled
    variation the hardest tasks fail on every model, so no policy reaches 0.99:
    single:claude-opus-5 completes 90.2%; 0.89 leaves a frontier on both axes)."""
    return optimize(min_completion=0.89, max_defect_rate=0.02)


def run(args, width, monkeypatch):
    monkeypatch.setenv("COLUMNS", str(width))
    res = runner.invoke(app, ["optimize", *args])
    assert res.exit_code == 0, res.output
    return res.stdout


@pytest.mark.parametrize("width", [80, 120, 200])
@pytest.mark.parametrize("args", [TINY + ["--min-completion", "0.97"],
                                  BUNDLED_FEW + ["--min-completion", "0.89"],
                                  BUNDLED_FEW + ["--max-review-minutes", "11", "--wide"]],
                         ids=["fixtures", "bundled", "bundled-wide"])
def test_tables_fit_the_terminal_without_ellipsis(args, width, monkeypatch):
    out = run(args, width, monkeypatch)
    if "--wide" not in args:                     # --wide: tables as wide as they need
        assert_fits(out, width)
    assert "…" not in out
    # every number and every model name is whole on its line
    for name in ("single:gemini-3.5-flash-lite", "single:claude-sonnet-5") if "--candidates" \
            in args else ("single:cheap", "single:top"):
        assert re.search(rf"(^|\s){re.escape(name)}(\s|$)", out, re.M), name
    rows = [l for l in out.splitlines() if l.startswith(("* ", "  single:"))]
    assert rows
    for line in rows:
        assert re.search(r"\$\d[\d,]*\.\d{4}", line), line            # cost per completed task
        assert re.search(r"\d+\.\d{3}%", line), line                   # completion


def test_narrow_report_has_the_figures_first(monkeypatch):
    out = run(BUNDLED_FEW + ["--min-completion", "0.89"], 80, monkeypatch)
    head = out.split("Best strategy and the other candidates")[1].splitlines()[1:3]
    header = " ".join(head)
    for col in ("strategy", "cost per", "completed", "month", "completion", "defects", "meets"):
        assert col in header
    assert "review" not in header and "spend" not in header          # behind --wide
    wide = run(BUNDLED_FEW + ["--min-completion", "0.89", "--wide"], 200, monkeypatch)
    header = " ".join(wide.split("Best strategy and the other candidates")[1].splitlines()[1:3])
    assert "review" in header and "spend" in header


def test_frontier_rows_differ_at_the_shown_precision(bundled, monkeypatch):
    from costsim.cli.optimize import render_optimize

    monkeypatch.setenv("COLUMNS", "80")
    text = render_optimize(bundled, "table", rows_n=12)
    for what, pts in (("completion", bundled.frontier_completion),
                      ("defect rate", bundled.frontier_defect)):
        m = re.search(rf"Pareto frontier: cost vs {what}, (\d+) of (\d+) policies", text)
        assert m, what
        shown, total = int(m.group(1)), int(m.group(2))
        assert total == len(pts) and shown <= 12 and shown < total
        block = text.split(m.group(0))[1].split("Pareto frontier")[0]
        rows = [l.split() for l in block.splitlines() if re.match(r"\s*\$\d", l)]
        assert len(rows) == shown
        col = 1 if what == "completion" else 2
        vals = [float(r[col].rstrip("%")) for r in rows]
        costs = [float(r[0].strip("$").replace(",", "")) for r in rows]
        assert costs == sorted(costs)
        # each row is strictly better than the one above it, as printed
        better = [b > a for a, b in zip(vals, vals[1:])] if col == 1 else \
                 [b < a for a, b in zip(vals, vals[1:])]
        assert all(better), vals


def test_distinct_at_keeps_first_of_equal_rows():
    def p(cost, comp, d=0.01):
        return PolicyPoint(routes={}, tiers={}, after_failures=1, handoff="summary",
                           cost_per_completed_task=cost, spend_per_task=cost,
                           completion_rate=comp, defect_rate=d, review_minutes=10)

    pts = [p(1.0, 0.99200), p(1.1, 0.992000004), p(1.2, 0.992004), p(1.3, 0.99201)]
    assert [x.cost_per_completed_task for x in distinct_at(pts, "completion_rate", 3)] == \
        [1.0, 1.3]
    pts = [p(1.0, 0.9, 0.05), p(1.1, 0.9, 0.0500001), p(1.2, 0.9, 0.04)]
    assert [x.cost_per_completed_task for x in distinct_at(pts, "defect_rate", 3)] == [1.0, 1.2]


# --- outputs never replace inputs; checked before any work --------------------------------------

@pytest.fixture
def no_search(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("the search ran before the output check")
    monkeypatch.setattr(search_mod, "optimize", boom)


@pytest.mark.parametrize("flag,target,msg", [
    ("--plot", "policy", "which this command reads"),
    ("--plot", "workload", "which this command reads"),
    ("--out", "prices", "which this command reads"),
    ("--out", "policy", "which this command reads"),
    ("--plot", "front.txt", "needs an image file name"),
    ("--plot", "front", "needs an image file name"),
])
def test_bad_outputs_are_refused_before_any_work(tmp_path, no_search, flag, target, msg):
    files = {}
    for k, name in (("prices", "prices.yaml"), ("workload", "workload.yaml"),
                    ("policy", "policy.yaml")):
        files[k] = tmp_path / name
        files[k].write_bytes((FIX / name).read_bytes())
    before = {k: v.read_bytes() for k, v in files.items()}
    dest = files.get(target, tmp_path / target)
    res = runner.invoke(app, ["optimize", "--prices", str(files["prices"]), "--workload",
                              str(files["workload"]), "--policy", str(files["policy"]),
                              flag, str(dest)])
    assert res.exit_code == 2
    assert msg in res.output and flag in res.output
    assert len(res.output.strip().splitlines()) == 1 and "Traceback" not in res.output
    assert {k: v.read_bytes() for k, v in files.items()} == before
    assert not (tmp_path / "front.txt").exists()


def test_a_symlink_to_an_input_is_that_input(tmp_path, no_search):
    pol = tmp_path / "policy.yaml"
    pol.write_bytes((FIX / "policy.yaml").read_bytes())
    link = tmp_path / "plot.png"
    link.symlink_to(pol)
    res = runner.invoke(app, ["optimize", *TINY[:4], "--policy", str(pol), "--plot", str(link)])
    assert res.exit_code == 2 and "which this command reads" in res.output
    assert pol.read_bytes() == (FIX / "policy.yaml").read_bytes()


def test_default_inputs_are_protected_too(tmp_path, no_search):
    bundled_policy = paths.bundled_dir("policies") / "cheapest-routing.yaml"
    res = runner.invoke(app, ["optimize", "--out", str(bundled_policy)])
    assert res.exit_code == 2 and "which this command reads" in res.output
    res = runner.invoke(app, ["optimize", "--plot", str(paths.bundled_workload_path())])
    assert res.exit_code == 2


def test_out_and_plot_must_differ(tmp_path, no_search):
    res = runner.invoke(app, ["optimize", *TINY, "--out", str(tmp_path / "a.png"),
                              "--plot", str(tmp_path / "a.png")])
    assert res.exit_code == 2 and "is also given to --out" in res.output


def test_plot_in_svg(tmp_path):
    pytest.importorskip("matplotlib")
    for ext, magic in ((".svg", b"<?xml"),):
        dest = tmp_path / f"front{ext}"
        res = runner.invoke(app, ["optimize", *TINY, "--fixed-tiers", "--plot", str(dest)])
        assert res.exit_code == 0, res.output
        assert dest.read_bytes().startswith(magic)


# --- the plot ---------------------------------------------------------------------------------

def test_spread_labels_keeps_gaps_and_order():
    ys = [100.0, 101.0, 101.5, 300.0, 50.0]
    pos = _spread_labels(ys, 10.0, 0.0, 1000.0)
    order = sorted(range(len(ys)), key=lambda i: ys[i])
    placed = [pos[i] for i in order]
    assert all(b - a >= 10.0 - 1e-9 for a, b in zip(placed, placed[1:]))
    assert pos[3] == pytest.approx(300.0, abs=10)                       # lone labels stay put
    # a stack taller than the room starts at the bottom, never above the top
    pos = _spread_labels([5.0] * 4, 10.0, 0.0, 1000.0)
    assert min(pos) >= 0.0


def test_plot_labels_do_not_overlap_and_costs_read_in_dollars(bundled):
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt
    from matplotlib.text import Text

    fig = plot_figure(bundled)
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    ax = fig.axes[0]
    labels = [t for t in ax.texts if t.get_text()]
    names = " ".join(t.get_text() for t in labels)
    for b in bundled.baselines:
        assert b.name in names
    boxes = [Text.get_window_extent(t, r) for t in labels]        # the text, not its leader
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            assert not boxes[i].overlaps(boxes[j]), (labels[i].get_text(),
                                                     labels[j].get_text())
    fh = fig.get_figheight() * fig.dpi
    assert all(0 <= b.y0 and b.y1 <= fh for b in boxes)
    ticks = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert ticks and all(re.fullmatch(r"\$[\d,]+(\.\d+)?", t) for t in ticks), ticks
    assert all("10^" not in t and "×" not in t for t in ticks)
    plt.close(fig)
