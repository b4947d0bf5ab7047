// Live updates: runctl's Socket.IO stream (execution-update, node-execution, batch-update) of the
// caller's workspace, authenticated with the same key through the handshake's `auth` object.
// A page listens and re-reads what changed; after a reconnect it re-reads everything, since updates
// sent while it was away are not replayed.

import { io, type Socket } from 'socket.io-client';
import { apiKey } from './session';

export interface ExecutionUpdate {
  executionId: string;
  status: string;
  currentNodeId?: string | null;
  batchId?: string;
}

export interface NodeUpdate {
  executionId: string;
  nodeId: string;
  status: string;
  stack?: Array<{ index: number; parentNodeId: string; total: number }>;
}

export interface BatchUpdate {
  batchId: string;
}

export interface LiveHandlers {
  execution?: (update: ExecutionUpdate) => void;
  node?: (update: NodeUpdate) => void;
  batch?: (update: BatchUpdate) => void;
  /** Connected again after a drop: re-read the page. */
  reconnected?: () => void;
}

let socket: Socket | null = null;

export function live(handlers: LiveHandlers): Socket {
  const key = apiKey();
  socket = io({ path: '/socket.io/', auth: key ? { apiKey: key } : {}, transports: ['websocket', 'polling'] });
  let connectedBefore = false;
  socket.on('connect', () => {
    document.body.dataset.live = 'connected';
    if (connectedBefore) handlers.reconnected?.();
    connectedBefore = true;
  });
  socket.on('disconnect', () => {
    document.body.dataset.live = 'disconnected';
  });
  if (handlers.execution) socket.on('execution-update', handlers.execution);
  if (handlers.node) socket.on('node-execution', handlers.node);
  if (handlers.batch) socket.on('batch-update', handlers.batch);
  return socket;
}

/** Calls `task` once after a burst of calls has ended, and never twice at the same time. */
export function debounced(task: () => Promise<void>, milliseconds = 150): () => void {
  let timer: number | undefined;
  let running = false;
  let again = false;
  const run = async (): Promise<void> => {
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      await task();
    } finally {
      running = false;
      if (again) {
        again = false;
        void run();
      }
    }
  };
  return () => {
    window.clearTimeout(timer);
    timer = window.setTimeout(() => void run(), milliseconds);
  };
}
