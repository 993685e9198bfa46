"""The bottom layer: settings, topics, Kafka clients and security, metrics, logs, the local broker."""
