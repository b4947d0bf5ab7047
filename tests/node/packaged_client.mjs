// Uses the packed TypeScript client (@runctl/client, installed from its npm tarball) the way a plain
// Node ESM project would: JavaScript only, nothing but the package itself imported.
//
// Usage: RUNCTL_GRPC_TARGET=host:port node packaged_client.mjs
// Prints one JSON line per case ({"case": ..., ...}) for tests/test_clients_ts_go.py to check.
import {
  Code,
  ConnectError,
  ExecutionSchema,
  ExecutionService,
  ExecutionStatus,
  RunctlError,
  WorkflowDefinitionSchema,
  createClient,
  createRunctlTransport,
  fromJson,
  toJson,
} from "@runctl/client";

const HELLO = {
  name: "Hello",
  nodes: [
    { id: "start", type: "start" },
    { id: "greet", type: "transform", config: { output: { greeting: "Hello, {{ input.name }}!" } } },
    { id: "end", type: "end", config: { output: "{{ nodes.greet.output }}" } },
  ],
  edges: [
    { from: "start", to: "greet" },
    { from: "greet", to: "end" },
  ],
};
const TERMINAL = new Set([ExecutionStatus.COMPLETED, ExecutionStatus.ERROR, ExecutionStatus.STOPPED]);

const executions = createClient(ExecutionService, createRunctlTransport(process.env.RUNCTL_GRPC_TARGET));
const report = (fields) => console.log(JSON.stringify(fields));

/** The failure of `call` as the fields a caller reads off a RunctlError. */
async function failure(call) {
  try {
    await call();
  } catch (error) {
    return {
      runctlError: error instanceof RunctlError,
      connectError: error instanceof ConnectError && ConnectError.from(error) === error,
      code: Code[error.code],
      reason: error.reason,
      domain: error.info?.domain,
      metadata: error.info?.metadata,
      fieldViolations: error.fieldViolations,
    };
  }
  return { failed: false };
}

const { execution } = await executions.startExecution({
  source: { case: "definition", value: fromJson(WorkflowDefinitionSchema, HELLO) },
  input: { name: "Ada" },
});
let status = execution.status;
for await (const message of executions.watchExecution({ executionId: execution.id })) {
  if (message.kind.case === "snapshot") status = message.kind.value.status;
  if (message.kind.case === "events") {
    for (const event of message.kind.value.events) {
      if (event.execution) status = event.execution.status;
    }
  }
  if (TERMINAL.has(status)) break;
}
const { execution: done } = await executions.getExecution({ executionId: execution.id });
report({ case: "run", status: ExecutionStatus[done.status], output: toJson(ExecutionSchema, done).output });

report({ case: "not_found", ...(await failure(() => executions.getExecution({ executionId: "exec_missing" }))) });
report({ case: "ended", ...(await failure(() => executions.stopExecution({ executionId: execution.id }))) });
report({ case: "bad_input", ...(await failure(() => executions.listExecutions({ pageSize: -1 }))) });
report({
  case: "stream",
  ...(await failure(async () => {
    for await (const _ of executions.watchExecution({ executionId: "exec_missing" })) {
      // the stream fails before its first message
    }
  })),
});
