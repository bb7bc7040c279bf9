"""Figures shared by the studies (matplotlib, Agg canvas, atomic writes)."""
