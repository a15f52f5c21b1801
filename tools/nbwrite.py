"""Write a notebook from a list of (kind, source) cells -- used to author notebooks/ as plain text.

Usage from a script: ``write("notebooks/01_explore_data.ipynb", [("md", "..."), ("code", "..."),
("params", "...")])``. The cell of kind "params" is tagged ``parameters`` for papermill.
Notebooks are committed without outputs; only executed copies go to reports/.
"""

import nbformat

#: Parameters every notebook of the study declares (the runner fills RUN_DIR and DATA). A line
#: "COMMON" in a params cell stands for them, so that they read the same in every notebook.
COMMON_PARAMS = """
DATA: str = ""            # data source; empty for the official CIFAR-10 archive, or a folder, archive, synthetic:200
RUN_DIR: str = ""         # run directory set by run_all.py; empty means reports/interactive
DATA_SUBSET: int = 0      # images per class per split to load; 0 loads all
IMAGE_SIZE: int = 32      # images are resized (shorter side, then centre crop) to IMAGE_SIZE x IMAGE_SIZE
VAL_FRACTION: float = 0.1 # share of the training data held out for validation (stratified)
CLASS_NAMES: str = ""     # comma-separated display names for the classes; empty keeps the data names
""".strip("\n")


def write(path, cells):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for kind, src in cells:
        src = src.strip("\n")
        if kind == "params":
            src = "\n".join(COMMON_PARAMS if line.strip() == "COMMON" else line for line in src.split("\n"))
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
