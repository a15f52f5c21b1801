"""Interactive figures: data blocks that cannot break out of their script element, drawn by the renderer's
own loader, with the static figure kept for print."""

import json
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import nbformat  # noqa: E402
import numpy as np  # noqa: E402

from cifarkit.analysis import interactive  # noqa: E402
from cifarkit.report import render, safety  # noqa: E402


def _figures():
    names = ["cat", "</script><script>window.__pwned=1</script>", "<img src=x onerror=alert(1)>"]
    cm = np.array([[5, 1, 0], [2, 3, 1], [0, 0, 6]])
    fig, ax = plt.subplots()
    ax.imshow(cm)
    ax.set_title("Confusion matrix")
    return names, cm, interactive.confusion_figure(cm, names, "Confusion matrix"), fig


def test_the_data_block_is_json_that_cannot_close_its_script_element():
    names, cm, live, static = _figures()
    html = interactive.figure_html(live, static)
    block = re.search(r'<script type="application/json" id="([^"]+)">(.*?)</script>', html, re.S)
    assert block and "</script" not in block.group(2) and "<" not in block.group(2)
    spec = json.loads(block.group(2))  # \u003c escapes decode back to the original text
    assert spec["data"][0]["type"] == "heatmap" and len(spec["data"][0]["x"]) == 3
    assert all("&lt;" in label or "<" not in label for label in spec["data"][0]["x"])  # plotly reads tags: escaped
    assert 'class="ck-plotly"' in html and f'data-ck-figure="{block.group(1)}"' in html
    assert '<img class="ck-static" alt="Confusion matrix" src="data:image/png;base64,' in html
    safety.check_html(html)  # a data block and an image: nothing active


def test_the_renderer_embeds_plotly_once_and_the_page_passes_the_safety_check(tmp_path):
    names, cm, live, static = _figures()
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("show()")
    cell.outputs = [nbformat.v4.new_output("display_data", {"text/html": interactive.figure_html(live, static)})] * 2
    nb.cells = [nbformat.v4.new_markdown_cell("# Interactive"), cell]
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    page = render.render_html(path, tmp_path / "nb.html").read_text()
    assert page.count(render.plotly_bundle()[:200]) == 1 and render.PLOTLY_LOADER.strip() in page
    assert "img.ck-static { display: none; }" in page  # screen: interactive; print: the static image
    plain = tmp_path / "plain.ipynb"
    nb.cells = [nbformat.v4.new_markdown_cell("# No figure")]
    nbformat.write(nb, plain)
    assert render.plotly_bundle()[:200] not in render.render_html(plain, tmp_path / "plain.html").read_text()
