"""The emulated IAM: the policy evaluator on AWS's documented cases, the call mapping, the hook.

Evaluator cases come from the IAM User Guide:
- explicit and implicit denies (the AllowGetList / DenyReports example):
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_AccessPolicyLanguage_Interplay.html
- Action: "The prefix and the action name are case insensitive", wildcards ``*`` and ``?``:
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html
- Resource: wildcards ``*`` (across ``/``) and ``?`` within ARN segments; ARNs are case-sensitive:
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html
- NotAction with Allow (everything but IAM) and NotResource with Deny:
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notaction.html
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notresource.html
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from snapcdc_local.emulator import iam
from snapcdc_local.emulator.athena_access import catalog_requirements
from snapcdc_local.emulator.iam_actions import UnmappedCall, Where, requirements
from snapcdc_local.emulator.iam_policy import Decision, UnsupportedPolicy, evaluate

ACCOUNT = "123456789012"
WHERE = Where("us-east-1", ACCOUNT)


def policy(*statements):
    return {"Version": "2012-10-17", "Statement": list(statements)}


# -- the evaluator ------------------------------------------------------------------------------

GET_LIST_DENY_REPORTS = policy(
    {
        "Sid": "AllowGetList",
        "Effect": "Allow",
        "Action": ["iam:Get*", "iam:List*"],
        "Resource": "*",
    },
    {"Sid": "DenyReports", "Effect": "Deny", "Action": "iam:*Report", "Resource": "*"},
)


@pytest.mark.parametrize(
    ("action", "decision"),
    [
        ("iam:GetUser", Decision.ALLOW),
        ("iam:ListRoles", Decision.ALLOW),
        ("iam:CreatePolicy", Decision.IMPLICIT_DENY),
        ("iam:GetOrganizationsAccessReport", Decision.EXPLICIT_DENY),
        ("iam:GenerateCredentialReport", Decision.EXPLICIT_DENY),
    ],
)
def test_explicit_deny_overrides_allow_and_default_is_deny(action, decision):
    assert evaluate([GET_LIST_DENY_REPORTS], action, "*") is decision


def test_a_deny_in_another_policy_overrides_an_allow():
    allow = policy({"Effect": "Allow", "Action": "s3:*", "Resource": "*"})
    deny = policy({"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "arn:aws:s3:::b/*"})
    assert evaluate([allow, deny], "s3:DeleteObject", "arn:aws:s3:::b/k") is Decision.EXPLICIT_DENY
    assert evaluate([allow, deny], "s3:DeleteObject", "arn:aws:s3:::c/k") is Decision.ALLOW
    assert evaluate([], "s3:GetObject", "arn:aws:s3:::b/k") is Decision.IMPLICIT_DENY


def test_actions_are_case_insensitive_with_wildcards():
    doc = policy({"Effect": "Allow", "Action": ["S3:get*", "dynamodb:?etItem"], "Resource": "*"})
    assert evaluate([doc], "s3:GetObject", "*") is Decision.ALLOW
    assert evaluate([doc], "dynamodb:GetItem", "*") is Decision.ALLOW
    assert evaluate([doc], "dynamodb:SetItem", "*") is Decision.ALLOW
    assert evaluate([doc], "dynamodb:BatchGetItem", "*") is Decision.IMPLICIT_DENY
    assert evaluate([doc], "s3:PutObject", "*") is Decision.IMPLICIT_DENY


def test_resource_wildcards_and_case():
    doc = policy(
        {
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": ["arn:aws:s3:::bucket/exports/*", "arn:aws:s3:::bucket/v?.csv"],
        }
    )
    allowed = ["arn:aws:s3:::bucket/exports/a/b/c.gz", "arn:aws:s3:::bucket/v1.csv"]
    refused = [
        "arn:aws:s3:::bucket/v10.csv",  # ? is one character
        "arn:aws:s3:::bucket/Exports/a",  # ARNs are case-sensitive
        "arn:aws:s3:::bucket/exportsX",
        "arn:aws:s3:::bucket2/exports/a",
    ]
    for arn in allowed:
        assert evaluate([doc], "s3:GetObject", arn) is Decision.ALLOW, arn
    for arn in refused:
        assert evaluate([doc], "s3:GetObject", arn) is Decision.IMPLICIT_DENY, arn


def test_pattern_characters_are_literal():
    # moto's evaluator reads '.' as a regular expression: "b.c" would match "bxc".
    doc = policy({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b.c/*"})
    assert evaluate([doc], "s3:GetObject", "arn:aws:s3:::bxc/k") is Decision.IMPLICIT_DENY
    assert evaluate([doc], "s3:GetObject", "arn:aws:s3:::b.c/k") is Decision.ALLOW


def test_not_action_allows_everything_else():
    doc = policy({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})
    assert evaluate([doc], "s3:GetObject", "arn:aws:s3:::b/k") is Decision.ALLOW
    assert evaluate([doc], "iam:CreateUser", "*") is Decision.IMPLICIT_DENY


def test_not_resource_denies_everything_else():
    doc = policy(
        {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
        {
            "Effect": "Deny",
            "Action": "s3:*",
            "NotResource": ["arn:aws:s3:::allowed", "arn:aws:s3:::allowed/*"],
        },
    )
    assert evaluate([doc], "s3:GetObject", "arn:aws:s3:::allowed/k") is Decision.ALLOW
    assert evaluate([doc], "s3:GetObject", "arn:aws:s3:::other/k") is Decision.EXPLICIT_DENY


def test_a_resource_account_condition_pins_the_owning_account():
    # Lambda's S3 on-failure destination page asks for PutObject pinned to the account's buckets.
    pinned = policy(
        {
            "Effect": "Allow",
            "Action": "s3:PutObject",
            "Resource": "arn:aws:s3:::b/*",
            "Condition": {"StringEquals": {"s3:ResourceAccount": "111122223333"}},
        }
    )
    # S3 ARNs name no account: an emulated bucket belongs to the emulated (caller's) account.
    assert evaluate([pinned], "s3:PutObject", "arn:aws:s3:::b/k", "111122223333") is Decision.ALLOW
    assert (
        evaluate([pinned], "s3:PutObject", "arn:aws:s3:::b/k", "444455556666")
        is Decision.IMPLICIT_DENY
    )


def test_a_namespace_condition_scopes_put_metric_data():
    scoped = policy(
        {
            "Effect": "Allow",
            "Action": "cloudwatch:PutMetricData",
            "Resource": "*",
            "Condition": {"StringEquals": {"cloudwatch:namespace": "snapcdc"}},
        }
    )
    ours = {"cloudwatch:namespace": "snapcdc"}
    theirs = {"cloudwatch:namespace": "other"}
    assert evaluate([scoped], "cloudwatch:PutMetricData", "*", "1", ours) is Decision.ALLOW
    assert evaluate([scoped], "cloudwatch:PutMetricData", "*", "1", theirs) is (
        Decision.IMPLICIT_DENY
    )
    with pytest.raises(UnsupportedPolicy, match="cloudwatch:namespace"):
        evaluate([scoped], "cloudwatch:PutMetricData", "*", "1")  # a request without the key


def test_what_is_not_emulated_is_refused_not_guessed():
    conditional = policy(
        {
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": "*",
            "Condition": {"Bool": {"aws:SecureTransport": "true"}},
        }
    )
    with pytest.raises(UnsupportedPolicy, match="Condition"):
        evaluate([conditional], "s3:GetObject", "arn:aws:s3:::b/k")
    variable = policy(
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/${aws:username}"}
    )
    with pytest.raises(UnsupportedPolicy, match="policy variables"):
        evaluate([variable], "s3:GetObject", "arn:aws:s3:::b/x")
    with pytest.raises(UnsupportedPolicy, match="exactly one of Resource and NotResource"):
        evaluate([policy({"Effect": "Allow", "Action": "s3:*"})], "s3:GetObject", "*")


def test_policy_documents_may_be_json_text():
    assert evaluate([json.dumps(GET_LIST_DENY_REPORTS)], "iam:GetUser", "*") is Decision.ALLOW


# -- the call mapping ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("service", "operation", "params", "expected"),
    [
        (
            "s3",
            "ListObjectsV2",
            {"Bucket": "b", "Prefix": "p/"},
            [("s3:ListBucket", "arn:aws:s3:::b")],
        ),
        ("s3", "HeadBucket", {"Bucket": "b"}, [("s3:ListBucket", "arn:aws:s3:::b")]),
        ("s3", "UploadPart", {"Bucket": "b", "Key": "k"}, [("s3:PutObject", "arn:aws:s3:::b/k")]),
        (
            "s3",
            "CopyObject",
            {"Bucket": "b", "Key": "k", "CopySource": {"Bucket": "a", "Key": "x"}},
            [("s3:GetObject", "arn:aws:s3:::a/x"), ("s3:PutObject", "arn:aws:s3:::b/k")],
        ),
        (
            "dynamodb",
            "PutItem",
            {"TableName": "t"},
            [("dynamodb:PutItem", f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/t")],
        ),
        (
            "kinesis",
            "PutRecords",
            {"StreamName": "s"},
            [("kinesis:PutRecords", f"arn:aws:kinesis:us-east-1:{ACCOUNT}:stream/s")],
        ),
        (
            "athena",
            "StartQueryExecution",
            {"WorkGroup": "w"},
            [("athena:StartQueryExecution", f"arn:aws:athena:us-east-1:{ACCOUNT}:workgroup/w")],
        ),
        (
            "lambda",
            "Invoke",
            {"FunctionName": "f"},
            [("lambda:InvokeFunction", f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:f")],
        ),
        (
            "sqs",
            "SendMessage",
            {"QueueUrl": f"https://sqs.us-east-1.amazonaws.com/{ACCOUNT}/dlq"},
            [("sqs:SendMessage", f"arn:aws:sqs:us-east-1:{ACCOUNT}:dlq")],
        ),
        ("cloudwatch", "PutMetricData", {}, [("cloudwatch:PutMetricData", "*")]),
        ("sts", "GetCallerIdentity", {}, []),
    ],
)
def test_calls_map_to_the_documented_action_and_resource(service, operation, params, expected):
    assert requirements(service, operation, params, WHERE) == expected


def test_an_unmapped_call_fails_loudly():
    with pytest.raises(UnmappedCall, match="no rule for s3:DeleteBucket"):
        requirements("s3", "DeleteBucket", {"Bucket": "b"}, WHERE)


def test_athena_statements_need_glue_access_as_athena_documents():
    catalog = f"arn:aws:glue:us-east-1:{ACCOUNT}:catalog"
    default = f"arn:aws:glue:us-east-1:{ACCOUNT}:database/default"
    db = f"arn:aws:glue:us-east-1:{ACCOUNT}:database/d"
    table = f"arn:aws:glue:us-east-1:{ACCOUNT}:table/d/t"
    mandatory = {
        (a, r) for a in ("glue:GetDatabase", "glue:CreateDatabase") for r in (catalog, default)
    }

    create = set(
        catalog_requirements(
            "CREATE EXTERNAL TABLE d.t (a string) ROW FORMAT SERDE "
            "'org.apache.hadoop.hive.serde2.OpenCSVSerde' LOCATION 's3://b/p/'",
            None,
            WHERE,
        )
    )
    assert mandatory <= create
    assert {("glue:CreateTable", r) for r in (catalog, db, table)} <= create
    assert {
        ("glue:GetTable", table),
        ("glue:GetTables", table),
        ("glue:GetDatabases", db),
    } <= create

    drop = set(catalog_requirements("DROP TABLE IF EXISTS `t`", "d", WHERE))
    assert {("glue:DeleteTable", r) for r in (catalog, db, table)} <= drop
    assert not any(a.endswith("Partition") for a, _ in drop)  # the tables have no partitions

    select = set(catalog_requirements("WITH x AS (SELECT * FROM t) SELECT * FROM x", "d", WHERE))
    assert {("glue:GetTable", table), ("glue:GetPartitions", table)} <= select
    assert not any(r.endswith("/x") for _, r in select)  # a CTE is no catalog table

    database = set(catalog_requirements("CREATE DATABASE IF NOT EXISTS d", None, WHERE))
    assert {("glue:CreateDatabase", r) for r in (catalog, db)} <= database


# -- the hook, on moto --------------------------------------------------------------------------


@pytest.fixture
def account():
    with mock_aws():
        session = boto3.Session(region_name="us-east-1")
        authorizer = iam.Authorizer(WHERE)
        with authorizer.installed(session):
            client = session.client("iam")
            role = client.create_role(RoleName="reader", AssumeRolePolicyDocument="{}")["Role"]
            client.put_role_policy(
                RoleName="reader",
                PolicyName="read",
                PolicyDocument=json.dumps(
                    policy(
                        {
                            "Effect": "Allow",
                            "Action": "s3:GetObject",
                            "Resource": "arn:aws:s3:::bkt/ok/*",
                        },
                        {
                            "Effect": "Deny",
                            "Action": "s3:GetObject",
                            "Resource": "arn:aws:s3:::bkt/ok/secret",
                        },
                    )
                ),
            )
            s3 = session.client("s3")
            s3.create_bucket(Bucket="bkt")
            for key in ("ok/1", "ok/secret", "no/1"):
                s3.put_object(Bucket="bkt", Key=key, Body=b"x")
            yield authorizer, s3, role["Arn"]


def test_a_denied_call_fails_as_aws_fails_it(account):
    authorizer, s3, role = account
    with iam.acting_as(role, "fn"):
        assert s3.get_object(Bucket="bkt", Key="ok/1")["Body"].read() == b"x"
        with pytest.raises(ClientError) as denied:
            s3.get_object(Bucket="bkt", Key="no/1")
        with pytest.raises(ClientError) as explicit:
            s3.get_object(Bucket="bkt", Key="ok/secret")
    error = denied.value.response["Error"]
    assert error["Code"] == "AccessDenied"
    assert error["Message"] == (
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/reader/fn is not authorized to perform: "
        "s3:GetObject on resource: arn:aws:s3:::bkt/no/1 because no identity-based policy allows "
        "the s3:GetObject action"
    )
    assert explicit.value.response["Error"]["Message"].endswith(
        "with an explicit deny in an identity-based policy"
    )
    # outside any principal nothing is checked
    assert s3.get_object(Bucket="bkt", Key="no/1")["Body"].read() == b"x"


def test_an_unmapped_call_of_a_principal_is_refused_and_recorded(account):
    authorizer, s3, role = account
    with iam.acting_as(role, "fn"), pytest.raises(UnmappedCall, match="s3:GetBucketAcl"):
        s3.get_bucket_acl(Bucket="bkt")
    assert authorizer.unmapped == ["s3:GetBucketAcl"]


def test_threads_and_pool_tasks_act_as_their_starter(account):
    authorizer, s3, role = account
    outcomes = []

    def read():
        try:
            s3.get_object(Bucket="bkt", Key="no/1")
            outcomes.append("read")
        except ClientError as exc:
            outcomes.append(exc.response["Error"]["Code"])

    with ThreadPoolExecutor(max_workers=1) as pool:
        with iam.acting_as(role, "fn"):
            thread = threading.Thread(target=read)
            thread.start()
            thread.join()
            pool.submit(read).result()
        pool.submit(read).result()  # the same pool thread, submitted by no principal
    assert outcomes == ["AccessDenied", "AccessDenied", "read"]


def test_decisions_are_cached_per_role_action_and_resource(account):
    authorizer, s3, role = account
    with iam.acting_as(role, "fn"):
        for _ in range(3):
            s3.get_object(Bucket="bkt", Key="ok/1")
    assert authorizer.decisions == {(role, "s3:GetObject", "arn:aws:s3:::bkt/ok/1"): Decision.ALLOW}


def test_a_missing_key_reads_as_access_denied_without_list_bucket(account):
    authorizer, s3, role = account
    with iam.acting_as(role, "fn"), pytest.raises(ClientError) as missing:
        s3.get_object(Bucket="bkt", Key="ok/absent")
    assert missing.value.response["Error"]["Code"] == "AccessDenied"
    assert "s3:ListBucket on resource: arn:aws:s3:::bkt " in str(missing.value)
    boto3_iam = boto3.client("iam", region_name="us-east-1")
    boto3_iam.put_role_policy(
        RoleName="reader",
        PolicyName="list",
        PolicyDocument=json.dumps(
            policy({"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::bkt"})
        ),
    )
    authorizer.decisions.clear()
    with iam.acting_as(role, "fn"), pytest.raises(ClientError) as missing:
        s3.get_object(Bucket="bkt", Key="ok/absent")
    assert missing.value.response["Error"]["Code"] == "NoSuchKey"
