"""The side-by-side sheet for human raters: each held-out prompt with every model's reply (and the
judges' verdicts when they ran), as HTML and CSV.

Conversation text is untrusted (chat logs, model output). The HTML escapes every value and forbids
scripts and remote content with a Content-Security-Policy; the CSV prefixes a cell that a spreadsheet
would run as a formula (it starts with = + - @ or a tab / carriage return) with a single quote.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

CSP = "default-src 'none'; style-src 'unsafe-inline'"  # no scripts, no remote content
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def render_prompt(messages: Sequence[Mapping[str, str]]) -> str:
    """A conversation as plain text: "role: content" blocks."""
    return "\n\n".join(f"{m['role']}: {m['content']}" for m in messages)


RATING_HELP = "rate each reply 1 (bad) to 5 (good)"


def build_sheet(prompts: pd.DataFrame, replies: Mapping[str, Sequence[str]],
                extra: Mapping[str, Sequence[Any]] | None = None) -> pd.DataFrame:
    """One row per prompt: prompt_id, conversation_id, prompt (text), reply_<model>..., ``extra`` columns
    (judge scores and verdicts) in the order given, then an empty ``rating_<model>`` column per model for a
    human rater (1 bad .. 5 good)."""
    sheet = pd.DataFrame({"prompt_id": prompts["prompt_id"].to_numpy(),
                          "conversation_id": prompts["conversation_id"].to_numpy(),
                          "prompt": [render_prompt(p) for p in prompts["prompt"]]})
    for name, texts in replies.items():
        sheet[f"reply_{name}"] = list(texts)
    for column, values in (extra or {}).items():
        sheet[column] = list(values)
    for name in replies:
        sheet[f"rating_{name}"] = ""
    return sheet


def _safe_cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def write_csv(sheet: pd.DataFrame, path: str | Path) -> Path:
    """The sheet as UTF-8 CSV, formula-like text cells neutralised."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.map(_safe_cell).to_csv(path, index=False, encoding="utf-8")
    return path


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; }
table { border-collapse: collapse; width: 100%; table-layout: fixed; }
th, td { border: 1px solid #ccc; padding: 0.5em; vertical-align: top; text-align: left; }
th { background: #f3f3f3; position: sticky; top: 0; }
.text { white-space: pre-wrap; overflow-wrap: anywhere; font-size: 0.9em; }
.role { font-weight: bold; color: #555; }
.summary td { border: none; padding: 0.1em 1em 0.1em 0; }
"""


def _esc(value: Any) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    if isinstance(value, float):
        return html.escape(f"{value:.3g}")
    return html.escape(str(value), quote=True)


def _prompt_cell(messages: Sequence[Mapping[str, str]]) -> str:
    return "".join(f'<div><span class="role">{_esc(m["role"])}:</span> '
                   f'<span class="text">{_esc(m["content"])}</span></div>' for m in messages)


def write_html(sheet: pd.DataFrame, prompts: Sequence[Sequence[Mapping[str, str]]], path: str | Path,
               summary: Mapping[str, Any] | None = None, title: str = "natfeed side-by-side") -> Path:
    """A static, script-free HTML table of the sheet; ``prompts`` are the messages of each row."""
    columns = [c for c in sheet.columns if c != "prompt"]
    head = "".join(f"<th>{_esc(c)}</th>" for c in ["prompt", *columns])
    rows = []
    for messages, (_, row) in zip(prompts, sheet.iterrows(), strict=True):
        cells = "".join(f'<td class="text">{_esc(row[c])}</td>' for c in columns)
        rows.append(f"<tr><td>{_prompt_cell(messages)}</td>{cells}</tr>")
    facts = "".join(f"<tr><td>{_esc(k)}</td><td>{_esc(v)}</td></tr>" for k, v in (summary or {}).items())
    page = (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">"
        f"<title>{_esc(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{_esc(title)}</h1><table class=\"summary\">{facts}</table>"
        f"<p>{len(rows)} prompts. Replies are greedy; {RATING_HELP} in the rating columns of the CSV "
        "(side_by_side.csv), judging how well it answers the last user message.</p>"
        "<p>"
        f"</p><table><thead><tr>{head}</tr></thead><tbody>\n" + "\n".join(rows)
        + "\n</tbody></table></body></html>\n"
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
