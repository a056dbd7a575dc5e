// The pages: overview, the list of orders, one order. Each returns an element to show.
import { get, post } from './api.js';
import { chart } from './chart.js';
import { confirmAction } from './confirm.js';
import { badge, h, orderLink, table, time } from './dom.js';

const STATUSES = ['pending', 'reserving', 'charging', 'confirming', 'suspended', 'cancelling',
  'completed', 'failed', 'cancelled'];
const STEPS = ['charge', 'reserve', 'confirm'];  // the order they run in
const FINISHED = new Set(['completed', 'failed', 'cancelled']);

const enc = encodeURIComponent;

export async function overview(render) {
  const data = await get('/api/overview');
  const counts = data.counts || {};
  // deadLetters: their number (with the newest in deadLetterList), or the list itself.
  const dead = Array.isArray(data.deadLetters) ? data.deadLetters : data.deadLetterList || [];
  const deadCount = Array.isArray(data.deadLetters) ? dead.length : data.deadLetters ?? dead.length;
  const redrive = (letter) => h('button', {
    type: 'button',
    'data-testid': `redrive-${letter.id}`,
    onclick: async () => {
      const done = await confirmAction({
        title: `Redrive dead letter ${letter.id}?`,
        text: `The ${letter.kind} call${letter.orderId ? ` of order ${letter.orderId}` : ''} is put back and sent again (same key).`,
        confirmLabel: 'Redrive',
        run: () => post(`/api/dead-letters/${enc(letter.id)}/redrive`, {}),
      });
      if (done) render();
    },
  }, 'Redrive');

  return h('div', { class: 'page', 'data-testid': 'overview' },
    h('h2', {}, 'Overview'),
    h('section', { 'aria-label': 'Orders by status' },
      h('ul', { class: 'counts' }, STATUSES.map((status) => h('li', {},
        h('a', { href: `#/orders?status=${status}` },
          h('span', { class: 'count', 'data-testid': `count-${status}` }, String(counts[status] || 0)),
          badge(status)))))),
    h('section', { 'aria-labelledby': 'chart-heading' },
      h('h3', { id: 'chart-heading' }, 'Last 24 hours: attempts, retries and failures per step'),
      chart(data.chart || [])),
    table('Stuck orders', [
      ['Order', (w) => orderLink(w.orderId)],
      ['Status', (w) => badge(w.status)],
      ['Waiting on', (w) => w.step || ''],
      ['Attempts', (w) => w.attempts ?? ''],
      ['Error', (w) => w.error || w.lastError || ''],
      ['Updated', (w) => time(w.updatedAt)],
    ], data.stuck, 'No stuck orders.'),
    table('Failing orders', [
      ['Order', (w) => orderLink(w.orderId)],
      ['Status', (w) => badge(w.status)],
      ['Step', (w) => w.step || ''],
      ['Attempts', (w) => w.attempts ?? ''],
      ['Error', (w) => w.error || w.lastError || ''],
      ['Updated', (w) => time(w.updatedAt)],
    ], data.failing, 'No failing orders.'),
    table('Provider circuits', [
      ['Provider', (c) => c.provider],
      ['Circuit', (c) => badge(c.circuit)],
      ['Paused', (c) => (c.paused ? 'yes' : 'no')],
      ['Pending calls', (c) => c.pending ?? ''],
      ['Dead calls', (c) => c.dead ?? ''],
      ['Oldest pending (s)', (c) => c.oldestUndeliveredSeconds ?? ''],
    ], data.circuits, 'No provider has been called yet.'),
    table(`Dead letters (${deadCount})`, [
      ['Id', (d) => d.id],
      ['Kind', (d) => d.kind],
      ['Provider', (d) => d.provider || ''],
      ['Order', (d) => (d.orderId ? orderLink(d.orderId) : '')],
      ['Attempts', (d) => d.attempts ?? ''],
      ['Last error', (d) => d.lastError || ''],
      ['Died', (d) => time(d.diedAt)],
      ['', redrive],
    ], dead, 'No dead letters.'));
}

function select(id, label, options, value) {
  return [
    h('label', { for: id }, label),
    h('select', { id, name: id },
      h('option', { value: '' }, 'any'),
      options.map((option) => h('option', { value: option, selected: option === value }, option))),
  ];
}

export async function orders(render, params) {
  const query = new URLSearchParams();
  for (const name of ['status', 'step', 'prefix', 'after']) {
    if (params.get(name)) query.set(name, params.get(name));
  }
  query.set('limit', '50');
  const data = await get(`/api/workflows?${query}`);

  const form = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter orders' },
    select('status', 'Status', STATUSES, params.get('status')),
    select('step', 'Waiting on step', STEPS, params.get('step')),
    h('label', { for: 'prefix' }, 'Order id starts with'),
    h('input', { id: 'prefix', name: 'prefix', type: 'search', value: params.get('prefix') || '' }),
    h('button', { type: 'submit' }, 'Search'));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    for (const name of ['status', 'step', 'prefix']) {
      const value = form.elements[name].value.trim();
      if (value) next.set(name, value);
    }
    location.hash = `#/orders?${next}`;
  });

  const nextPage = data.next
    ? (() => {
        const next = new URLSearchParams(params);
        next.set('after', data.next);
        return h('a', { class: 'button', href: `#/orders?${next}`, 'data-testid': 'next-page' }, 'Next page');
      })()
    : null;

  return h('div', { class: 'page', 'data-testid': 'orders' },
    h('h2', {}, 'Orders'),
    form,
    table('Orders, newest first', [
      ['Order', (w) => orderLink(w.orderId)],
      ['Status', (w) => badge(w.status)],
      ['Step', (w) => w.step || ''],
      ['Attempts', (w) => w.attempts ?? ''],
      ['Error', (w) => w.error || w.lastError || ''],
      ['Created', (w) => time(w.createdAt)],
      ['Updated', (w) => time(w.updatedAt)],
    ], data.workflows, 'No order matches.'),
    h('p', { class: 'pager' },
      params.get('after') ? h('a', { href: '#/orders', class: 'button quiet' }, 'First page') : null,
      nextPage));
}

