"""datalign: how well does training data fit a task, and what does training on it buy?

The library behind the Snakemake workflow: dataset preparation, tokenization,
probe networks, Task2Vec embeddings, alignment coefficients, training,
evaluation, correlation statistics and plots. Nothing here imports Snakemake.
"""

__version__ = "0.1.0"
