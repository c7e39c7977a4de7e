"""The local AWS emulator: moto's server, plus what the Accounts service needs that moto lacks.

Extensions, each at the wire level so product code never knows it runs locally:

- Lambda: moto runs no code without Docker. `Invoke` (direct, and the Step Functions
  interpreter's `lambda:invoke` tasks) is forwarded to the local host, which runs the real Rust
  handlers. A handler failure comes back with `X-Amz-Function-Error` and the handler's
  `{"errorType", "errorMessage"}`, so state machines' Retry/Catch match the real error names.
- IAM access keys: moto looks for a request's access key in every account in turn (~140 ms a
  request with 10,000 accounts); the emulator indexes where keys are, with the same answers.
- STS: `AssumeRole` into a role that does not exist, or whose trust policy does not admit the
  caller's account, is refused with `AccessDenied` as AWS refuses it (moto grants every call).

- DynamoDB: moto serves requests on many threads and checks a condition, then writes, without
  a lock of its own; only the interpreter's scheduling keeps a racing write out of that gap.
  DynamoDB guarantees each conditional write and transaction is atomic, and the store's
  concurrency tests should rest on that guarantee, not on timing: the emulator serializes
  DynamoDB calls. (Measured: 30 rounds of 20 racing conditional puts gave one winner each with
  and without this; LOCAL_DYNAMODB_UNSERIALIZED=1 turns it off.)
- DynamoDB `TransactWriteItems`: moto backs a transaction up by deep-copying the whole table
  once per item in it (a 100-item transaction into a 40,000-item table copies four million
  items); the emulator backs up and restores only the items the transaction touches.
- Organizations `CreateAccount` answers IN_PROGRESS and creates the account only when a later
  `DescribeCreateAccountStatus` finds the request done, as AWS does (moto completes at once). A
  second account with an email already in the organization fails with EMAIL_ALREADY_EXISTS
  (moto accepts it). Each request stays IN_PROGRESS for one status call by default; planned
  outcomes can make requests fail with a reason or take longer.
- GuardDuty membership (moto has no CreateMembers, GetMembers or ListMembers): an administrator
  account's members, ENABLED at once when the administrator is the organization's delegated
  GuardDuty administrator (as AWS does for organization members), and the member's
  GetAdministratorAccount naming its administrator in GuardDuty's camelCase wire format.
- S3 `GetBucketVersioning` answers with S3's `<VersioningConfiguration>` root (moto's
  `GetBucketVersioningResponse` root makes SDKs fail to parse it).
- Step Functions' own integration (`states:startExecution.sync:2`, used to run Account Assurance
  from the create and bootstrap workflows): moto's interpreter passes the ASL's PascalCase
  parameters to boto unchanged and returns boto's camelCase results; the emulator maps both the
  way AWS does.
- CloudWatch Logs: events EventBridge delivers to a log group get an integer timestamp (moto
  stores a float, which SDKs refuse to parse).
- S3 Control: its endpoint rules put the account id in front of the endpoint's host
  (`111122223333.127.0.0.1:PORT`), which cannot resolve; the local host gives functions the
  emulator as their HTTP proxy (the SDK honours HTTP_PROXY like every AWS SDK), and the emulator
  routes such hosts to S3 Control.
- EventBridge: rule targets that are Lambda functions are invoked (asynchronously, as AWS
  does; moto delivers only to logs, SQS, archives and buses).
- Organizations events: AWS publishes CloudTrail-based `aws.organizations` events on the
  us-east-1 default bus; moto publishes none. The emulator puts the ones the service listens to
  there, shaped as CloudTrail records them: `CreateAccountResult` (when an account is created),
  `CloseAccountResult`, `RemoveAccountFromOrganization`, `MoveAccount`.
- EventBridge Scheduler: moto stores schedules and never runs them; the emulator fires enabled
  `rate(…)` and `at(…)` schedules on time (a `rate` counted from the schedule's creation, as
  the scheduler does) and invokes their Lambda targets asynchronously with the schedule's
  `Input`. `cron(…)` schedules are kept but not fired.
- IAM enforcement (moto grants every call): a request signed with a role session's credentials
  (each function's execution role; the sessions functions open in member accounts) is allowed
  only what the role's policies and the session's policy allow, as IAM decides; see access.py
  for what is evaluated. Organizations' new-account role holds AdministratorAccess, as AWS's does.
- Faults: the next N calls of an operation can be answered with an AWS error (throttling,
  `ConcurrentModificationException`, …), to show that callers retry.

Control endpoints (not AWS APIs), under `/_local/`:
- `POST /_local/lambda-host` `{"url": "http://127.0.0.1:PORT"}`: where to forward invocations.
- `POST /_local/faults` `{"target": "AWSOrganizationsV20161128.DescribeOrganization",
  "error": "TooManyRequestsException", "count": 2}`: the next 2 calls of that JSON-protocol
  operation (its `X-Amz-Target`) fail with HTTP 400 and that error code (`"count": 0` clears;
  `"after": K` lets the K calls before them through).
- `GET /_local/faults`: the faults still pending and how many were served.
- `POST /_local/iam/lambda-credentials` `{"RoleArn": "…", "SessionName": "…"}`: a session of
  that role, as Lambda gives a function its execution role's; `GET /_local/iam/access`: what
  each principal was granted, allowed and refused.
- `POST /_local/scheduler/run` `{"Name": "…", "GroupName": "default"}`: fire that schedule now,
  exactly as when it is due (its target and input); `GET /_local/scheduler`: runs per schedule.
- `POST /_local/rate-limits` `{"target": "AWSOrganizationsV20161128.ListAccounts",
  "per_second": 5, "error": "TooManyRequestsException"}`: calls of that operation beyond that
  many in any second are answered with the error (as AWS throttles its control planes).
- `POST /_local/organizations/members` `{"count": 10000, "without_role_every": 50}`: that many
  ACTIVE members at once, every 50th without the provisioning role (for benchmarks).
- `GET /_local/stats`: AWS API calls served since the last `POST /_local/stats/reset`, by
  caller (`functions`: the service's code; `stepfunctions`: the state machine interpreter's own
  calls, such as Lambda Invoke; `benchmark`: callers signing with the key `bench`) and
  `service operation`.
- `POST /_local/organizations/create-account` `{"outcomes": [{"state": "FAILED", "reason":
  "ACCOUNT_LIMIT_EXCEEDED", "polls": 2}]}`: how the next CreateAccount requests end (in order)
  and after how many status calls; unplanned requests succeed after one.

One module per extension (lambda_invoke, iam, access, dynamodb, organizations, guardduty, s3,
stepfunctions, logs, eventbridge, scheduler, faults, stats) and control.py, the router in
front of moto. Usage, from local/: python -m emulator --port PORT (see __main__.py).
"""

from __future__ import annotations
