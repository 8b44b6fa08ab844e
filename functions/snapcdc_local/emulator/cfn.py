"""Deploy ``cfn.yaml`` into moto the way it is deployed to AWS: package, create the stack.

- :func:`load_template` reads the template with cfn-lint's decoder (short-form tags such as
  ``!Ref``/``!Sub``/``!GetAtt`` become their long form).
- :func:`package` does what ``aws cloudformation package`` does for the properties this stack
  uses: a local path in ``AWS::Lambda::Function.Code`` is zipped (the Lambda artifact: the
  deployed package ``functions/snapcdc`` as it is, minus byte code) and uploaded, a local path in
  ``AWS::StepFunctions::StateMachine.DefinitionS3Location`` is uploaded; both are replaced by
  their S3 location.
- :func:`deploy` calls ``CreateStack`` and returns a :class:`Stack` (resources with physical ids
  from ``DescribeStackResources``, outputs, and each resource's properties as resolved in the
  deployed stack).
- :func:`apply_bucket_notifications` fills one more moto gap: moto's CloudFormation ignores
  a bucket's ``NotificationConfiguration``; it is applied through the S3 API instead.

>>> zip_excluded("snapcdc/__pycache__/x.pyc"), zip_excluded("snapcdc/handlers/check.py")
(True, False)
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

# Byte code is the interpreter's cache, not source: the artifact is the package as it is.
ZIP_EXCLUDED_DIRS = ("__pycache__",)


class DeployError(RuntimeError):
    """The template could not be read, packaged or deployed; the message says why."""


def load_template(path: Path) -> dict[str, Any]:
    """Read a CloudFormation template (YAML or JSON) into plain long-form JSON values."""
    from cfnlint.decode import decode

    template, matches = decode(str(path))
    if matches or template is None:
        reason = "; ".join(str(m.message) for m in matches) if matches else "empty template"
        raise DeployError(f"cannot read template {path}: {reason}")
    return json.loads(json.dumps(template))


def zip_excluded(relative: str) -> bool:
    parts = Path(relative).parts
    in_excluded_dir = any(p in ZIP_EXCLUDED_DIRS or p.endswith(".egg-info") for p in parts[:-1])
    return in_excluded_dir or parts[-1].endswith(".pyc")


def zip_directory(directory: Path, prefix: str = "") -> bytes:
    """The deployment package for ``directory``, deterministic (sorted, fixed timestamps).

    ``prefix`` goes in front of every name (``snapcdc/`` to zip a package as itself).
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.rglob("*")):
            relative = path.relative_to(directory).as_posix()
            if path.is_file() and not zip_excluded(relative):
                info = zipfile.ZipInfo(prefix + relative, date_time=(1980, 1, 1, 0, 0, 0))
                info.external_attr = 0o644 << 16
                archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


def package(
    template: dict[str, Any],
    base_dir: Path,
    bucket: str,
    region: str,
    lambda_code: Path | None = None,
) -> dict[str, Any]:
    """Upload local artifacts the template names and point the template at them.

    ``lambda_code``: a package directory zipped for every function whose ``Code`` is a local
    path, instead of that path. The emulator runs handlers from the source in this process, so
    it uploads that source rather than a build output (``build/lambda``) that may not exist.
    """
    s3 = boto3.client("s3", region_name=region)
    packaged = json.loads(json.dumps(template))
    source_zip = zip_directory(lambda_code, prefix=f"{lambda_code.name}/") if lambda_code else None
    for logical_id, resource in packaged.get("Resources", {}).items():
        props = resource.get("Properties") or {}
        kind = resource.get("Type")
        if kind == "AWS::Lambda::Function" and isinstance(props.get("Code"), str):
            if source_zip is not None:
                body = source_zip
            else:
                source = _local(base_dir, props["Code"], logical_id)
                body = zip_directory(source) if source.is_dir() else source.read_bytes()
            key = f"{hashlib.md5(body).hexdigest()}.zip"  # noqa: S324 - a content name, as the CLI does
            s3.put_object(Bucket=bucket, Key=key, Body=body)
            props["Code"] = {"S3Bucket": bucket, "S3Key": key}
        if kind == "AWS::StepFunctions::StateMachine" and isinstance(
            props.get("DefinitionS3Location"), str
        ):
            source = _local(base_dir, props["DefinitionS3Location"], logical_id)
            body = source.read_bytes()
            key = f"{hashlib.md5(body).hexdigest()}.json"  # noqa: S324
            s3.put_object(Bucket=bucket, Key=key, Body=body)
            props["DefinitionS3Location"] = {"Bucket": bucket, "Key": key}
    return packaged


