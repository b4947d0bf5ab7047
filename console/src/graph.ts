// A workflow graph as SVG: laid out from the document's node positions when it gives one for every
// node, else by dagre. Each node shows its state (a data-status attribute the stylesheet colours) and,
// for a loop, one square per iteration. Nodes are buttons: Tab to one, Enter or Space to select it.

import dagre from '@dagrejs/dagre';
import { s } from './dom';
import { nodeStatus } from './format';
import type { DefinitionNode, EdgeState, NodeState, WorkflowDefinition } from './types';

const WIDTH = 168;
const HEIGHT = 52;
const LOOP_HEIGHT = 72;
const SQUARE = 9;
const MAX_SQUARES = 14;
const MARGIN = 24;

interface Box {
  x: number; // centre
  y: number;
  width: number;
  height: number;
}

export interface GraphView {
  element: SVGSVGElement;
  /** Recolour one node, or one loop iteration when `stack` says which. */
  setStatus(nodeId: string, status: string, stack?: Array<{ index?: number; parentNodeId?: string; total?: number }>): void;
  select(nodeId: string | null): void;
}

/** `error` (a live update's word) and `failed` (NodeState's) are the same state. */
export function stateWord(status: string): string {
  return status === 'error' ? 'failed' : status === 'retrying' ? 'scheduled' : status;
}

function label(node: DefinitionNode): string {
  const text = node.name || node.id;
  return text.length > 22 ? `${text.slice(0, 21)}…` : text;
}

function layout(definition: WorkflowDefinition, nodes: DefinitionNode[]): Map<string, Box> {
  const boxes = new Map<string, Box>();
  const heightOf = (node: DefinitionNode): number => (node.type === 'for_each' ? LOOP_HEIGHT : HEIGHT);
  const positions = definition.positions ?? {};
  if (nodes.length > 0 && nodes.every((node) => positions[node.id])) {
    // The document's positions are the top-left corners of its editor's nodes.
    for (const node of nodes) {
      const at = positions[node.id];
      const height = heightOf(node);
      boxes.set(node.id, { x: (at.x ?? 0) + WIDTH / 2, y: (at.y ?? 0) + height / 2, width: WIDTH, height });
    }
    return boxes;
  }
  const graph = new dagre.graphlib.Graph();
  graph.setGraph({ rankdir: 'TB', nodesep: 36, ranksep: 48, marginx: 0, marginy: 0 });
  graph.setDefaultEdgeLabel(() => ({}));
  for (const node of nodes) graph.setNode(node.id, { width: WIDTH, height: heightOf(node) });
  for (const edge of definition.edges ?? []) {
    if (edge.from && edge.to && graph.hasNode(edge.from) && graph.hasNode(edge.to)) graph.setEdge(edge.from, edge.to);
  }
  dagre.layout(graph);
  for (const node of nodes) {
    const laid = graph.node(node.id);
    boxes.set(node.id, { x: laid.x, y: laid.y, width: WIDTH, height: heightOf(node) });
  }
  return boxes;
}

/** Where the line from `box`'s centre towards (x, y) leaves the box. */
function border(box: Box, x: number, y: number): [number, number] {
  const dx = x - box.x;
  const dy = y - box.y;
  if (dx === 0 && dy === 0) return [box.x, box.y];
  const scale = Math.min(
    dx === 0 ? Infinity : box.width / 2 / Math.abs(dx),
    dy === 0 ? Infinity : box.height / 2 / Math.abs(dy),
  );
  return [box.x + dx * scale, box.y + dy * scale];
}

interface Iteration {
  index: number;
  status: string;
}

