"""One package per study. Nothing outside ``datalign.studies`` imports from it."""
