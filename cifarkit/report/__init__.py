"""The report machinery: profiles, the runner that executes the notebooks, HTML/PDF rendering and dashboards.

``run_all.py`` calls :func:`cifarkit.report.runner.run_study`; the notebook tests call it too.
"""
