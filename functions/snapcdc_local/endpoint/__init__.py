"""The embedded emulation behind one HTTP endpoint (``snapcdc local serve``).

A request from any client (the AWS CLI, boto3, pyathena) is decoded with botocore's model of
its service (:mod:`.decode`: the service from the SigV4 credential scope, the operation and its
parameters from the protocol the request speaks), replayed through an in-process client of the
emulation, so that every behaviour installed at the client level applies to it as to the
stack's own calls (IAM for the caller's role, botocore's validation), and the emulation's
answer goes back as it was produced, in the caller's protocol (:mod:`.replay`). Athena requests
go to the emulation's Athena front as they arrived. :mod:`.server` is the HTTP server;
:mod:`.errors` shapes the errors the endpoint itself answers.
"""
