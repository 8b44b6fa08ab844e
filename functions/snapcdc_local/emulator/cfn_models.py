"""What moto's CloudFormation lacks for this stack, filled in where moto looks for it.

moto creates a resource by looking up a model class for its ``Type``; unknown types are
skipped and every ``!Ref`` to them resolves to nothing. Three gaps matter here:

- ``AWS::Athena::WorkGroup`` and ``AWS::Glue::Database`` have no model: :class:`AthenaWorkGroup`
  and :class:`GlueDatabase` create them in moto's Athena and Glue backends from the template's
  properties, and ``!Ref`` gives their name as in AWS.
- ``AWS::StepFunctions::StateMachine`` is created in the plain Step Functions backend, which
  does not execute anything, and ignores ``Definition``, ``DefinitionS3Location`` and
  ``DefinitionSubstitutions``. :func:`installed` replaces its creation so the state machine
  lands in the executing backend with the substituted definition, under the same ARN.

- ``AWS::Lambda::Permission`` is created (the statement joins the function's policy) but has
  no physical ID, so the stack's resource list misses it; :func:`installed` gives it the
  statement's ``Sid``, as CloudFormation gives it an ID.
- Executing a change set updates the stack's resources only; :func:`installed` also gives the
  stack the change set's template, outputs and parameters, as CloudFormation does. An update
  modifies every resource whose resolved properties change (:func:`_resource_diff`), not only
  those whose declaration did or that name a changed parameter directly.
- moto parses templates with PyYAML's pure-Python loader, several times per change set;
  :class:`_LibYaml` gives it libyaml's.
- Queue policies and alarms have no model either; they are created through moto's API from
  their properties (moto stores them; neither changes how the pipeline runs). Bucket policies
  are recorded but not applied (see :class:`S3BucketPolicy`).

Everything is driven by the deployed template; nothing here knows this stack's resources.

>>> substitute('{"Resource": "${Fn}", "Next": "${Missing}"}', {"Fn": "arn:x"})
'{"Resource": "arn:x", "Next": "${Missing}"}'
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

from moto.core.common_models import CloudFormationModel

SUBSTITUTION_RE = re.compile(r"\$\{([A-Za-z0-9_.:\-]+)\}")


def substitute(definition: str, substitutions: dict[str, Any]) -> str:
    """Apply ``DefinitionSubstitutions`` like CloudFormation: ``${Name}`` -> value.

    Unknown names are left as they are (Step Functions then rejects or ignores them).
    """

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in substitutions:
            return match.group(0)
        value = substitutions[name]
        return value if isinstance(value, str) else json.dumps(value)

    return SUBSTITUTION_RE.sub(replace, definition)


class _ApiBacked:
    """A resource moto's CloudFormation lacks, created through moto's own API.

    Subclasses also derive from CloudFormationModel directly (moto lists only its direct
    subclasses), name the type and implement :meth:`create` (returning the physical id).
    """

    def __init__(self, physical_id: str) -> None:
        self.physical_id = physical_id

    @property
    def physical_resource_id(self) -> str:
        return self.physical_id

    @classmethod
    def create(cls, name: str, props: dict[str, Any], region: str) -> str:
        raise NotImplementedError

    @classmethod
    def remove(cls, physical_id: str, region: str) -> None:
        """Undo :meth:`create`; nothing by default (policies and alarms are overwritten)."""

    def delete(self, account_id: str, region: str) -> None:
        """What moto calls when the stack is deleted (with the account, not the resource)."""
        self.remove(self.physical_id, region)

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return False

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> _ApiBacked:
        props = cloudformation_json.get("Properties", {})
        return cls(cls.create(resource_name, props, region_name))

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[misc]
        cls,
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
    ) -> _ApiBacked:
        cls.remove(original_resource.physical_id, region_name)
        return cls.create_from_cloudformation_json(
            new_resource_name, cloudformation_json, account_id, region_name
        )

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str
    ) -> None:
        cls.remove(resource_name, region_name)

    def is_created(self) -> bool:
        return True


def _client(service: str, region: str) -> Any:
    import boto3

    return boto3.client(service, region_name=region)


class AthenaWorkGroup(_ApiBacked, CloudFormationModel):
    """``AWS::Athena::WorkGroup`` -> Athena ``CreateWorkGroup``."""

    @staticmethod
    def cloudformation_name_type() -> str:
        return "Name"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::Athena::WorkGroup"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in ("CreationTime",)

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

        if attribute_name == "CreationTime":
            return "1970-01-01T00:00:00Z"
        raise UnformattedGetAttTemplateException()

    @classmethod
    def create(cls, name: str, props: dict[str, Any], region: str) -> str:
        name = props.get("Name", name)
        _client("athena", region).create_work_group(
            Name=name,
            Configuration=json.loads(json.dumps(props.get("WorkGroupConfiguration", {}))),
            Description=props.get("Description", ""),
            Tags=props.get("Tags", []),
        )
        return name

    @classmethod
    def remove(cls, physical_id: str, region: str) -> None:
        _client("athena", region).delete_work_group(
            WorkGroup=physical_id, RecursiveDeleteOption=True
        )


class GlueDatabase(_ApiBacked, CloudFormationModel):
    """``AWS::Glue::Database`` -> Glue ``CreateDatabase``."""

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::Glue::Database"

    @classmethod
    def create(cls, name: str, props: dict[str, Any], region: str) -> str:
        database_input = dict(props.get("DatabaseInput", {}))
        # Glue stores names in lowercase; CloudFormation generates one when none is given.
        database_input["Name"] = str(database_input.get("Name") or name).lower()
        _client("glue", region).create_database(DatabaseInput=database_input)
        return database_input["Name"]

    @classmethod
    def remove(cls, physical_id: str, region: str) -> None:
        _client("glue", region).delete_database(Name=physical_id)


class S3BucketPolicy(_ApiBacked, CloudFormationModel):
    """``AWS::S3::BucketPolicy``: recorded, deliberately not applied.

    moto evaluates bucket policies on every request but treats a ``Deny`` statement whose
    condition does not hold as a denial (moto 5.2.5, ``IAMPolicyStatement.is_action_permitted``),
    so the stack's ``DenyInsecureTransport`` statement would refuse all access. AWS would allow
    these requests (they are HTTPS); the policies are kept in :attr:`policies` for inspection.
    """

    policies: dict[str, Any] = {}  # bucket -> policy document, for the record

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::S3::BucketPolicy"

    @classmethod
    def create(cls, name: str, props: dict[str, Any], region: str) -> str:
        cls.policies[props["Bucket"]] = props["PolicyDocument"]
        return name


class SqsQueuePolicy(_ApiBacked, CloudFormationModel):
    """``AWS::SQS::QueuePolicy`` -> ``SetQueueAttributes(Policy)`` on each queue."""

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::SQS::QueuePolicy"

    @classmethod
    def create(cls, name: str, props: dict[str, Any], region: str) -> str:
        sqs = _client("sqs", region)
        for url in props.get("Queues", []):
            sqs.set_queue_attributes(
                QueueUrl=url, Attributes={"Policy": json.dumps(props["PolicyDocument"])}
            )
        return name


class CloudWatchAlarm(_ApiBacked, CloudFormationModel):
    """``AWS::CloudWatch::Alarm`` -> ``PutMetricAlarm`` (the properties are the API's)."""

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::CloudWatch::Alarm"

    @classmethod
    def create(cls, name: str, props: dict[str, Any], region: str) -> str:
        args = {k: v for k, v in props.items() if k != "Tags"}
        args.setdefault("AlarmName", name)
        for number in ("Period", "EvaluationPeriods", "DatapointsToAlarm"):
            if number in args:
                args[number] = int(args[number])
        if "Threshold" in args:
            args["Threshold"] = float(args["Threshold"])
        _client("cloudwatch", region).put_metric_alarm(**args)
        return args["AlarmName"]

    @classmethod
    def remove(cls, physical_id: str, region: str) -> None:
        _client("cloudwatch", region).delete_alarms(AlarmNames=[physical_id])

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[misc]
        cls,
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
    ) -> CloudWatchAlarm:
        """In place, under its name: a change of actions, threshold or metric does not replace
        an alarm (AlarmName alone does)."""
        props = dict(cloudformation_json.get("Properties") or {})
        props.setdefault("AlarmName", original_resource.physical_id)
        if props["AlarmName"] != original_resource.physical_id:
            cls.remove(original_resource.physical_id, region_name)
        return cls(cls.create(new_resource_name, props, region_name))


