"""A stand-in for the context object Lambda passes a handler: what the handlers read of it.

Used by the tests and by the bench (which imports it as `tests.helpers.lambda_context`), so it
imports nothing of the project's.
"""

from __future__ import annotations

from dataclasses import dataclass

REGION = "us-east-1"
ACCOUNT = "123456789012"


@dataclass
class LambdaContext:
    aws_request_id: str = "run-0001"
    function_name: str = "ecr-sweeper"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:ecr-sweeper"
    remaining_millis: int = 900_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_millis
