// A Socket.IO watcher for tests/test_http_live.py, written against the real `socket.io-client`.
//
// Usage: node live_client.mjs '<json>' where the JSON holds
//   url         the runctl HTTP base URL
//   subscribe   {executionId} or {batchId} to narrow to one run or batch; omitted: everything
//   probe       optional: a subscription expected to be refused (its ack is reported)
//   transports  optional Socket.IO transports, e.g. ["websocket"]
//   until       {event, status, key?, value?}: stop after that event with that status
//   timeoutMs   give up after this long (exit code 2)
// It prints one JSON line {"ready": true, ...} once subscribed, then one JSON line with every event
// it received, in order, and exits 0 when `until` was met.
import { io } from "socket.io-client";

const options = JSON.parse(process.argv[2]);
const received = [];
let ready = false; // the ready line is printed before the result, whatever arrives first
let met = false;
const socket = io(options.url, {
  transports: options.transports ?? ["polling", "websocket"],
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
    if (
      name === until.event &&
      data.status === until.status &&
      (until.key === undefined || data[until.key] === until.value)
    ) {
      met = true;
      if (ready) finish(0);
    }
  });
}

socket.on("connect_error", (error) => finish(3, { error: String(error) }));

socket.on("connect", async () => {
  const report = { ready: true, transport: socket.io.engine.transport.name };
  if (options.probe) {
    report.probe = await socket.timeout(5000).emitWithAck("subscribe", options.probe);
  }
  if (options.subscribe) {
    report.ack = await socket.timeout(5000).emitWithAck("subscribe", options.subscribe);
  }
  process.stdout.write(JSON.stringify(report) + "\n");
  ready = true;
  if (met) finish(0);
});