def state_machine_definition(props: dict[str, Any], read_s3: Any) -> str:
    """The definition a state machine resource declares, substitutions applied.

    ``read_s3(bucket, key)`` fetches ``DefinitionS3Location`` (the packaged template form).
    """
    if "DefinitionString" in props:
        definition = props["DefinitionString"]
    elif "Definition" in props:
        definition = json.dumps(props["Definition"])
    elif "DefinitionS3Location" in props:
        location = props["DefinitionS3Location"]
        definition = read_s3(location["Bucket"], location["Key"])
    else:
        raise ValueError(
            "state machine has none of DefinitionString, Definition, DefinitionS3Location"
        )
    return substitute(definition, props.get("DefinitionSubstitutions") or {})


def _create_state_machine(
    cls: Any,
    resource_name: str,
    cloudformation_json: Any,
    account_id: str,
    region_name: str,
    **kwargs: Any,
) -> Any:
    from moto.s3.models import s3_backends
    from moto.stepfunctions.responses import get_backend

    def read_s3(bucket: str, key: str) -> str:
        return s3_backends[account_id]["aws"].get_object(bucket, key).value.decode()

    props = cloudformation_json["Properties"]
    name = props.get("StateMachineName", resource_name)
    tags = [{"key": t["Key"], "value": t["Value"]} for t in props.get("Tags", [])]
    # The backend the Step Functions API answers from: the executing one under mock_aws config.
    return get_backend(account_id, region_name).create_state_machine(
        name=name,
        definition=state_machine_definition(props, read_s3),
        roleArn=props.get("RoleArn", ""),
        tags=tags,
        loggingConfiguration=props.get("LoggingConfiguration"),
        tracingConfiguration=props.get("TracingConfiguration"),
        sm_type=props.get("StateMachineType", "STANDARD"),
    )