def _local(base_dir: Path, relative: str, logical_id: str) -> Path:
    path = (base_dir / relative).resolve()
    if not path.exists():
        raise DeployError(
            f"{logical_id}: local artifact {relative!r} not found next to the template ({path})"
        )
    return path


@dataclass(frozen=True)
class Resource:
    logical_id: str
    type: str
    physical_id: str


@dataclass
class Stack:
    """A deployed stack: its resources by logical id and its outputs."""

    name: str
    region: str
    account_id: str
    template: dict[str, Any]
    resources: dict[str, Resource] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    status: str = ""
    status_reason: str = ""

    def of_type(self, resource_type: str) -> list[Resource]:
        return [r for r in self.resources.values() if r.type == resource_type]

    def physical_id(self, logical_id: str) -> str:
        if logical_id not in self.resources:
            raise KeyError(f"stack {self.name} has no resource {logical_id!r}")
        return self.resources[logical_id].physical_id

    def properties(self, logical_id: str) -> dict[str, Any]:
        """The resource's properties with every intrinsic function resolved in this stack."""
        from moto.cloudformation.models import cloudformation_backends
        from moto.cloudformation.parsing import clean_json

        backend = cloudformation_backends[self.account_id][self.region]
        stack = next(
            s
            for s in backend.stacks.values()
            if s.name == self.name and s.status != "DELETE_COMPLETE"
        )
        raw = json.loads(json.dumps(self.template["Resources"][logical_id].get("Properties") or {}))
        return clean_json(raw, stack.resource_map)


def deploy(
    template: dict[str, Any], stack_name: str, region: str, parameters: dict[str, str] | None = None
) -> Stack:
    """``CreateStack`` in moto and describe the result."""
    cfn = boto3.client("cloudformation", region_name=region)
    declared = template.get("Parameters") or {}
    unknown = sorted(set(parameters or {}) - set(declared))
    if unknown:
        raise DeployError(
            f"parameter(s) {unknown} not declared by the template (declared: {sorted(declared)})"
        )
    for name, value in (parameters or {}).items():
        refused = parameter_refused(declared[name], str(value))
        if refused:
            raise DeployError(f"parameter {name}={value!r} is not allowed: {refused}")
    try:
        cfn.create_stack(
            StackName=stack_name,
            TemplateBody=json.dumps(template),
            Parameters=[
                {"ParameterKey": k, "ParameterValue": str(v)} for k, v in (parameters or {}).items()
            ],
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
        )
    except Exception as exc:
        raise DeployError(f"CreateStack {stack_name} failed: {exc}") from exc
    stack = describe(stack_name, region, template)
    if stack.status != "CREATE_COMPLETE":
        raise DeployError(f"stack {stack_name} is {stack.status}: {stack.status_reason}")
    return stack


def describe(stack_name: str, region: str, template: dict[str, Any]) -> Stack:
    """The deployed stack ``stack_name`` (of ``template``): resources, outputs, status."""
    cfn = boto3.client("cloudformation", region_name=region)
    description = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    account_id = description["StackId"].split(":")[4]
    stack = Stack(name=stack_name, region=region, account_id=account_id, template=template)
    stack.status = description["StackStatus"]
    stack.status_reason = description.get("StackStatusReason", "")
    if stack.status != "CREATE_COMPLETE" and not stack.status.startswith("UPDATE_"):
        return stack
    for item in cfn.describe_stack_resources(StackName=stack_name)["StackResources"]:
        if "LogicalResourceId" in item:  # moto lists skipped resources without one
            stack.resources[item["LogicalResourceId"]] = Resource(
                item["LogicalResourceId"], item["ResourceType"], item["PhysicalResourceId"]
            )
    declared = template.get("Resources", {})
    missing = sorted(set(declared) - set(stack.resources) - _conditional_off(template, stack))
    if missing:
        described = ", ".join(f"{name} ({declared[name]['Type']})" for name in missing)
        raise DeployError(
            f"the emulation cannot create {described}: moto's CloudFormation has no model "
            "for the type (add one in snapcdc_local.emulator.cfn_models)"
        )
    stack.outputs = {
        o["OutputKey"]: o.get("OutputValue", "") for o in description.get("Outputs", [])
    }
    return stack


