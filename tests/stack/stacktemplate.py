"""cfn.yaml as data for the tests: intrinsic functions resolved against test resource names,
and the IAM permissions each Lambda role grants.

``Stack(physical)`` resolves ``Ref``/``GetAtt``/``Sub``/``Select``/``Split``/``If`` with the
names the tests give their moto resources, so a policy's resource patterns can be matched
against the ARNs the handlers really touched.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from snapcdc_local.emulator.iam_policy import Decision, evaluate

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "cfn.yaml"
ASL = REPO / "state_machine.asl.json"


def asl_states(states: dict | None = None):
    """Every state of the state machine definition, Map iterations' states included."""
    states = json.loads(ASL.read_text())["States"] if states is None else states
    for name, state in states.items():
        yield name, state
        if state["Type"] == "Map":
            yield from asl_states(state["ItemProcessor"]["States"])


REGION = "us-east-1"
ACCOUNT = "123456789012"
STACK_ID = (
    f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/snapcdc/51af3dc0-da77-11e4-872e-1234567db123"
)


class _Loader(yaml.SafeLoader):
    """YAML with CloudFormation's short-form tags (``!Ref x`` -> ``{"Ref": "x"}``)."""


def _tag(loader: _Loader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_Loader.add_multi_constructor("!", _tag)


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    return yaml.load(path.read_text(), Loader=_Loader)  # noqa: S506 - SafeLoader subclass


@dataclass
class Call:
    """One AWS API call a handler made (recorded through botocore's event hooks)."""

    handler: str
    action: str  # IAM action, e.g. dynamodb:PutItem
    resource: str  # ARN


class Stack:
    def __init__(self, physical: dict[str, dict[str, str]], template: dict[str, Any] | None = None):
        self.template = template or load_template()
        self.physical = physical
        self.resources = self.template["Resources"]
        self.parameters = {
            name: str(p.get("Default", ""))
            for name, p in self.template.get("Parameters", {}).items()
        }

    # -- intrinsic functions ------------------------------------------------------------------

    def resolve(self, value: Any, variables: dict[str, Any] | None = None) -> Any:
        variables = variables or {}
        if isinstance(value, list):
            return [self.resolve(v, variables) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) != 1:
            return {k: self.resolve(v, variables) for k, v in value.items()}
        ((fn, arg),) = value.items()
        if fn == "Ref":
            return self._ref(arg)
        if fn == "Fn::GetAtt":
            logical, attribute = arg
            return self._attribute(logical, attribute)
        if fn == "Fn::Sub":
            text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
            scope = {**variables, **{k: self.resolve(v) for k, v in extra.items()}}
            return re.sub(r"\$\{([^}!]+)\}", lambda m: str(self._sub_var(m.group(1), scope)), text)
        if fn == "Fn::Select":
            index, items = arg
            return self.resolve(items, variables)[int(self.resolve(index, variables))]
        if fn == "Fn::Split":
            sep, text = arg
            return self.resolve(text, variables).split(sep)
        if fn == "Fn::If":
            condition, yes, no = arg
            return self.resolve(yes if self._condition(condition) else no, variables)
        return {k: self.resolve(v, variables) for k, v in value.items()}

    def _condition(self, name: str) -> bool:
        condition = self.template["Conditions"][name]
        ((fn, (left, right)),) = condition.items()
        assert fn == "Fn::Equals"
        return self.resolve(left) == self.resolve(right)

    def _sub_var(self, name: str, scope: dict[str, Any]) -> Any:
        if name in scope:
            return scope[name]
        if "." in name:
            logical, attribute = name.split(".", 1)
            return self._attribute(logical, attribute)
        return self._ref(name)

    def _ref(self, name: str) -> str:
        pseudo = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::Partition": "aws",
            "AWS::StackName": "snapcdc",
            "AWS::StackId": STACK_ID,
            "AWS::NoValue": None,
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        return self.physical.get(name, {}).get("Ref", f"<{name}>")

    def _attribute(self, logical: str, attribute: str) -> str:
        return self.physical.get(logical, {}).get(attribute, f"<{logical}.{attribute}>")

    # -- functions and roles ------------------------------------------------------------------

    def functions(self) -> dict[str, dict[str, Any]]:
        """Lambda functions by logical id."""
        return {
            name: r["Properties"]
            for name, r in self.resources.items()
            if r["Type"] == "AWS::Lambda::Function"
        }

    def function_for_handler(self, module: str) -> str:
        spec = f"snapcdc.handlers.{module}.handler"
        found = [n for n, p in self.functions().items() if p["Handler"] == spec]
        assert len(found) == 1, f"{len(found)} functions with handler {spec}"
        return found[0]

    def role_of_function(self, function: str) -> str:
        role = self.functions()[function]["Role"]
        return role["Fn::GetAtt"][0]

    def role_statements(self, role: str) -> list[dict[str, Any]]:
        """Allow statements of a role: its inline policies and AWS::IAM::Policy attached to it."""
        documents = [
            p["PolicyDocument"] for p in self.resources[role]["Properties"].get("Policies", [])
        ]
        for resource in self.resources.values():
            if resource["Type"] == "AWS::IAM::Policy":
                roles = resource["Properties"]["Roles"]
                if {"Ref": role} in roles:
                    documents.append(resource["Properties"]["PolicyDocument"])
        statements = []
        for document in documents:
            for statement in document["Statement"]:
                if statement["Effect"] != "Allow":
                    continue
                actions = statement["Action"]
                resources = statement["Resource"]
                statements.append(
                    {
                        "actions": [actions] if isinstance(actions, str) else actions,
                        "resources": [
                            self.resolve(r)
                            for r in (resources if isinstance(resources, list) else [resources])
                        ],
                        "condition": statement.get("Condition"),
                    }
                )
        return statements

    def is_granted(self, role: str, action: str, resource: str) -> bool:
        """The emulation's policy evaluation (:mod:`snapcdc_local.emulator.iam_policy`)."""
        statements = [
            {"Effect": "Allow", "Action": s["actions"], "Resource": s["resources"]}
            for s in self.role_statements(role)
        ]
        return evaluate([{"Statement": statements}], action, resource) is Decision.ALLOW

    def missing_permissions(self, calls: list[Call]) -> list[str]:
        """Calls whose handler's role does not allow them, as readable lines."""
        missing = set()
        for call in calls:
            role = self.role_of_function(self.function_for_handler(call.handler))
            if not self.is_granted(role, call.action, call.resource):
                missing.add(f"{call.handler} ({role}) lacks {call.action} on {call.resource}")
        return sorted(missing)
