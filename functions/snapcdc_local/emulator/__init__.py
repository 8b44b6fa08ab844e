"""The AWS side of snapcdc emulated in process: moto plus the bridges moto lacks.

Entry point: :class:`Emulator` (:mod:`.emulated_aws`), a context manager that starts moto,
installs the bridges and deploys a CloudFormation template::

    with Emulator(Path("cfn.yaml"), parameters={"QueryPollSeconds": "1"},
                  lambda_code=Path("functions/snapcdc")) as aws:
        aws.client("s3").put_object(...)       # any boto3 client, answered by moto
        aws.settle()                           # executions finished, Kinesis drained
        aws.stack.outputs, aws.stack.physical_id("TargetTable")
        aws.lambdas.overrides[name] = wrapper  # fault injection around a real handler

One module per gap: :mod:`.lambdas` (handlers run in process), :mod:`.athena` (queries on the
DuckDB engine), :mod:`.cfn` / :mod:`.cfn_models` (packaging, deploying, resource types moto's
CloudFormation skips), :mod:`.eventbridge` (S3 -> EventBridge -> Step Functions),
:mod:`.stepfunctions` (unnamed executions, context-object times, status-change events,
StopExecution, history rows), :mod:`.stepfunctions_limits` (uncatchable errors, the history
quota), :mod:`.kinesis` (write limits, indexed shards), :mod:`.kinesis_poller` (the event
source mapping poller; :mod:`.kinesis_events`, :mod:`.kinesis_failures`), :mod:`.fastpath`
(hot calls handed straight to moto), :mod:`.dynamodb` (atomic conditional writes, fast item
reads, condition parses cached), :mod:`.locking` (moto methods run under one lock),
:mod:`.s3files` (S3 prefixes as local files for the engine), :mod:`.lambda_code` (a deployed
function's own ``snapcdc`` package, imported beside this process's). ``Emulator(None)`` is an
empty account (``snapcdc local serve``: stacks come through CloudFormation's API;
:meth:`Emulator.stacks_changed` applies what moto's CloudFormation leaves out).
"""

from snapcdc_local.emulator.emulated_aws import Emulator

__all__ = ["Emulator"]
