"""DynamoDB: calls serialized (DynamoDB guarantees each conditional write and transaction is
atomic; moto checks, then writes, without a lock), and `TransactWriteItems` backed up by the items
it touches instead of a deep copy of the whole table per item."""

from __future__ import annotations

import copy
import os
import threading

DYNAMODB = threading.Lock()
SERIALIZE_DYNAMODB = os.environ.get("LOCAL_DYNAMODB_UNSERIALIZED") != "1"


def install_transaction_rollback_by_item() -> None:
    """moto backs a transaction up by deep-copying the whole table once per item in it, so one
    100-item transaction into a 40,000-item table copies four million items (a 1,000-member
    discovery took minutes, all of it here). Back up only the items the transaction touches, and
    put exactly those back when it is cancelled: the same all-or-nothing outcome."""
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    original = DynamoDBBackend.transact_write_items
    backing_up = threading.local()

    def table_deepcopy(self, memo):  # noqa: ANN001
        if getattr(backing_up, "active", False):
            return self  # the touched items are backed up instead (below)
        cls = self.__class__
        copied = cls.__new__(cls)
        memo[id(self)] = copied
        for name, value in self.__dict__.items():
            setattr(copied, name, copy.deepcopy(value, memo))
        return copied

    def touched(self, transact_items):  # noqa: ANN001
        for entry in transact_items:
            op = next(iter(entry.values()), {})
            table = self.tables.get(op.get("TableName"))
            key = op.get("Item") if "Item" in op else op.get("Key")
            if table is None or not key or table.hash_key_attr not in key:
                continue
            if table.range_key_attr is not None and table.range_key_attr not in key:
                continue  # moto refuses the operation itself
            hash_value = DynamoType(key[table.hash_key_attr])
            range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
            yield table, hash_value, range_value

    def transact_write_items(self, transact_items):  # noqa: ANN001
        from .streams import transaction_records

        with transaction_records():
            return backed_up(self, transact_items)

    def backed_up(self, transact_items):  # noqa: ANN001
        backup = [(t, h, r, copy.deepcopy(t.get_item(h, r))) for t, h, r in touched(self, transact_items)]
        backing_up.active = True
        try:
            return original(self, transact_items)
        except Exception:
            for table, hash_value, range_value, item in reversed(backup):
                if item is None:
                    table.delete_item(hash_value, range_value)
                elif range_value is not None:
                    table.items[hash_value][range_value] = item
                else:
                    table.items[hash_value] = item
            raise
        finally:
            backing_up.active = False

    Table.__deepcopy__ = table_deepcopy
    DynamoDBBackend.transact_write_items = transact_write_items
