"""The bundled files say nothing the price table contradicts, and the maintainer script fails
with a sentence, not a traceback."""

import re
import subprocess
import sys
from pathlib import Path

from costsim.loader import load_prices
from costsim.paths import bundled_policy_paths, bundled_prices_path

REPO = Path(__file__).resolve().parent.parent


def test_policy_comments_quote_no_price_the_table_contradicts():
    table = load_prices(bundled_prices_path())
    for path in bundled_policy_paths():
        for n, line in enumerate(path.read_text().splitlines(), 1):
            code, _, comment = line.partition("#")
            m = re.match(r"\s*\w+:\s*([\w.\-]+)", code)
            for price in re.findall(r"\$(\d+(?:\.\d+)?)\s*/\s*M\s+input", comment, re.I):
                model = m.group(1) if m else None
                assert model in table.models, f"{path.name}:{n}: quotes a price for {model}"
                assert float(price) == table.models[model].input, (
                    f"{path.name}:{n}: comment says ${price}/M input, the bundled table "
                    f"${table.models[model].input}")


def test_build_script_without_its_inputs_says_what_to_pass(tmp_path):
    res = subprocess.run([sys.executable, str(REPO / "scripts" / "build_default_pricing.py"),
                          "--litellm", str(tmp_path / "none.json"), "--out",
                          str(tmp_path / "out.yaml")], capture_output=True, text=True)
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    assert res.stderr.strip().splitlines() == [
        f"build_default_pricing: {tmp_path / 'none.json'}: no such file; pass --litellm PATH "
        "(LiteLLM's model_prices_and_context_window.json, e.g. saved from "
        "https://raw.githubusercontent.com/BerriAI/litellm/main/model_prices_and_context_window"
        ".json)"]
    assert not (tmp_path / "out.yaml").exists()
