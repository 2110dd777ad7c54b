"""MQTT adapter: the wire contract, the paho client, the outbox publisher, the uplink, staff commands and remote configuration."""
