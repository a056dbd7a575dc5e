// A tiny element builder: text always goes in as text (order ids and errors are client data).
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') {
      element.addEventListener(name.slice(2), value);
    } else if (value === true) {
      element.setAttribute(name, '');
    } else {
      element.setAttribute(name, String(value));
    }
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

// A table with a caption, column headings, and one row per item (cells: functions of the item).
export function table(caption, columns, items, emptyText = 'None.') {
  if (!items || items.length === 0) {
    return h('section', {}, h('h3', {}, caption), h('p', { class: 'empty' }, emptyText));
  }
  return h('section', {},
    h('table', {},
      h('caption', {}, caption),
      h('thead', {}, h('tr', {}, columns.map(([title]) => h('th', { scope: 'col' }, title)))),
      h('tbody', {}, items.map((item) =>
        h('tr', {}, columns.map(([, cell]) => h('td', {}, cell(item))))))));
}

export function orderLink(orderId) {
  return h('a', { href: `#/orders/${encodeURIComponent(orderId)}` }, orderId);
}

export function time(iso) {
  if (!iso) return '';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return h('time', { datetime: iso, title: iso }, date.toISOString().replace('T', ' ').slice(0, 23));
}

export function badge(status) {
  return h('span', { class: `badge badge-${String(status || 'none').replace(/[^a-z_]/g, '')}` },
    status || '—');
}
