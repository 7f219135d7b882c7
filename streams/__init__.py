"""The Faust/Kafka shell of ecom-stream: decode, call the domain, encode and send."""

__version__ = "0.1.0"
