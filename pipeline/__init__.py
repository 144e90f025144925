"""midr-pipeline: land-cover change around mines, linked to resettlement events."""

__version__ = "0.1.0"
