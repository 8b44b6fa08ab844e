"""Athena workgroups as the emulated Athena keeps them.

A workgroup holds the configuration a query runs under: above all its result location and
whether that location is enforced over the caller's. Every account has the ``primary``
workgroup, which cannot be deleted
(https://docs.aws.amazon.com/athena/latest/ug/workgroups-create-update-delete.html).
Shapes as in the API reference: ``CreateWorkGroup``, ``GetWorkGroup``, ``ListWorkGroups``,
``UpdateWorkGroup``, ``DeleteWorkGroup``
(https://docs.aws.amazon.com/athena/latest/APIReference/API_WorkGroup.html).

>>> groups = Workgroups()
>>> _ = groups.create_work_group({"Name": "wg", "Configuration": {"BytesScannedCutoffPerQuery": 1}})
>>> groups.configuration("wg")
{'BytesScannedCutoffPerQuery': 1}
>>> sorted(g["Name"] for g in groups.list_work_groups({})["WorkGroups"])
['primary', 'wg']
"""

from __future__ import annotations

import copy
import re
import threading
import time
from typing import Any

from snapcdc_local.emulator.athena_executions import AthenaRequestError

PRIMARY = "primary"
# The API reference's pattern and length for a workgroup name.
NAME = re.compile(r"[a-zA-Z0-9._-]{1,128}")


class Workgroups:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._groups: dict[str, dict[str, Any]] = {}
        self._add(PRIMARY, {}, "")

    def _add(self, name: str, configuration: dict[str, Any], description: str) -> None:
        self._groups[name] = {
            "Name": name,
            "State": "ENABLED",
            "Configuration": copy.deepcopy(configuration),
            "Description": description,
            "CreationTime": time.time(),
        }

    def _get(self, name: Any) -> dict[str, Any]:
        group = self._groups.get(name) if isinstance(name, str) else None
        if group is None:
            raise AthenaRequestError(f"WorkGroup {name} is not found.")
        return group

    def configuration(self, name: str) -> dict[str, Any]:
        """The workgroup's configuration; ``AthenaRequestError`` if there is no such group."""
        with self._lock:
            return copy.deepcopy(self._get(name)["Configuration"])

    def create_work_group(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params.get("Name")
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise AthenaRequestError(f"Invalid workgroup name: {name!r}", "ValidationException")
        with self._lock:
            if name in self._groups:
                raise AthenaRequestError("WorkGroup is already created")
            self._add(name, params.get("Configuration") or {}, params.get("Description") or "")
        return {}

    def get_work_group(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            return {"WorkGroup": copy.deepcopy(self._get(params.get("WorkGroup")))}

    def list_work_groups(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            summaries = [
                {k: g[k] for k in ("Name", "State", "Description", "CreationTime")}
                for g in self._groups.values()
            ]
        return {"WorkGroups": summaries}

    def update_work_group(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            group = self._get(params.get("WorkGroup"))
            if "Description" in params:
                group["Description"] = params["Description"]
            if "State" in params:
                group["State"] = params["State"]
            updates = params.get("ConfigurationUpdates") or {}
            config = group["Configuration"]
            for key, value in updates.items():
                if key == "ResultConfigurationUpdates":
                    config.setdefault("ResultConfiguration", {}).update(
                        {k: v for k, v in value.items() if not k.startswith("Remove")}
                    )
                else:
                    config[key] = copy.deepcopy(value)
        return {}

    def delete_work_group(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params.get("WorkGroup")
        with self._lock:
            self._get(name)
            if name == PRIMARY:
                raise AthenaRequestError("The primary workgroup cannot be deleted.")
            del self._groups[name]
        return {}
