"""The benchmark: does CGGS beat the baselines? (RQ1-RQ4 of DESIGN.md)

``grid`` defines scenarios, presets and cells; ``runner`` trains every method on a cell's seeds
and turns runs into rows of metrics; ``executor`` maps cells (in process by default); ``analysis``
aggregates rows into statistics, figures and ``report.md``.
"""
