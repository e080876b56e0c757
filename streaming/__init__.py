"""clusterkit's streaming app."""
