"""Notebook widgets: the generation form, sweep progress, the gallery and side-by-side compare.

Each module imports ipywidgets only when a widget is built, so importing ``runflow_nb`` stays
fast and the plain-HTML parts (:mod:`.gallery`) work without ipywidgets at all.
"""