def live_stacks(account_id: str, region: str) -> list[tuple[str, dict[str, Any]]]:
    """Name and template of every stack CloudFormation has finished creating or updating."""
    from moto.cloudformation.models import cloudformation_backends

    backend = cloudformation_backends[account_id][region]
    return [
        (s.name, s.template_dict)
        for s in list(backend.stacks.values())
        if s.status in ("CREATE_COMPLETE", "UPDATE_COMPLETE")
    ]


def parameter_refused(declaration: dict[str, Any], value: str) -> str | None:
    """Why CloudFormation refuses ``value`` for a parameter so declared (None: it is taken):
    its Type (Number), MinValue / MaxValue, AllowedValues, AllowedPattern, MinLength /
    MaxLength, as CreateStack checks them before creating anything
    (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/parameters-section-structure.html).
    moto's CloudFormation checks none of them, and a value out of bounds fails deep in a
    resource (a stream of 0 shards) or not at all.

    >>> parameter_refused({"Type": "Number", "MinValue": 1, "MaxValue": 500}, "0")
    'must be at least 1'
    >>> parameter_refused({"Type": "String", "AllowedValues": ["A", "B"]}, "C")
    "must be one of ['A', 'B']"
    """
    why = _refusal(declaration, value)
    if why and declaration.get("ConstraintDescription"):
        why += f" ({declaration['ConstraintDescription']})"
    return why


def _refusal(declaration: dict[str, Any], value: str) -> str | None:
    kind = declaration.get("Type", "String")
    if kind == "Number":
        try:
            number = float(value)
        except ValueError:
            return "must be a number"
        if "MinValue" in declaration and number < float(declaration["MinValue"]):
            return f"must be at least {declaration['MinValue']}"
        if "MaxValue" in declaration and number > float(declaration["MaxValue"]):
            return f"must be at most {declaration['MaxValue']}"
    allowed = declaration.get("AllowedValues")
    if allowed is not None and value not in [str(a) for a in allowed]:
        return f"must be one of {[str(a) for a in allowed]}"
    pattern = declaration.get("AllowedPattern")
    if pattern is not None and re.fullmatch(pattern, value) is None:
        return f"must match the pattern {pattern}"
    if "MinLength" in declaration and len(value) < int(declaration["MinLength"]):
        return f"must be at least {declaration['MinLength']} characters"
    if "MaxLength" in declaration and len(value) > int(declaration["MaxLength"]):
        return f"must be at most {declaration['MaxLength']} characters"
    return None


def _conditional_off(template: dict[str, Any], stack: Stack) -> set[str]:
    # Resources with a Condition may legitimately be absent; trust moto's evaluation of it.
    return {k for k, r in template.get("Resources", {}).items() if r.get("Condition")}


def _filter(cfn_filter: dict[str, Any] | None) -> dict[str, Any]:
    rules = ((cfn_filter or {}).get("S3Key") or {}).get("Rules") or []
    return {"Filter": {"Key": {"FilterRules": rules}}} if rules else {}


def notification_api_config(cfn_config: dict[str, Any]) -> dict[str, Any]:
    """A bucket's CloudFormation ``NotificationConfiguration`` in the S3 API's shape.

    >>> notification_api_config({"EventBridgeConfiguration": {"EventBridgeEnabled": True}})
    {'EventBridgeConfiguration': {}}
    """
    api: dict[str, Any] = {}
    if (cfn_config.get("EventBridgeConfiguration") or {}).get("EventBridgeEnabled") in (
        True,
        "true",
        "True",
    ):
        api["EventBridgeConfiguration"] = {}
    for cfn_key, api_key, arn_key, api_arn in (
        ("LambdaConfigurations", "LambdaFunctionConfigurations", "Function", "LambdaFunctionArn"),
        ("QueueConfigurations", "QueueConfigurations", "Queue", "QueueArn"),
        ("TopicConfigurations", "TopicConfigurations", "Topic", "TopicArn"),
    ):
        for item in cfn_config.get(cfn_key) or []:
            api.setdefault(api_key, []).append(
                {api_arn: item[arn_key], "Events": [item["Event"]], **_filter(item.get("Filter"))}
            )
    return api


def apply_bucket_notifications(stack: Stack) -> None:
    s3 = boto3.client("s3", region_name=stack.region)
    for bucket in stack.of_type("AWS::S3::Bucket"):
        config = stack.properties(bucket.logical_id).get("NotificationConfiguration")
        if config:
            s3.put_bucket_notification_configuration(
                Bucket=bucket.physical_id, NotificationConfiguration=notification_api_config(config)
            )