def _delete_state_machine(
    cls: Any, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str
) -> None:
    from moto.stepfunctions.responses import get_backend

    get_backend(account_id, region_name).delete_state_machine(resource_name)


_STATE_MACHINE_ATTRS = ("Arn", "Name", "StateMachineName", "DefinitionString", "RoleArn", "Tags")


def _state_machine_attribute(self: Any, attribute_name: str, original: Any = None) -> Any:
    if attribute_name == "Arn":
        return self.arn
    if attribute_name == "StateMachineRevisionId":
        return getattr(self, "revision_id", None) or self.arn
    return original(self, attribute_name)


def _create_permission(
    cls: Any,
    resource_name: str,
    cloudformation_json: dict[str, Any],
    account_id: str,
    region_name: str,
    **kwargs: Any,
) -> Any:
    from moto.awslambda.utils import get_backend

    properties = cloudformation_json["Properties"]
    function = get_backend(account_id, region_name).get_function(properties["FunctionName"])
    statement, _ = function.policy.add_statement(raw=json.dumps(properties))
    permission = cls(region=region_name)
    permission.physical_resource_id = statement["Sid"]
    return permission


def _apply_change_set(change_set: Any, original: Any) -> None:
    """What executing a change set does to its stack besides the resources: moto's
    ``ChangeSet.apply`` (5.2.5) leaves the stack's template, outputs and parameters as they were
    (a stack created by a change set has no outputs at all). The stored parameters are the
    resolved ones (defaults included), the form a later change set's are compared in to tell
    "no changes"."""
    original(change_set)
    stack = change_set.stack
    stack.template = change_set.template
    stack._parse_template()
    stack.description = stack.template_dict.get("Description")
    stack.output_map = stack._create_output_map()
    stack.parameters = dict(stack.stack_parameters)


