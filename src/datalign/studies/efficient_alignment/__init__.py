"""The data-efficient alignment study (PAPERS.md part 2): ISA and baseline data selection.

Khera, Ghosh and Dutta (2024), "Efficient Alignment of Large Language Models via
Data Sampling": embed every (prompt + completion) row, select a fraction of the
rows by a selection method (``selection``: ISA, random, density sampling, an LM
quality filter), align a model on each subset, and fit the exponential plateau
of score against data fraction (``scaling``). ``embedders`` turns texts into
vectors; ``plots`` draws score against data fraction.
"""
