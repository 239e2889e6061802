#!/usr/bin/env python3
"""Print the column table of segments.csv as Markdown, from a run's manifest.

Usage: scripts/gen-outputs-doc.py RUN_DIR [--update docs/outputs.md]

RUN_DIR is a published cvm run directory (for the reference table: a run of
jobs/nightly.yaml, which has every optional input and therefore every column).
The table is read from RUN_DIR/summary.json -> outputs["segments.csv"]["columns"]
(name, type, unit, doc per column, in file order): the same schema that cvm
writes for BI tools, so docs/outputs.md is generated from the code and cannot
drift (tests/test_docs.c compares the two).

Without --update the table goes to stdout. With --update FILE the text between
the lines "<!-- columns:begin -->" and "<!-- columns:end -->" in FILE is
replaced by the table. Python 3 standard library only.
"""
import json
import os
import sys

BEGIN = "<!-- columns:begin -->"
END = "<!-- columns:end -->"


def cell(text):
    """Markdown table cell: pipes escaped, line breaks folded."""
    return " ".join(str(text).split()).replace("|", "\\|")


def table(run_dir):
    path = os.path.join(run_dir, "summary.json")
    with open(path, encoding="utf-8") as f:
        summary = json.load(f)
    try:
        cols = summary["outputs"]["segments.csv"]["columns"]
    except (KeyError, TypeError):
        sys.exit(f"{path}: no outputs[\"segments.csv\"][\"columns\"] "
                 "(a validate run or a failed run has no segments.csv)")
    out = ["| # | column | type | unit | definition |",
           "| ---: | --- | --- | --- | --- |"]
    for i, c in enumerate(cols, 1):
        unit = cell(c.get("unit", "")) or "-"
        out.append(f"| {i} | `{cell(c['name'])}` | {cell(c['type'])} | {unit} | "
                   f"{cell(c.get('doc', ''))} |")
    return "\n".join(out) + "\n"


def update(doc_path, text):
    with open(doc_path, encoding="utf-8") as f:
        doc = f.read()
    b = doc.find(BEGIN + "\n")
    e = doc.find(END, b + 1)
    if b < 0 or e < 0:
        sys.exit(f"{doc_path}: markers {BEGIN} / {END} not found")
    b += len(BEGIN) + 1
    new = doc[:b] + text + doc[e:]
    if new != doc:
        with open(doc_path, "w", encoding="utf-8") as f:
            f.write(new)


def main(argv):
    if len(argv) == 2 and argv[1] not in ("-h", "--help"):
        sys.stdout.write(table(argv[1]))
        return 0
    if len(argv) == 4 and argv[2] == "--update":
        update(argv[3], table(argv[1]))
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
