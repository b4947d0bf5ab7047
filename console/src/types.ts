// The runctl.v1 messages as the console API answers them: the proto JSON mapping (camelCase names,
// enum value names, RFC 3339 times, int64 as strings, unset fields left out). Only what the console reads.

export type ExecutionStatus =
  | 'EXECUTION_STATUS_QUEUED'
  | 'EXECUTION_STATUS_RUNNING'
  | 'EXECUTION_STATUS_PAUSED'
  | 'EXECUTION_STATUS_COMPLETED'
  | 'EXECUTION_STATUS_ERROR'
  | 'EXECUTION_STATUS_STOPPED';

export interface ForEachFrame {
  index?: number;
  parentNodeId?: string;
  total?: number;
}

export interface TraceLog {
  time?: string;
  level?: string;
  message?: string;
  details?: Record<string, unknown>;
}

export interface NodeState {
  nodeId: string;
  type?: string;
  name?: string;
  status?: string;
  attempts?: number;
  output?: unknown;
  error?: { message?: string; code?: string; details?: unknown };
  scheduleTime?: string;
  startTime?: string;
  endTime?: string;
  nextAttemptTime?: string;
  stack?: ForEachFrame[];
  logs?: TraceLog[];
  contextId?: string;
}

export interface EdgeState {
  fromNodeId?: string;
  toNodeId?: string;
  status?: string;
}

export interface Position {
  x?: number;
  y?: number;
}

export interface DefinitionNode {
  id: string;
  type?: string;
  name?: string;
  config?: Record<string, unknown>;
  breakpoint?: boolean;
  body?: { nodes?: DefinitionNode[]; edges?: DefinitionEdge[] };
}

export interface DefinitionEdge {
  from?: string;
  to?: string;
  when?: string;
}

export interface WorkflowDefinition {
  name?: string;
  description?: string;
  nodes?: DefinitionNode[];
  edges?: DefinitionEdge[];
  positions?: Record<string, Position>;
  width?: number;
  height?: number;
}

export interface FormField {
  name: string;
  label?: string;
  type?: string;
  required?: boolean;
  defaultValue?: unknown;
  options?: string[];
  description?: string;
}

export interface PausePoint {
  contextId: string;
  executionId?: string;
  workflowId?: string;
  nodeId?: string;
  reason?: string;
  resumeStatus?: string;
  createTime?: string;
  expireTime?: string;
  response?: {
    displayData?: { title?: string; message?: string; extra?: Record<string, unknown> };
    formFields?: FormField[];
  };
  stack?: ForEachFrame[];
}

export interface Execution {
  id: string;
  workflowId?: string;
  workflowVersion?: number;
  workflowName?: string;
  workflowPath?: string;
  status?: ExecutionStatus;
  input?: Record<string, unknown>;
  output?: unknown;
  nodes?: NodeState[];
  edges?: EdgeState[];
  nodeCounts?: Record<string, number>;
  currentNodeId?: string;
  pausedNodeId?: string;
  pauseReason?: string;
  pausePoints?: PausePoint[];
  traceLogs?: boolean;
  breakpointsDisabled?: boolean;
  error?: { message?: string; nodeId?: string };
  batchId?: string;
  definition?: WorkflowDefinition;
  createTime?: string;
  startTime?: string;
  endTime?: string;
  updateTime?: string;
}

export interface ExecutionEvent {
  sequence?: string;
  type?: string;
  time?: string;
  executionId?: string;
  nodeId?: string;
  stack?: ForEachFrame[];
  [attributes: string]: unknown;
}

export interface Workflow {
  id: string;
  name?: string;
  description?: string;
  version?: number;
  status?: string;
  definition?: WorkflowDefinition;
  webhookSecret?: string;
  createTime?: string;
  updateTime?: string;
  pauseTime?: string;
}

export interface BatchItem {
  executionId?: string;
  workflowId?: string;
  workflowFileName?: string;
  workflowPath?: string;
  status?: ExecutionStatus;
  currentNodeId?: string;
  error?: string;
  startTime?: string;
  endTime?: string;
}

export interface Batch {
  batchId: string;
  status?: string;
  sourceType?: string;
  folderPath?: string;
  totalWorkflows?: number;
  completed?: number;
  running?: number;
  queued?: number;
  failed?: number;
  stopped?: number;
  paused?: number;
  concurrency?: number;
  startTime?: string;
  endTime?: string;
  executions?: BatchItem[];
}
