"""Language-model layer shared by the studies: tokenizer, token views, models, evaluation."""