function actions(state, render) {
  const id = state.orderId;
  const act = (verb, options) => h('button', {
    type: 'button',
    'data-testid': `action-${verb}`,
    disabled: options.disabled,
    onclick: async () => {
      const done = await confirmAction({
        ...options,
        run: (reason) => post(`/api/orders/${enc(id)}/${verb}`, verb === 'cancel' ? { reason } : {}),
      });
      if (done) render(`${options.confirmLabel}: done.`);
    },
  }, options.confirmLabel);
  const finished = FINISHED.has(state.status);
  return h('div', { class: 'actions', role: 'group', 'aria-label': 'Actions' },
    act('cancel', {
      title: `Cancel order ${id}?`,
      text: 'Its completed steps are undone (a charge is refunded, stock released).',
      askReason: true, confirmLabel: 'Cancel order',
      disabled: state.status === 'cancelled' || state.status === 'cancelling' || state.status === 'failed',
    }),
    act('resume', {
      title: `Resume order ${id} now?`,
      text: 'Its waiting step runs at once instead of at its next retry.',
      confirmLabel: 'Resume now', disabled: finished || state.status === 'cancelling',
    }),
    act('retry', {
      title: `Retry failed order ${id}?`,
      text: 'The order runs again as a new run (after the old run is compensated); its history is kept.',
      confirmLabel: 'Retry', disabled: state.status !== 'failed',
    }));
}

export async function order(render, orderId, notice) {
  const data = await get(`/api/orders/${enc(orderId)}`);
  const state = data.state || {};
  const rank = (name) => (STEPS.includes(name) ? STEPS.indexOf(name) : STEPS.length);
  const steps = Object.entries(state.steps || {}).sort(([a], [b]) => rank(a) - rank(b));
  const events = (data.history && data.history.events) || [];
  return h('div', { class: 'page', 'data-testid': 'order' },
    h('h2', {}, 'Order ', h('span', { class: 'mono', 'data-testid': 'order-id' }, state.orderId)),
    notice ? h('p', { class: 'notice', role: 'status' }, notice) : null,
    h('dl', { class: 'facts' },
      h('dt', {}, 'Status'), h('dd', { 'data-testid': 'order-status' }, badge(state.status)),
      h('dt', {}, 'Amount'), h('dd', {}, String(state.amount ?? '')),
      h('dt', {}, 'Item'), h('dd', {}, state.item || ''),
      h('dt', {}, 'Error'), h('dd', { 'data-testid': 'order-error' }, state.error || ''),
      h('dt', {}, 'Cancel reason'), h('dd', {}, state.cancelReason || ''),
      h('dt', {}, 'Next retry'), h('dd', {}, time(state.nextRetryAt)),
      h('dt', {}, 'Created'), h('dd', {}, time(state.createdAt)),
      h('dt', {}, 'Updated'), h('dd', {}, time(state.updatedAt))),
    actions(state, render),
    table('Steps', [
      ['Step', ([name]) => name],
      ['Completed', ([, s]) => (s.completed ? 'yes' : 'no')],
      ['Attempts', ([, s]) => s.attempts ?? 0],
      ['Last error', ([, s]) => s.lastError || ''],
      ['Completed at', ([, s]) => time(s.completedAt)],
      ['Compensated at', ([, s]) => time(s.compensatedAt)],
    ], steps),
    table('Timeline', [
      ['At', (e) => time(e.at)],
      ['What', (e) => (e.kind === 'transition' ? `${e.from} → ${e.outcome}` : `${e.kind} ${e.step || ''} ${e.outcome || ''}`)],
      ['Attempt', (e) => e.attempt ?? ''],
      ['ms', (e) => (e.durationMs == null ? '' : Math.round(e.durationMs * 10) / 10)],
      ['Error', (e) => [e.error, e.sqlstate ? ` (${e.sqlstate})` : '', e.httpStatus ? ` HTTP ${e.httpStatus}` : ''].join('')],
      ['Who', (e) => e.actor || ''],
      ['Detail', (e) => e.detail || e.objectId || ''],
    ], events, 'No history.'),
    table('Ledger', [
      ['Kind', (l) => l.kind],
      ['Amount', (l) => l.signedAmount ?? l.amount],
      ['Balance', (l) => l.balance ?? ''],
      ['Key', (l) => h('span', { class: 'mono' }, l.idempotencyKey || '')],
      ['At', (l) => time(l.createdAt)],
    ], data.ledger, 'No money moved.'),
    table('Provider calls', [
      ['Id', (c) => c.id],
      ['Kind', (c) => c.kind],
      ['Provider', (c) => c.provider || ''],
      ['State', (c) => badge(c.state)],
      ['Attempts', (c) => c.attempts ?? ''],
      ['Key', (c) => h('span', { class: 'mono' }, c.idempotencyKey || '')],
      ['Object', (c) => c.objectId || ''],
      ['Last outcome', (c) => [c.lastOutcome, c.lastHttpStatus ? ` HTTP ${c.lastHttpStatus}` : ''].join('')],
      ['Last error', (c) => c.lastError || ''],
    ], data.calls, 'No provider calls.'));
}
