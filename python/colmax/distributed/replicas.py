"""The shard actors on Ray: starting them (replicas of a shard spread over nodes), calling them
(reads round-robin over a shard's replicas, retried on the next replica when one dies) and
stopping them. Ray is imported here, lazily: ``import colmax`` never imports it.
"""

from __future__ import annotations

import itertools
import pickle
from collections.abc import Collection
from dataclasses import dataclass

from .actor import ShardActor

# how long placing the actors may take before open() gives up (Ray waits for free CPUs)
PLACEMENT_TIMEOUT_S = 120.0
# a read's pickled arguments up to this size travel inside each shard's call (FanOut.submit)
_PUT_BYTES = 1 << 20


def import_ray():
    try:
        import ray
    except ImportError:
        raise ImportError('colmax.distributed needs Ray: pip install "colmax[ray]"') from None
    return ray


class ShardUnavailableError(RuntimeError):
    """No replica of a shard answered (each died or was unreachable)."""

    def __init__(self, shard: int, path: str, cause: BaseException) -> None:
        self.shard = shard
        first_line = (str(cause).splitlines() or [""])[0]  # Ray's messages go on with actor details
        super().__init__(
            f"shard {shard} ({path}) did not answer: {type(cause).__name__}: {first_line} Ray restarts "
            "dead replicas; retry, open with replicas=2 or more, or search with allow_partial=True"
        )


@dataclass
class Call:
    """A call under way on one shard: which replica it went to and how to send it again."""

    shard: int
    method: str
    args: tuple
    ref: object
    tried: int


class Replicas:
    """Every replica actor of every shard of one opened sharded index."""

    def __init__(
        self, paths: list[str], replicas: int, threads: int, cpus: float, shard_resource: str | None
    ) -> None:
        ray = import_ray()
        from ray.util.placement_group import placement_group
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        self.ray = ray
        self.paths = paths
        self._turn = itertools.count()
        need = len(paths) * replicas * cpus
        # against the cluster's size, not its free CPUs: actors just stopped free theirs a moment
        # later, and placement below waits for them
        total = ray.cluster_resources().get("CPU", 0)
        if need > total + 1e-9:
            raise ValueError(
                f"{len(paths)} shards x {replicas} replicas x {cpus:g} CPUs need {need:g} CPUs but the Ray "
                f"cluster has {total:g}: lower replicas, threads_per_shard or cpus_per_replica, or add "
                "nodes"
            )
        actor_class = ray.remote(ShardActor)
        self._groups = []
        self.actors: list[list] = []
        try:
            for shard, path in enumerate(paths):
                bundle = {"CPU": cpus}
                if shard_resource:
                    bundle[f"{shard_resource}{shard}"] = 0.001
                # SPREAD: a shard's replicas go to different nodes where there are several
                group = placement_group([bundle] * replicas, strategy="SPREAD")
                self._groups.append(group)
                if not group.wait(timeout_seconds=PLACEMENT_TIMEOUT_S):
                    raise ValueError(
                        f"Ray could not place shard {shard}'s {replicas} replicas of {bundle} within "
                        f"{PLACEMENT_TIMEOUT_S:g} s: check the cluster's free CPUs"
                        + (
                            f" and that a node offers the resource {shard_resource}{shard}"
                            if shard_resource
                            else ""
                        )
                    )
                self.actors.append(
                    [
                        actor_class.options(
                            num_cpus=cpus,
                            resources={f"{shard_resource}{shard}": 0.001} if shard_resource else None,
                            max_restarts=-1,  # Ray revives a dead replica; calls retry elsewhere meanwhile
                            max_task_retries=0,
                            scheduling_strategy=PlacementGroupSchedulingStrategy(
                                placement_group=group, placement_group_bundle_index=r
                            ),
                        ).remote(path, threads)
                        for r in range(replicas)
                    ]
                )
            self.placement = [ray.get([a.ready.remote() for a in actors]) for actors in self.actors]
        except BaseException:
            self.close()
            raise

    @property
    def n_replicas(self) -> int:
        return len(self.actors[0])

    def submit(self, shard: int, method: str, *args, tried: int | None = None) -> Call:
        """Send ``method(*args)`` to a replica of ``shard``: the next in turn, or after ``tried``
        attempts, the replica after the last one tried."""
        n = self.n_replicas
        replica = (next(self._turn) if tried is None else tried) % n
        tried = replica if tried is None else tried
        ref = getattr(self.actors[shard][replica], method).remote(*args)
        return Call(shard, method, args, ref, tried)

    def submit_refs(self, shard: int, method: str, num_returns: int, *args) -> list:
        """``method(*args)`` on the next replica of ``shard``, its ``num_returns`` results left in
        Ray's object store (references to pass on, not fetched here); no retry."""
        replica = next(self._turn) % self.n_replicas
        return getattr(self.actors[shard][replica], method).options(num_returns=num_returns).remote(*args)

    def result(self, call: Call, retry: bool = True):
        """The call's result; a dead replica's call goes to the shard's other replicas in turn.
        An exception raised by the method itself is raised as it was (KeyError, ValueError...)."""
        ray = self.ray
        attempts = 0
        while True:
            try:
                return ray.get(call.ref)
            except ray.exceptions.RayTaskError as e:
                cause = getattr(e, "cause", None)
                raise (cause if isinstance(cause, Exception) else e) from None
            except ray.exceptions.RayActorError as e:
                attempts += 1
                if not retry or attempts >= self.n_replicas:
                    raise ShardUnavailableError(call.shard, self.paths[call.shard], e) from None
                call = self.submit(call.shard, call.method, *call.args, tried=call.tried + 1)

    def results(self, calls: list[Call], retry: bool = True) -> list:
        """:meth:`result` of each call: in one ``ray.get`` when all succeed (one wait instead of
        one per shard), else call by call so that each failure is retried or raised as above."""
        try:
            return self.ray.get([c.ref for c in calls])
        except self.ray.exceptions.RayError:
            return [self.result(c, retry) for c in calls]

    def call(self, shard: int, method: str, *args, retry: bool = True):
        return self.result(self.submit(shard, method, *args), retry)

    def on_all(self, method: str, args_of, shards=None, retry: bool = True) -> dict:
        """``method`` on every shard (or ``shards``) at once, with ``args_of(shard)``; results by shard."""
        shards = range(len(self.actors)) if shards is None else shards
        calls = [self.submit(s, method, *args_of(s)) for s in shards]
        return {c.shard: r for c, r in zip(calls, self.results(calls, retry))}

    def close(self) -> None:
        from ray.util.placement_group import remove_placement_group

        for actors in self.actors:
            for actor in actors:
                self.ray.kill(actor)
        self.actors = []
        for group in self._groups:
            remove_placement_group(group)
        self._groups = []


