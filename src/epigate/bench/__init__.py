"""The benchmark: does CGGS beat the baselines? (the research questions of docs/benchmarks.md)

``grid`` defines scenarios, presets and cells; ``runner`` trains every method on a cell's seeds
through ``epigate.fit.fit_batch`` and turns runs into typed rows of metrics; ``executor`` maps
cells (in process by default); ``store`` keeps finished cells; ``analysis`` aggregates rows into
statistics, figures and ``report.md``.
"""
