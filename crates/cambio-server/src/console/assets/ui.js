// Small DOM helpers. Everything the console shows is built with these, never from HTML
// strings, so that a name an attacker chose (a client id, a username, an event detail) is
// always text and never markup.

/** Creates an element: h('button', {type: 'button', onclick: f}, 'Save'). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (key === 'dataset') {
      Object.assign(el.dataset, value);
    } else if (value === true) {
      el.setAttribute(key, '');
    } else {
      el.setAttribute(key, String(value));
    }
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

let fieldCounter = 0;

/** A labelled form field; `input` is an element or built from attrs. */
export function field(label, input, hint) {
  const id = input.id || `f${++fieldCounter}`;
  input.id = id;
  const hintId = hint ? `${id}-hint` : undefined;
  if (hintId) input.setAttribute('aria-describedby', hintId);
  const wrap = h('div', { class: input.type === 'checkbox' ? 'field check' : 'field' });
  if (input.type === 'checkbox') {
    wrap.append(input, h('label', { for: id }, label));
  } else {
    wrap.append(h('label', { for: id }, label), input);
  }
  if (hint) wrap.append(h('small', { id: hintId, class: 'hint' }, hint));
  return wrap;
}

export function input(attrs) {
  return h('input', { type: 'text', ...attrs });
}

export function select(name, options, value) {
  return h('select', { name }, options.map(([v, text]) =>
    h('option', { value: v, selected: v === value }, text)));
}

/** A table with a caption; rows are arrays of cells (strings or elements). */
export function table(caption, headers, rows) {
  return h('table', {},
    h('caption', {}, caption),
    h('thead', {}, h('tr', {}, headers.map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, rows.length
      ? rows.map((cells) => h('tr', {}, cells.map((c) => h('td', {}, c))))
      : h('tr', {}, h('td', { colspan: headers.length }, 'Nothing here yet.'))));
}

/** Shows a message in the live region (read out by screen readers). */
let notifyTimer;

export function notify(message, kind = 'ok') {
  const status = document.getElementById('status');
  status.replaceChildren(h('p', { class: kind }, message));
  // Confirmations fade after a while; errors stay until the next message.
  clearTimeout(notifyTimer);
  if (kind === 'ok') notifyTimer = setTimeout(() => status.replaceChildren(), 6000);
}

/** Shows an error where the user acted, and in the live region. */
export function showError(where, error) {
  const box = h('p', { class: 'error', role: 'alert' }, error.message || String(error));
  if (where) {
    where.querySelectorAll(':scope > p.error').forEach((e) => e.remove());
    where.prepend(box);
  }
  notify(error.message || String(error), 'error');
}

/** Runs an async action from a form or button, showing its error next to it. */
export function action(where, fn) {
  return async (event) => {
    if (event) event.preventDefault();
    try {
      await fn(event);
    } catch (error) {
      showError(where, error);
    }
  };
}

export function section(title, ...children) {
  return h('section', { 'aria-label': title }, h('h2', {}, title), ...children);
}

/** A form with a submit button; `onsubmit` receives the FormData. */
export function form(label, fields, submitText, onsubmit, attrs = {}) {
  const f = h('form', { 'aria-label': label, ...attrs }, fields,
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, submitText)));
  f.addEventListener('submit', action(f, () => onsubmit(new FormData(f), f)));
  return f;
}

export function json(value) {
  return h('pre', { class: 'json' }, JSON.stringify(value, null, 2));
}
