"""Lambda entry points: thin wrappers that read settings, make clients and call one function.

``Handler`` in cfn.yaml is ``snapcdc.handlers.<module>.handler`` for each module here.
"""

HANDLERS = (
    "route",
    "register",
    "plan",
    "query",
    "check",
    "publish",
    "finish",
    "hold",
    "mark_failed",
    "execution_ended",
    "consumer",
    "applied_check",
    "verify",
    "repair",
)
