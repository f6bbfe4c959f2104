"""One adapter per AWS service, named after it, and the client factory."""
