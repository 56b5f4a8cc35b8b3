"""Deleting a consumer group: the one admin request aiokafka does not offer.

``DeleteGroups`` (API key 42) goes to the group's coordinator. Versions 0 and 1 have the
same shape and every Kafka since 1.1 serves them (4.x too: KIP-896 kept them).
"""

from __future__ import annotations

import asyncio

from aiokafka.client import AIOKafkaClient
from aiokafka.errors import for_code
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import Array, Int16, Int32, Schema, String

GROUP_ID_NOT_FOUND = 69
NON_EMPTY_GROUP = 68
COORDINATOR_LOADING = 14
NOT_COORDINATOR = 16


class GroupInUse(Exception):
    """The group still has members; Kafka refuses to delete it."""


class DeleteGroupsResponse_v0(Response):  # aiokafka names its structs so
    API_KEY = 42
    API_VERSION = 0
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("results", Array(("group_id", String("utf-8")), ("error_code", Int16))),
    )


class DeleteGroupsResponse_v1(Response):
    API_KEY = 42
    API_VERSION = 1
    SCHEMA = DeleteGroupsResponse_v0.SCHEMA


class DeleteGroupsRequest_v0(RequestStruct):
    API_KEY = 42
    API_VERSION = 0
    RESPONSE_TYPE = DeleteGroupsResponse_v0
    SCHEMA = Schema(("groups_names", Array(String("utf-8"))))


class DeleteGroupsRequest_v1(RequestStruct):
    API_KEY = 42
    API_VERSION = 1
    RESPONSE_TYPE = DeleteGroupsResponse_v1
    SCHEMA = DeleteGroupsRequest_v0.SCHEMA


class DeleteGroupsRequest(Request[DeleteGroupsRequest_v0 | DeleteGroupsRequest_v1]):
    API_KEY = 42

    def __init__(self, groups: list[str]) -> None:
        self._groups = groups

    def build(
        self, request_struct_class: type[DeleteGroupsRequest_v0 | DeleteGroupsRequest_v1]
    ) -> DeleteGroupsRequest_v0 | DeleteGroupsRequest_v1:
        return request_struct_class(self._groups)


async def delete_group(
    client: AIOKafkaClient, group_id: str, *, wait_for_members: float = 5.0
) -> bool:
    """Delete ``group_id`` with its committed offsets; False if there was none.

    Members that are leaving (a process stopping its consumers just before a rebuild) get
    ``wait_for_members`` seconds; a group still in use after that raises GroupInUse,
    because going on would leave that group where it stood instead of at the start."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_for_members
    while True:
        coordinator = await client.coordinator_lookup(0, group_id)
        response = await client.send(coordinator, DeleteGroupsRequest([group_id]))
        (_, code), *_ = response.results
        if code == 0:
            return True
        if code == GROUP_ID_NOT_FOUND:
            return False
        if code not in (NON_EMPTY_GROUP, COORDINATOR_LOADING, NOT_COORDINATOR):
            raise for_code(code)(f"cannot delete consumer group {group_id}")
        if loop.time() > deadline:
            if code == NON_EMPTY_GROUP:
                raise GroupInUse(f"consumer group {group_id} still has members")
            raise for_code(code)(f"cannot delete consumer group {group_id}")
        await asyncio.sleep(0.2)