def references(node: Any) -> set[str]:
    """The parameters, resources and conditions a piece of template names.

    >>> sorted(references({"Fn::If": ["C", {"Ref": "P"}, {"Fn::GetAtt": ["R", "Arn"]}],
    ...                    "S": {"Fn::Sub": "${Q}-${T.Name}"}}))
    ['C', 'P', 'Q', 'R', 'T']
    """
    found: set[str] = set()
    if isinstance(node, list):
        for item in node:
            found |= references(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key in ("Ref", "Condition") and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                found.add(value[0] if isinstance(value, list) else str(value).split(".")[0])
            elif key == "Fn::If" and isinstance(value, list) and value:
                found.add(str(value[0]))
                found |= references(value[1:])
            elif key == "Fn::Sub":
                text, names = (value, {}) if isinstance(value, str) else (value[0], value[1])
                found |= {m.split(".")[0] for m in SUBSTITUTION_RE.findall(text)} - set(names)
                found |= references(names)
            else:
                found |= references(value)
    return found


def _resource_diff(
    resource_map: Any, template: dict[str, Any], parameters: dict[str, Any] | None = None
) -> dict[str, list[str]]:
    """Which resources an update adds, modifies and removes, as CloudFormation decides it:
    besides resources whose declaration changed, those whose resolved properties change, because
    they name a parameter whose value changed, a condition that depends on one, or a resource
    that is added, removed or modified. (moto's own diff, 5.2.5, sees only direct references to
    parameters, compared with the values given at creation rather than the resolved ones.)"""
    old, new = resource_map._resource_json_map, template.get("Resources") or {}
    actions = {
        "Add": [n for n in new if n not in old],
        "Modify": [n for n in new if n in old and new[n] != old[n]],
        "Remove": [n for n in old if n not in new],
    }
    if parameters is None:
        return actions
    declared = template.get("Parameters") or {}
    previous = resource_map.resolved_parameters

    def value(values: dict[str, Any], name: str) -> str:
        return str(values.get(name, declared[name].get("Default")))

    touched = {n for n in declared if value(parameters, n) != value(previous, n)}
    touched |= {*actions["Add"], *actions["Modify"], *actions["Remove"]}
    grown = True
    while grown:  # what depends on something changed has changed too
        grown = False
        for name, body in [*(template.get("Conditions") or {}).items(), *new.items()]:
            if name not in touched and references(body) & touched:
                touched.add(name)
                grown = True
                if name in new and name in old:
                    actions["Modify"].append(name)
    return actions


class _LibYaml:
    """What moto's CloudFormation uses of the ``yaml`` module, with libyaml's loader: moto
    parses a template several times per change set with the pure-Python loader (0.76 s for the
    82 KB packaged cfn.yaml, 0.06 s with libyaml; the same constructors, so the same values)."""

    def __init__(self) -> None:
        import yaml

        self._yaml = yaml
        self.Loader = getattr(yaml, "CLoader", yaml.Loader)  # noqa: N815 - yaml's own name

    def add_multi_constructor(self, tag: str, constructor: Any) -> None:
        self._yaml.add_multi_constructor(tag, constructor, Loader=self.Loader)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._yaml, name)


def refresh_model_registry() -> None:
    """moto caches its type -> model map; rebuild it so the models above are found."""
    from moto.cloudformation import parsing

    for cached in (parsing.get_model_list, parsing.get_model_map, parsing.get_name_type_map):
        cached.cache_clear()


@contextmanager
def installed() -> Iterator[None]:
    """Make moto's CloudFormation create what it otherwise skips, while the block runs."""
    from moto.awslambda.models import Permission
    from moto.cloudformation import models as cfn_backend_models
    from moto.cloudformation import responses as cfn_responses
    from moto.cloudformation.models import ChangeSet
    from moto.cloudformation.parsing import ResourceMap
    from moto.stepfunctions.models import StateMachine

    refresh_model_registry()
    original_attribute = StateMachine.get_cfn_attribute
    original_apply = ChangeSet.apply
    with (
        mock.patch.object(ChangeSet, "apply", lambda self: _apply_change_set(self, original_apply)),
        mock.patch.object(ResourceMap, "build_resource_diff", _resource_diff),
        mock.patch.object(cfn_backend_models, "yaml", _LibYaml()),
        mock.patch.object(cfn_responses, "yaml", _LibYaml()),
        mock.patch.object(
            Permission, "create_from_cloudformation_json", classmethod(_create_permission)
        ),
        mock.patch.object(
            StateMachine, "create_from_cloudformation_json", classmethod(_create_state_machine)
        ),
        mock.patch.object(
            StateMachine, "delete_from_cloudformation_json", classmethod(_delete_state_machine)
        ),
        mock.patch.object(
            StateMachine,
            "get_cfn_attribute",
            lambda self, name: _state_machine_attribute(self, name, original_attribute),
        ),
        mock.patch.object(
            StateMachine,
            "has_cfn_attr",
            classmethod(
                lambda cls, attr: attr in (*_STATE_MACHINE_ATTRS, "StateMachineRevisionId")
            ),
        ),
    ):
        yield