class FanOut:
    """The calls of one sharded read: each goes to every shard of ``root`` (or those holding
    documents) at its recorded generation. A shard that does not answer raises, or with
    ``allow_partial`` is left out of this read's later calls and listed in ``missing``.

    A read's arguments are pickled once for all shards and its answers come back pickled by the
    actor (``ShardActor.read``): Ray then moves one bytes object each way instead of serializing
    every argument and result object on its own, per shard (about 0.1-0.2 ms of CPU less per
    call in each process, docs/distributed.md)."""

    def __init__(self, replicas: Replicas, root, allow_partial: bool) -> None:
        self.replicas, self.root, self.allow_partial = replicas, root, allow_partial
        self.missing: dict[int, ShardUnavailableError] = {}

    def submit(
        self, method: str, *args, every: bool = False, shards: Collection[int] | None = None
    ) -> list[Call]:
        """``method(generation, *args)`` on each shard holding documents (``every``: each shard;
        ``shards``: those).
        The pickled arguments travel inside each call up to _PUT_BYTES (Ray inlines small
        arguments, ~1 ms cheaper per search than a trip through the object store); larger ones
        are put in the object store once and read by every shard."""
        payload = pickle.dumps(args, protocol=pickle.HIGHEST_PROTOCOL)
        if len(payload) > _PUT_BYTES:
            payload = self.replicas.ray.put(payload)
        return [
            self.replicas.submit(s, "read", shard.generation, method, payload)
            for s, shard in enumerate(self.root.shards)
            if (s in shards if shards is not None else every or shard.documents) and s not in self.missing
        ]

    def gather(self, calls: list[Call]) -> dict:
        """Each call's answer, by shard."""
        return {s: pickle.loads(answer) for s, answer in self._answers(calls).items()}

    def _answers(self, calls: list[Call]) -> dict:
        try:
            return {c.shard: r for c, r in zip(calls, self.replicas.ray.get([c.ref for c in calls]))}
        except self.replicas.ray.exceptions.RayError:  # one by one: retried, raised or left out
            pass
        answers = {}
        for call in calls:
            try:
                answers[call.shard] = self.replicas.result(call)
            except ShardUnavailableError as e:
                if not self.allow_partial:
                    raise
                self.missing[call.shard] = e
        return {s: a for s, a in answers.items() if s not in self.missing}

    @property
    def answered(self) -> tuple[int, ...]:
        return tuple(s for s in range(self.root.n_shards) if s not in self.missing)
