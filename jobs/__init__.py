"""clusterkit's jobs app."""
