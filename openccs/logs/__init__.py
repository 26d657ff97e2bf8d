"""Log collection: rules (LogCollector) and the per-machine shippers that carry container and
host logs into Kafka with persisted offsets."""
