// The person's API key: entered once, kept in this tab's session storage (gone when the tab closes),
// sent as the x-api-key header. In dev mode (no keys on the server) nothing is asked.

import { h, show } from './dom';

const STORAGE_KEY = 'runctl.apiKey';

export function apiKey(): string | null {
  return sessionStorage.getItem(STORAGE_KEY);
}

function forget(): void {
  sessionStorage.removeItem(STORAGE_KEY);
  location.reload();
}

/** The header's key control: a way to forget the key when one is kept. */
export function renderSession(): void {
  const area = document.getElementById('session');
  if (!area) return;
  show(
    area,
    apiKey() ? h('button', { type: 'button', class: 'link', onclick: forget }, 'Forget API key') : null,
  );
}

/** Ask for a key (the server answered 401), then load the page again with it. */
export function askForKey(main: HTMLElement, problem: string): void {
  const input = h('input', {
    id: 'api-key',
    name: 'api-key',
    type: 'password',
    autocomplete: 'off',
    spellcheck: 'false',
    required: true,
    'aria-describedby': 'api-key-hint',
  });
  const form = h(
    'form',
    {
      class: 'key-form',
      onsubmit: (event: Event) => {
        event.preventDefault();
        const key = input.value.trim();
        if (!key) return;
        sessionStorage.setItem(STORAGE_KEY, key);
        location.reload();
      },
    },
    h('h1', {}, 'Sign in with an API key'),
    h('p', { class: 'error', role: 'alert' }, problem),
    h('label', { for: 'api-key' }, 'API key'),
    input,
    h(
      'p',
      { class: 'hint', id: 'api-key-hint' },
      'Make one with runctl keys create. It is kept in this tab only and sent as a header.',
    ),
    h('button', { type: 'submit', class: 'primary' }, 'Use this key'),
  );
  show(main, form);
  input.focus();
}
