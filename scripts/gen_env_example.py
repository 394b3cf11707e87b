"""Write .env.example from the Settings class: every variable, its default, its docstring.

Run after adding a setting: `.venv/bin/python scripts/gen_env_example.py`.
tests/test_env_example.py fails when the file is out of date.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from ratesvc.config import PREFIX, Settings

HEADER = """\
# ratesvc settings. Every variable is optional; the value shown is the default.
# Copy to .env (read from the working directory) or set them in the environment,
# which wins over the file. Unset *_URL of Redis/PostgreSQL = embedded servers.
"""


def _docs_and_sections() -> tuple[dict[str, str], dict[str, str]]:
    source = inspect.getsource(Settings)
    cls = ast.parse(source).body[0]
    assert isinstance(cls, ast.ClassDef)
    lines = source.splitlines()
    docs: dict[str, str] = {}
    sections: dict[str, str] = {}
    last_comment_line = 0
    for index, node in enumerate(cls.body):
        if not isinstance(node, ast.AnnAssign) or not isinstance(node.target, ast.Name):
            continue
        name = node.target.id
        for line in lines[last_comment_line : node.lineno - 1]:
            stripped = line.strip()
            if stripped.startswith("#"):
                sections[name] = stripped.strip("# -").strip()
        last_comment_line = node.lineno
        following = cls.body[index + 1] if index + 1 < len(cls.body) else None
        if isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant):
            docs[name] = " ".join(str(following.value.value).split())
    return docs, sections


def _format(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def render() -> str:
    docs, sections = _docs_and_sections()
    fields = Settings.__struct_fields__
    defaults = dict(
        zip(
            fields[len(fields) - len(Settings.__struct_defaults__) :],
            Settings.__struct_defaults__,
            strict=True,
        )
    )
    out = [HEADER]
    for field in fields:
        if field in sections:
            out.append(f"\n# --- {sections[field]} ---")
        if field in docs:
            out.append(f"# {docs[field]}")
        out.append(f"# {PREFIX}{field.upper()}={_format(defaults.get(field))}")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    Path(__file__).resolve().parents[1].joinpath(".env.example").write_text(render())
