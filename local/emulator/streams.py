"""DynamoDB Streams to Lambda as the Lambda service delivers them: a poller, apart from the
writes, sends each table's new stream records to its mapped functions in order, in batches of
the mapping's BatchSize, and sends a batch again (after a pause) until the function takes it —
at least once, never out of order. moto instead invokes the function inside the write that
made the record (through Docker, which the local stack does not have), and keeps every record
of every table in memory; here only tables with a mapping keep records, until delivered."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from .lambda_invoke import forward_invoke

POLL_SECONDS = 0.2
RETRY_SECONDS = 1.0


class StreamPoller:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        # (table arn, function arn) -> sequence number delivered up to
        self.delivered: dict[tuple[str, str], int] = {}
        self.failures = 0

    def start(self) -> None:
        threading.Thread(target=self._loop, daemon=True, name="dynamodb-streams").start()

    def _loop(self) -> None:
        while True:
            try:
                busy = self._deliver_once()
            except Exception:  # noqa: BLE001 - the poller must outlive any one failure
                busy = False
            time.sleep(0 if busy else POLL_SECONDS)

    def _deliver_once(self) -> bool:
        from moto.dynamodb.models import dynamodb_backends

        busy = False
        for account, regions in list(dynamodb_backends.items()):
            for region, backend in list(regions.items()):
                for table in list(backend.tables.values()):
                    shard = getattr(table, "stream_shard", None)
                    if shard is None or not table.lambda_event_source_mappings:
                        continue
                    for function_arn, esm in list(table.lambda_event_source_mappings.items()):
                        busy |= self._deliver(table, shard, function_arn, esm, region)
                    self._trim(table, shard)
        return busy

    def _deliver(self, table: Any, shard: Any, function_arn: str, esm: Any, region: str) -> bool:
        key = (table.table_arn, function_arn)
        done = self.delivered.get(key, 0)
        batch_size = int(getattr(esm, "batch_size", None) or 100)
        with table_lock(table):
            pending = [r for r in shard.items if int(r.record["dynamodb"]["SequenceNumber"]) > done][:batch_size]
        if not pending:
            return False
        records = []
        for r in pending:
            record = dict(r.to_json())
            dynamodb = dict(record["dynamodb"])
            created = dynamodb.get("ApproximateCreationDateTime")
            if hasattr(created, "timestamp"):
                dynamodb["ApproximateCreationDateTime"] = created.timestamp()
            record["dynamodb"] = dynamodb
            record["awsRegion"] = region
            record["eventSourceARN"] = esm.event_source_arn
            records.append(record)
        headers: dict = {}
        answer = forward_invoke(function_arn, json.dumps({"Records": records}, default=str).encode(), {}, headers)
        if headers.get("x-amz-function-error"):
            self.failures += 1
            time.sleep(RETRY_SECONDS)
            return False
        failed = [f.get("itemIdentifier") for f in json.loads(answer or b"{}").get("batchItemFailures", []) or []]
        if failed:
            # ReportBatchItemFailures: the batch is taken up to the first failed record.
            self.failures += 1
            first = min(int(s) for s in failed)
            self.delivered[key] = first - 1
            time.sleep(RETRY_SECONDS)
            return False
        self.delivered[key] = int(pending[-1].record["dynamodb"]["SequenceNumber"])
        return True

    def _trim(self, table: Any, shard: Any) -> None:
        keys = [k for k in self.delivered if k[0] == table.table_arn]
        if len(keys) < len(table.lambda_event_source_mappings):
            return
        upto = min(self.delivered[k] for k in keys)
        with table_lock(table):
            shard.items = [r for r in shard.items if int(r.record["dynamodb"]["SequenceNumber"]) > upto]


_LOCKS_LOCK = threading.Lock()


def table_lock(table: Any) -> Any:
    """The lock of a table's stream records (one per table, made once)."""
    with _LOCKS_LOCK:
        return table.__dict__.setdefault("_stream_lock", threading.Lock())


POLLER = StreamPoller()

# A transaction's stream records, held until it commits: moto applies a transaction's items one
# by one and puts them back when one fails, and a record of a write that was rolled back must
# never reach a function.
TRANSACTION = threading.local()


class transaction_records:  # noqa: N801 - used as a context manager, like a function
    """Holds the stream records made inside; commits them if the block ends without an error."""

    def __enter__(self) -> None:
        TRANSACTION.pending = []

    def __exit__(self, kind: Any, *_: Any) -> None:
        pending, TRANSACTION.pending = TRANSACTION.pending, None
        if kind is None:
            for shard, old, new in pending:
                _record(shard, old, new)


def _record(shard: Any, old: Any, new: Any) -> None:
    from moto.dynamodb.models.table import StreamRecord

    t = shard.table.stream_specification["StreamViewType"]
    event_name = "INSERT" if old is None else "REMOVE" if new is None else "MODIFY"
    with table_lock(shard.table):
        seq = shard.starting_sequence_number + getattr(shard, "_next", 0)
        shard._next = getattr(shard, "_next", 0) + 1  # noqa: SLF001
        shard.items.append(StreamRecord(shard.table, t, event_name, old, new, seq))


def install_stream_delivery() -> None:
    """Stream records are kept for mapped tables only and delivered by the poller."""
    import copy

    from moto.dynamodb.models.table import StreamShard

    def add(self: StreamShard, old: Any, new: Any) -> None:
        if not self.table.lambda_event_source_mappings:
            return
        pending = getattr(TRANSACTION, "pending", None)
        if pending is not None:
            # The item objects may change before the transaction commits: keep them as they are.
            pending.append((self, copy.deepcopy(old), copy.deepcopy(new)))
        else:
            _record(self, old, new)

    StreamShard.add = add
    POLLER.start()
