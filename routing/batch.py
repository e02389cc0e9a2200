"""Commands of several modules sent to Redis in one round trip.

A webhook's steps that do not depend on each other's answers (end the call in the router, drop its hold, take
its session) each cost a round trip when sent one after the other, and under gevent each round trip is one
turn of the hub: at the day's peak a turn took 20-60 ms, and the status callback's six of them 2.5 s at p50.
A ``Batch`` is a pipeline without MULTI (on a Redis Cluster the client splits it by node): each module queues
its own commands with a function of its own (``queue(pipe, ...)``), and reads its own answers once the batch
is sent. Each module keeps its error handling: a reader gets the batch's error when the round trip failed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

import redis
from redis.client import Pipeline

T = TypeVar("T")
P = ParamSpec("P")
Outcome = list[Any] | redis.RedisError
"""What one module's commands got back: their replies, in order (a failed command's is its exception), or the
error that failed the whole round trip."""
Reader = Callable[[Outcome], T]


class Batch:
    def __init__(self, client: redis.Redis) -> None:
        self._pipe: Pipeline = client.pipeline(transaction=False)
        self._outcome: Outcome | None = None

    def add(self, queue: Callable[Concatenate[Pipeline, P], Reader[T]], *args: P.args,
            **kwargs: P.kwargs) -> Callable[[], T]:
        """Queue one module's commands (``queue(pipe, *args, **kwargs)`` returns how to read their replies);
        the result is that reading, to call once ``send`` has run."""
        start = len(self._pipe)
        read = queue(self._pipe, *args, **kwargs)
        end = len(self._pipe)

        def result() -> T:
            outcome = self._outcome
            if outcome is None:
                raise RuntimeError("the batch was not sent")
            return read(outcome if isinstance(outcome, redis.RedisError) else outcome[start:end])

        return result

    def send(self) -> None:
        """One round trip (none when nothing was queued). Never raises a Redis error: each reader gets it."""
        if not len(self._pipe):
            self._outcome = []
            return
        try:
            self._outcome = self._pipe.execute(raise_on_error=False)
        except redis.RedisError as exc:
            self._outcome = exc


def replies(outcome: Outcome) -> list[Any]:
    """The replies of a module that has no use for a failure but to raise it, as a command sent alone would."""
    if isinstance(outcome, redis.RedisError):
        raise outcome
    for reply in outcome:
        if isinstance(reply, Exception):
            raise reply
    return outcome


def checked(outcome: Outcome) -> None:
    """For commands whose replies say nothing: raises what failed, as ``replies`` does."""
    replies(outcome)


def run_alone(client: redis.Redis, queue: Callable[Concatenate[Pipeline, P], Reader[T]], *args: P.args,
              **kwargs: P.kwargs) -> T:
    """A module's queued commands sent on their own (the same code path as in a batch)."""
    batch = Batch(client)
    result = batch.add(queue, *args, **kwargs)
    batch.send()
    return result()
