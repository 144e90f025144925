"""Run notebooks top to bottom on the demo run and save them with their outputs (`make notebooks`).

    .venv/bin/python notebooks/execute.py notebooks/*.ipynb

Each notebook runs from its own folder, as in JupyterLab, on `outputs/demo` (or $MIDR_RUN_DIR). The saved
file has no run timings and no kernel-specific metadata, so running it again on the same run changes only
what the code shows. A cell that fails stops with the cell's error and leaves the notebook as it was.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbclient
import nbformat

MAX_BYTES = 2_000_000  # a notebook's outputs must stay small enough to read on a repository page


def execute(path: Path) -> int:
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        cell.metadata.pop("execution", None)
    nbclient.NotebookClient(notebook, timeout=900, kernel_name="python3", record_timing=False,
                            resources={"metadata": {"path": str(path.parent.resolve())}}).execute()
    notebook.metadata = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                         "language_info": {"name": "python"}}
    text = nbformat.writes(notebook) + "\n"
    if len(text.encode()) > MAX_BYTES:
        raise SystemExit(f"{path}: {len(text.encode()):,} bytes with outputs (at most {MAX_BYTES:,}); "
                         "show smaller figures or fewer rows")
    path.write_text(text)
    return len(text.encode())


if __name__ == "__main__":
    for name in sys.argv[1:]:
        size = execute(Path(name))
        print(f"{name}: executed, {size / 1e6:.2f} MB with outputs")
