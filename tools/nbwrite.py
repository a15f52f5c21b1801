"""Write a notebook from a list of (kind, source) cells -- used to author notebooks/ as plain text.

Usage from a script: ``write("notebooks/01_explore_data.ipynb", [("md", "..."), ("code", "..."),
("params", "...")])``. The cell of kind "params" is tagged ``parameters`` for papermill.
Notebooks are committed without outputs; only executed copies go to reports/.
"""

import nbformat


def write(path, cells):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for kind, src in cells:
        src = src.strip("\n")
        if kind == "md":
            nb.cells.append(nbformat.v4.new_markdown_cell(src))
        else:
            cell = nbformat.v4.new_code_cell(src)
            if kind == "params":
                cell.metadata["tags"] = ["parameters"]
            nb.cells.append(cell)
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:02d}"
    nbformat.validate(nb)
    nbformat.write(nb, path)
