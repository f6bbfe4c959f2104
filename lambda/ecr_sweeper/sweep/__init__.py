"""The sweep's orchestration: targets, the engine, the repository unit, native policies."""
