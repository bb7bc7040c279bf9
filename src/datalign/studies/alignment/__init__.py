"""The data-alignment study (PAPERS.md part 1): Task2Vec alignment of training and evaluation sets vs loss."""
