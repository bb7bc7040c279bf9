"""Training jobs: one job type that dispatches on its objective, launched in one or many processes."""
