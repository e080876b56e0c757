"""clusterkit's ratelimit app."""
