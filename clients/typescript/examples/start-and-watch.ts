// Starts a run of an inline workflow definition and watches it live until it ends.
//
//   RUNCTL_GRPC_TARGET=127.0.0.1:50051 npx tsx examples/start-and-watch.ts [workflow.json]
//
// Without an argument it runs a small inline "Hello" workflow (with a one-second delay, so there is
// something to watch); with one, the JSON workflow
// document in that file (e.g. ../../examples/hello.json), sent inline, not stored.
import { readFileSync } from "node:fs";
import { fromJson, toJson } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { createClient } from "@connectrpc/connect";
import {
  EventType,
  ExecutionService,
  ExecutionStatus,
  WorkflowDefinitionSchema,
  createRunctlTransport,
} from "../src/index.js";

const HELLO = {
  name: "Hello",
  nodes: [
    { id: "start", type: "start" },
    { id: "greet", type: "transform", config: { output: { greeting: "Hello, {{ input.name }}!" } } },
    { id: "nap", type: "delay", config: { seconds: 1 } },
    { id: "end", type: "end", config: { output: "{{ nodes.greet.output }}" } },
  ],
  edges: [
    { from: "start", to: "greet" },
    { from: "greet", to: "nap" },
    { from: "nap", to: "end" },
  ],
};

const target = process.env.RUNCTL_GRPC_TARGET ?? "127.0.0.1:50051";
const file = process.argv[2];
const document = file ? JSON.parse(readFileSync(file, "utf8")) : HELLO;
const executions = createClient(ExecutionService, createRunctlTransport(target));

const started = await executions.startExecution({
  source: { case: "definition", value: fromJson(WorkflowDefinitionSchema, document) },
  input: { name: "Ada" },
});
const executionId = started.execution!.id;
console.log(`started ${executionId}`);

// A snapshot first, then the run's events as they commit; the stream ends after the event that
// finished the run. A watcher that reconnects passes the last `cursor` as `afterSequence`.
for await (const message of executions.watchExecution({ executionId })) {
  switch (message.kind.case) {
    case "snapshot":
      console.log(`snapshot ${ExecutionStatus[message.kind.value.status]} (cursor ${message.cursor})`);
      break;
    case "events":
      for (const event of message.kind.value.events) {
        // Each event type has its own attributes message: a completed node carries its output.
        const attributes = event.attributes;
        const detail =
          attributes.case === "nodeCompletedAttributes" && attributes.value.output
            ? ` ${JSON.stringify(toJson(ValueSchema, attributes.value.output))}`
            : "";
        console.log(`#${event.sequence} ${EventType[event.type]}${event.nodeId ? ` ${event.nodeId}` : ""}${detail}`);
      }
      break;
    case "heartbeat":
      break;
  }
}

const { execution } = await executions.getExecution({ executionId });
const output = execution?.output ? JSON.stringify(toJson(ValueSchema, execution.output)) : "none";
console.log(`finished ${ExecutionStatus[execution!.status]}, output ${output}`);
