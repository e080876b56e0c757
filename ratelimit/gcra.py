"""GCRA (generic cell rate algorithm): the decision, in Python and as one Redis Lua script.

One stored number per key, the *theoretical arrival time* (TAT) of the next permit in
microseconds. A permit is granted when it does not push the TAT more than ``tolerance``
(burst * interval) ahead of now. Both versions below compute exactly the same thing;
the Lua one reads the Redis server's clock so that callers' clocks never matter.
"""

from __future__ import annotations

import hashlib
from typing import NamedTuple


class Verdict(NamedTuple):
    """What a store answers: all times in microseconds."""

    allowed: bool
    remaining: int  # permits still available right now after this decision
    wait: int  # refused: retry after this; granted: delay before the permit may be used
    reset: int  # until the bucket is full again


def decide(
    tat: int | None, now: int, interval: int, tolerance: int, cost: int, max_wait: int
) -> tuple[int | None, Verdict]:
    """The new TAT to store (``None``: unchanged) and the verdict for a request at ``now``.

    ``max_wait`` is how long the caller accepts to wait for its permit: 0 for an
    immediate yes/no, more for the durable limiter, which reserves a future slot.
    """
    start = now if tat is None or tat < now else tat
    new_tat = start + cost * interval
    wait = new_tat - tolerance - now
    if wait > max_wait:
        remaining = max(0, (tolerance - (start - now)) // interval)
        return None, Verdict(False, remaining, wait, start - now)
    remaining = max(0, (tolerance - (new_tat - now)) // interval)
    return new_tat, Verdict(True, remaining, max(0, wait), new_tat - now)


# KEYS[1]: bucket. ARGV: interval µs, tolerance µs, cost, max_wait µs. Same steps as decide().
# The reply is one string "allowed remaining wait reset": one bulk reply parses faster
# than a four-element array.
LUA = """
if redis.replicate_commands then redis.replicate_commands() end
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local max_wait = tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local start = tonumber(redis.call('GET', KEYS[1])) or now
if start < now then start = now end
local new_tat = start + cost * interval
local wait = new_tat - tolerance - now
if wait > max_wait then
  local remaining = math.max(0, math.floor((tolerance - (start - now)) / interval))
  return string.format('0 %d %d %d', remaining, wait, start - now)
end
local ttl = math.ceil((new_tat - now) / 1000)
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', string.format('%d', ttl))
local remaining = math.max(0, math.floor((tolerance - (new_tat - now)) / interval))
return string.format('1 %d %d %d', remaining, math.max(0, wait), new_tat - now)
"""

SHA = hashlib.sha1(LUA.encode()).hexdigest()
