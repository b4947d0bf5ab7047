// A Socket.IO client for tests/test_revocation.py, written against the real `socket.io-client`:
// connects with an API key, reports when it is connected, then reports how the server ended the
// connection (the `auth-error` message and the disconnect reason).
//
// Usage: node revoked_client.mjs '<json>' with {url, apiKey, timeoutMs}. Prints {"connected": true}
// once connected, then {"disconnected": reason, "authError": message|null}; exits 0, or 2 on timeout
// and 3 when the connection was refused.
import { io } from "socket.io-client";

const options = JSON.parse(process.argv[2]);
let authError = null;
const socket = io(options.url, {
  transports: ["websocket"],
  reconnection: false,
  timeout: 10000,
  auth: { apiKey: options.apiKey },
});

function finish(code, report) {
  clearTimeout(timer);
  process.stdout.write(JSON.stringify(report) + "\n");
  socket.close();
  process.exit(code);
}

const timer = setTimeout(() => finish(2, { error: "timed out" }), options.timeoutMs ?? 20000);
socket.on("connect", () => process.stdout.write(JSON.stringify({ connected: true }) + "\n"));
socket.on("connect_error", (error) => finish(3, { error: String(error) }));
socket.on("auth-error", (data) => { authError = data.message; });
socket.on("disconnect", (reason) => finish(0, { disconnected: reason, authError }));
