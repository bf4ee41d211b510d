"""Consumer groups on Redis Streams: key names, taking work, dead letters.

:func:`take` is one Lua script, atomic and one round trip, that (1) claims entries other
consumers of the group left pending too long (they died holding them), dead-lettering those
already delivered ``max_deliveries`` times, and forgets consumers long gone; (2) drops what
exceeds the group's capacity; (3) reads new entries. Atomicity is what keeps two replicas
from claiming or dropping the same entries twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import ResponseError

from ._redis_wire import Command

__all__ = [
    "FINISH",
    "Entry",
    "Keys",
    "Taken",
    "bury",
    "create_group",
    "is_nogroup",
    "read_entries",
    "register",
    "take",
    "xadd",
    "xread",
    "xreadgroup",
]

Entry = tuple[bytes, bytes | None]  # stream id, payload (None: the entry carried none)

# KEYS: stream, dead-letter stream.
# ARGV: group, consumer, count, capacity (0: unbounded), claim idle ms (0: do not claim now),
#       max deliveries, dead-letter maxlen, idle ms after which a consumer with nothing
#       pending is forgotten.
# Returns {claimed entries, new entries, dropped entries, dead-lettered count, backlog or -1}.
_TAKE = """
local stream, dead = KEYS[1], KEYS[2]
local group, consumer = ARGV[1], ARGV[2]
local count, capacity = tonumber(ARGV[3]), tonumber(ARGV[4])
local idle, max_deliveries = tonumber(ARGV[5]), tonumber(ARGV[6])
local forget = tonumber(ARGV[8])
if redis.call('EXISTS', stream) == 0 then
  return redis.error_reply('NOGROUP stream ' .. stream .. ' does not exist')
end
local lag, found = false, false
for _, info in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
  local g = {}
  for i = 1, #info, 2 do g[info[i]] = info[i + 1] end
  if g['name'] == group then found = true; lag = g['lag'] end
end
if not found then
  return redis.error_reply('NOGROUP no group ' .. group .. ' on ' .. stream)
end
local claimed, dropped, buried = {}, {}, 0
if idle > 0 then
  local ids = {}
  for _, p in ipairs(redis.call('XPENDING', stream, group, 'IDLE', idle, '-', '+', count)) do
    if p[4] >= max_deliveries then
      local e = redis.call('XRANGE', stream, p[1], p[1])
      local payload = ''
      if e[1] and e[1][2][2] then payload = e[1][2][2] end
      redis.call('XADD', dead, 'MAXLEN', '~', ARGV[7], '*',
        'source', stream, 'group', group, 'id', p[1], 'consumer', p[2],
        'reason', 'not acknowledged after ' .. p[4] .. ' deliveries', 'payload', payload)
      redis.call('XACK', stream, group, p[1])
      buried = buried + 1
    else
      table.insert(ids, p[1])
    end
  end
  if #ids > 0 then
    claimed = redis.call('XCLAIM', stream, group, consumer, idle, unpack(ids))
  end
  -- forget consumers long gone (a process that stopped): with nothing pending they hold
  -- nothing, and one that was merely quiet comes back by reading
  for _, info in ipairs(redis.call('XINFO', 'CONSUMERS', stream, group)) do
    local c = {}
    for i = 1, #info, 2 do c[info[i]] = info[i + 1] end
    if c['pending'] == 0 and c['idle'] > forget and c['name'] ~= consumer then
      redis.call('XGROUP', 'DELCONSUMER', stream, group, c['name'])
    end
  end
end
-- lag counts entries added since the group's last delivery, trimmed ones included;
-- XLEN caps it at what the stream still holds
local backlog = -1
if lag then
  backlog = math.min(lag, redis.call('XLEN', stream))
  if capacity > 0 and backlog > capacity then
    local r = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', backlog - capacity,
      'NOACK', 'STREAMS', stream, '>')
    if r then dropped = r[1][2] end
    backlog = capacity
  end
end
local fresh = {}
if count > #claimed then
  local r = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', count - #claimed,
    'STREAMS', stream, '>')
  if r then fresh = r[1][2] end
end
if backlog >= 0 then backlog = math.max(0, backlog - #fresh) end
return {claimed, fresh, dropped, buried, backlog}
"""


# An executor's end of a batch: its scores on the deployment's scores stream, then its
# requests acknowledged, atomically: an error adding the scores leaves the requests pending,
# for redelivery. Both keys carry the deployment's hash tag (one Cluster slot).
# KEYS: scores stream, input stream. ARGV: maxlen, payload ('' for none), group, ids...
FINISH = """
if ARGV[2] ~= '' then
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 's', ARGV[2])
end
if #ARGV > 3 then
  return redis.call('XACK', KEYS[2], ARGV[3], unpack(ARGV, 4))
