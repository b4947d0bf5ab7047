// Building the DOM from data. Every value becomes a text node or an attribute value set through the
// DOM, never parsed as markup, so nothing a workflow or a run holds can inject HTML or script.

type Child = Node | string | number | null | undefined | false | Child[];
type Attributes = Record<string, string | number | boolean | null | undefined | EventListener>;

const SVG_NS = 'http://www.w3.org/2000/svg';

function apply(element: Element, attributes: Attributes, children: Child[]): Element {
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (typeof value === 'function') {
      element.addEventListener(name.replace(/^on/, ''), value);
    } else {
      element.setAttribute(name, value === true ? '' : String(value));
    }
  }
  append(element, children);
  return element;
}

export function append(parent: Node, children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(parent, child);
    else parent.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** An HTML element: h('button', {type: 'button', onclick: go}, 'Stop'). */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Attributes = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  return apply(document.createElement(tag), attributes, children) as HTMLElementTagNameMap[K];
}

/** An SVG element. */
export function s<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attributes: Attributes = {},
  ...children: Child[]
): SVGElementTagNameMap[K] {
  return apply(document.createElementNS(SVG_NS, tag), attributes, children) as SVGElementTagNameMap[K];
}

/** Replace what `parent` shows. */
export function show(parent: Element, ...children: Child[]): void {
  parent.replaceChildren();
  append(parent, children);
}

/** A value shown as indented JSON. */
export function json(value: unknown): HTMLPreElement {
  return h('pre', { class: 'json' }, JSON.stringify(value, null, 2) ?? 'null');
}

let announcer: HTMLElement | null = null;

/** Tell screen-reader users (and the status line) what just happened. */
export function announce(message: string, kind: 'ok' | 'error' = 'ok'): void {
  if (announcer === null) {
    announcer = h('div', { id: 'announce', role: 'status', 'aria-live': 'polite' });
    document.body.appendChild(announcer);
  }
  announcer.className = kind;
  announcer.textContent = message;
}
