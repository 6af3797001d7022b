"""colmax past one machine: ``ShardedIndex``, an index split into shards searched in parallel by
Ray actors (extra ``colmax[ray]``; Ray is imported only when a sharded index is opened).

Beside it: ``root`` (the root description), ``router`` (id -> shard), ``layout`` (creating and
describing a sharded directory), ``actor`` (one shard replica), ``replicas`` (starting and
calling the actors on Ray), ``merge`` (combining the shards' rankings), ``writes`` (the write
protocol and its recovery). docs/distributed.md explains operation on a real cluster.
"""

from .merge import Hits
from .replicas import ShardUnavailableError
from .root import is_root
from .sharded import ShardedIndex

__all__ = ["Hits", "ShardUnavailableError", "ShardedIndex", "is_root"]
