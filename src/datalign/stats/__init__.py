"""Statistics shared by the studies: correlations with bootstrap CIs, fitted lines and their bands."""

from datalign.stats.correlation import correlation_stats, fisher_z_interval, regression_band

__all__ = ["correlation_stats", "fisher_z_interval", "regression_band"]