/** The iterations of each top-level loop, from the states of its body's nodes. */
function iterationsOf(states: NodeState[]): Map<string, Map<number, Iteration>> {
  const loops = new Map<string, Map<number, Iteration>>();
  const rank = ['failed', 'stopped', 'running', 'waiting', 'scheduled', 'idle', 'completed', 'skipped'];
  for (const state of states) {
    const frame = state.stack?.[0];
    if (!frame?.parentNodeId) continue;
    const index = frame.index ?? 0;
    const iterations = loops.get(frame.parentNodeId) ?? new Map<number, Iteration>();
    loops.set(frame.parentNodeId, iterations);
    const status = stateWord(nodeStatus(state.status));
    const seen = iterations.get(index);
    // An iteration shows its most telling node: a failure over work in flight over work done.
    if (!seen || rank.indexOf(status) < rank.indexOf(seen.status)) iterations.set(index, { index, status });
  }
  return loops;
}

export function drawGraph(
  definition: WorkflowDefinition,
  states: NodeState[],
  edgeStates: EdgeState[],
  onSelect: ((nodeId: string) => void) | null,
): GraphView {
  const nodes = definition.nodes ?? [];
  const boxes = layout(definition, nodes);
  const topLevel = new Map(states.filter((state) => !state.stack?.length).map((state) => [state.nodeId, state]));
  const loops = iterationsOf(states);
  const edgeStatus = new Map(edgeStates.map((edge) => [`${edge.fromNodeId}->${edge.toNodeId}`, edge.status ?? '']));

  let minX = Infinity;
  let minY = Infinity;
  let maxX = -Infinity;
  let maxY = -Infinity;
  for (const box of boxes.values()) {
    minX = Math.min(minX, box.x - box.width / 2);
    minY = Math.min(minY, box.y - box.height / 2);
    maxX = Math.max(maxX, box.x + box.width / 2);
    maxY = Math.max(maxY, box.y + box.height / 2);
  }
  if (!boxes.size) [minX, minY, maxX, maxY] = [0, 0, WIDTH, HEIGHT];
  const width = maxX - minX + 2 * MARGIN;
  const height = maxY - minY + 2 * MARGIN;

  const svg = s('svg', {
    class: 'graph',
    viewBox: `${minX - MARGIN} ${minY - MARGIN} ${width} ${height}`,
    width: Math.round(width),
    height: Math.round(height),
    role: 'group',
    'aria-label': `Workflow graph, ${nodes.length} nodes`,
  });
  svg.appendChild(
    s('defs', {}, s('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' }, s('path', { d: 'M0,0 L10,5 L0,10 z', class: 'arrowhead' }))),
  );

  for (const edge of definition.edges ?? []) {
    const from = edge.from ? boxes.get(edge.from) : undefined;
    const to = edge.to ? boxes.get(edge.to) : undefined;
    if (!from || !to) continue;
    const [x1, y1] = border(from, to.x, to.y);
    const [x2, y2] = border(to, from.x, from.y);
    const status = (edgeStatus.get(`${edge.from}->${edge.to}`) ?? '').replace('EDGE_STATUS_', '').toLowerCase();
    const group = s('g', { class: 'edge', 'data-status': status || 'pending', 'aria-hidden': 'true' });
    group.appendChild(s('path', { d: `M${x1},${y1} L${x2},${y2}`, 'marker-end': 'url(#arrow)' }));
    if (edge.when) {
      group.appendChild(s('text', { x: (x1 + x2) / 2 + 4, y: (y1 + y2) / 2, class: 'edge-label' }, edge.when));
    }
    svg.appendChild(group);
  }

  const groups = new Map<string, SVGGElement>();
  const squares = new Map<string, SVGRectElement>();
  const corners = new Map<string, [number, number]>();

  /** One iteration's square in its loop's node; the first MAX_SQUARES are drawn, then a count. */
  const placeSquare = (group: SVGGElement, loopId: string, left: number, top: number, iteration: Iteration): void => {
    corners.set(loopId, [left, top]);
    const position = [...squares.keys()].filter((key) => key.startsWith(`${loopId}#`)).length;
    if (position >= MAX_SQUARES) {
      const more = group.querySelector('text.more') ?? group.appendChild(s('text', { x: left + 12 + MAX_SQUARES * (SQUARE + 2), y: top + 59, class: 'node-type more' }));
      more.textContent = `+${position - MAX_SQUARES + 1}`;
      squares.set(`${loopId}#${iteration.index}`, s('rect'));
      return;
    }
    const square = s(
      'rect',
      {
        class: 'iteration',
        x: left + 12 + position * (SQUARE + 2),
        y: top + 50,
        width: SQUARE,
        height: SQUARE,
        'data-status': iteration.status,
        'data-index': iteration.index,
      },
      s('title', {}, `iteration ${iteration.index + 1}`),
    );
    squares.set(`${loopId}#${iteration.index}`, square);
    group.appendChild(square);
  };
  for (const node of nodes) {
    const box = boxes.get(node.id)!;
    const state = topLevel.get(node.id);
    const status = stateWord(nodeStatus(state?.status));
    const left = box.x - box.width / 2;
    const top = box.y - box.height / 2;
    const group = s(
      'g',
      {
        class: 'node',
        // Selectable nodes are buttons; on a graph without selection they are pictures with a name.
        tabindex: onSelect ? 0 : null,
        role: onSelect ? 'button' : 'img',
        'aria-pressed': onSelect ? 'false' : null,
        'data-node-id': node.id,
        'data-status': status,
        'aria-label': `${node.name || node.id} (${node.type ?? 'node'}): ${status}`,
        onclick: onSelect ? () => onSelect(node.id) : null,
        onkeydown: onSelect
          ? (event: Event) => {
              const key = (event as KeyboardEvent).key;
              if (key === 'Enter' || key === ' ') {
                event.preventDefault();
                onSelect(node.id);
              }
            }
          : null,
      },
      s('title', {}, `${node.id} (${node.type ?? 'node'})`),
      s('rect', { x: left, y: top, width: box.width, height: box.height, rx: 8 }),
      s('text', { x: left + 12, y: top + 21, class: 'node-name' }, label(node)),
      s('text', { x: left + 12, y: top + 39, class: 'node-type' }, `${node.type ?? ''}${node.breakpoint ? ' ⏸' : ''}`),
    );
    if (node.type === 'for_each') {
      const iterations = [...(loops.get(node.id)?.values() ?? [])].sort((a, b) => a.index - b.index);
      for (const iteration of iterations) placeSquare(group, node.id, left, top, iteration);
    }
    groups.set(node.id, group);
    svg.appendChild(group);
  }

  function boxCorner(nodeId: string): [number, number] | undefined {
    const box = boxes.get(nodeId);
    return box ? [box.x - box.width / 2, box.y - box.height / 2] : undefined;
  }

  return {
    element: svg,
    setStatus(nodeId, status, stack) {
      const word = stateWord(status);
      const frame = stack?.[0];
      if (frame?.parentNodeId) {
        const square = squares.get(`${frame.parentNodeId}#${frame.index ?? 0}`);
        const loop = groups.get(frame.parentNodeId);
        const corner = corners.get(frame.parentNodeId) ?? boxCorner(frame.parentNodeId);
        if (square) square.setAttribute('data-status', word);
        else if (loop && corner) placeSquare(loop, frame.parentNodeId, corner[0], corner[1], { index: frame.index ?? 0, status: word });
        return;
      }
      const group = groups.get(nodeId);
      if (!group) return;
      group.setAttribute('data-status', word);
      const node = nodes.find((candidate) => candidate.id === nodeId);
      group.setAttribute('aria-label', `${node?.name || nodeId} (${node?.type ?? 'node'}): ${word}`);
    },
    select(nodeId) {
      for (const [id, group] of groups) {
        if (onSelect) group.setAttribute('aria-pressed', String(id === nodeId));
        group.classList.toggle('selected', id === nodeId);
      }
    },
  };
}
