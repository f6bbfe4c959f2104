"""The Lambda and Step Functions entry points and their telemetry."""
