// A Socket.IO client of one workspace for tests/test_workspace_isolation.py, on the real
// `socket.io-client`.
//
// Usage: node workspace_client.mjs '<json>' where the JSON holds
//   url        the runctl HTTP base URL
//   apiKey     the workspace's API key (sent in the handshake's `auth`, as browsers do)
//   probes     subscriptions to try, in order (e.g. [{executionId}, {batchId}]); each ack is reported
//   until      {event, status, key, value}: stop after that event with that status
//   timeoutMs  give up after this long (exit code 2)
// It prints one JSON line {"ready": true, "acks": [...]} once every probe was acked, then one JSON
// line with every event it received, in order, and exits 0 when `until` was met.
import { io } from "socket.io-client";

const options = JSON.parse(process.argv[2]);
const received = [];
let ready = false;
let met = false;
const socket = io(options.url, {
  auth: { apiKey: options.apiKey },
  transports: ["websocket"],
  reconnection: false,
  timeout: 10000,
});

function finish(code, extra = {}) {
  clearTimeout(timer);
  process.stdout.write(JSON.stringify({ done: code === 0, events: received, ...extra }) + "\n");
  socket.close();
  process.exit(code);
}

const timer = setTimeout(() => finish(2, { error: "timed out" }), options.timeoutMs ?? 20000);

for (const name of ["execution-update", "batch-update", "node-execution"]) {
  socket.on(name, (data) => {
    received.push({ name, data });
    const until = options.until;
    if (name === until.event && data.status === until.status && data[until.key] === until.value) {
      met = true;
      if (ready) finish(0);
    }
  });
}

socket.on("connect_error", (error) => finish(3, { error: String(error) }));

socket.on("connect", async () => {
  const acks = [];
  for (const probe of options.probes ?? []) {
    acks.push(await socket.timeout(5000).emitWithAck("subscribe", probe));
  }
  process.stdout.write(JSON.stringify({ ready: true, acks }) + "\n");
  ready = true;
  if (met) finish(0);
});