end
return 0
"""


class Keys:
    """Key names. One hash tag per deployment (or reply stream): one Redis Cluster slot."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.deployments = f"{prefix}:deployments"  # a set: every deployment ever joined

    def input(self, deployment: str) -> str:
        return f"{self.prefix}:{{{deployment}}}:in"

    def scores(self, deployment: str) -> str:
        return f"{self.prefix}:{{{deployment}}}:scores"

    def dead(self, deployment: str) -> str:
        return f"{self.prefix}:{{{deployment}}}:dead"

    def reply(self, reply_to: str) -> str:
        return f"{self.prefix}:{{{reply_to}}}:reply"

    def reply_dead(self, reply_to: str) -> str:
        return f"{self.prefix}:{{{reply_to}}}:reply-dead"


@dataclass(slots=True)
class Taken:
    entries: list[Entry]  # claimed first, then new
    dropped: list[Entry]
    buried: int  # dead-lettered for too many deliveries
    backlog: int  # what still waits for the group after this take; -1 if unknown


def register(client: Redis) -> AsyncScript:
    return client.register_script(_TAKE)


async def take(
    client: Redis,
    script: AsyncScript,
    stream: str,
    dead: str,
    group: str,
    consumer: str,
    *,
    count: int,
    capacity: int,
    claim_idle_ms: int,
    max_deliveries: int,
    maxlen: int,
    forget_ms: int,
) -> Taken:
    """Claim, drop and read in one round trip; never blocks. ``claim_idle_ms=0``: no claim."""
    args: list[str | int] = [group, consumer, count, capacity, claim_idle_ms]
    args += [max_deliveries, maxlen, forget_ms]
    reply = await script(keys=[stream, dead], args=args, client=client)
    claimed, fresh, dropped, buried, backlog = reply
    entries = [_entry(e) for e in (*claimed, *fresh)]
    return Taken(entries, [_entry(e) for e in dropped], buried, backlog)


async def bury(
    client: Redis,
    stream: str,
    dead: str,
    group: str | None,
    bad: list[tuple[Entry, str]],
    *,
    maxlen: int,
) -> None:
    """Dead-letter ``bad`` entries with the reason for each, and acknowledge them."""
    async with client.pipeline(transaction=False) as pipe:
        for (entry_id, payload), reason in bad:
            fields: dict[Any, Any] = {
                "source": stream, "group": group or "", "id": entry_id,
                "reason": reason, "payload": payload or b"",
            }  # fmt: skip
            pipe.xadd(dead, fields, maxlen=maxlen, approximate=True)
        if group is not None:
            pipe.xack(stream, group, *(entry_id for (entry_id, _), _ in bad))
        await pipe.execute()


async def create_group(client: Redis, stream: str, group: str, start: str) -> bool:
    """Create ``group`` on ``stream`` reading from ``start``; False if it existed already."""
    try:
        await client.xgroup_create(stream, group, start, mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" in str(exc):
            return False
        raise
    return True


def is_nogroup(exc: BaseException) -> bool:
    """Whether Redis no longer has the group (restarted without persistence, or flushed)."""
    text = str(exc)
    return isinstance(exc, ResponseError) and ("NOGROUP" in text or "no longer exists" in text)


def xadd(key: str, field: bytes, payload: bytes, maxlen: int) -> Command:
    """Add one entry, trimming the stream to about ``maxlen`` (``~``: whole nodes, cheap)."""
    return (b"XADD", key, b"MAXLEN", b"~", maxlen, b"*", field, payload)


def xreadgroup(
    group: str, consumer: str, stream: str, count: int, *, block_ms: int = 0, start: bytes = b">"
) -> Command:
    """Read for ``group``: new entries (``>``), or this consumer's pending ones (``0``);
    blocking up to ``block_ms`` if > 0."""
    block = (b"BLOCK", block_ms) if block_ms > 0 else ()
    head = (b"XREADGROUP", b"GROUP", group, consumer, b"COUNT", count)
    return (*head, *block, b"STREAMS", stream, start)


def xread(stream: str, after: bytes, count: int, *, block_ms: int) -> Command:
    """Read the entries of ``stream`` after id ``after``, blocking up to ``block_ms``."""
    return (b"XREAD", b"COUNT", count, b"BLOCK", block_ms, b"STREAMS", stream, after)


def read_entries(got: Any) -> list[Entry]:
    """The entries of a raw XREAD(GROUP) reply: ``[[key, [[id, [field, value]], ...]]]``."""
    return [_entry(e) for _, items in got or () for e in items]


def _entry(raw: list[Any]) -> Entry:
    """An entry as a script returns it: ``[id, [field, value, ...]]``."""
    entry_id, fields = raw[0], raw[1]
    return entry_id, (fields[1] if fields and len(fields) >= 2 else None)
