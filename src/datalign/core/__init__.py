"""Shared machinery of every study: errors, atomic artifact I/O, the job runner, config validation."""
