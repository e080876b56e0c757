"""clusterkit: sharded entities, durable messages and runners for Django."""
