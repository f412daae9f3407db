"""onboardd: bring a salon's existing customers onto its app."""

__version__ = "0.1.0"
