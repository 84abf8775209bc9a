"""What operators see: scrubbed structured logs and Prometheus metrics."""
