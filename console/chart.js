// The overview's 24-hour chart, as inline SVG: one panel per step, one group of three bars per
// hour (attempts, retries, failures). Colours come from style.css (no inline styles: CSP).
const NS = 'http://www.w3.org/2000/svg';
const SERIES = ['attempts', 'retries', 'failures'];

function svg(tag, attributes = {}, text) {
  const element = document.createElementNS(NS, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  if (text !== undefined) element.textContent = text;
  return element;
}

// rows: [{hour, step, attempts, retries, failures}]; now: the chart's end (a Date).
export function chart(rows, now = new Date()) {
  const end = new Date(now);
  end.setUTCMinutes(0, 0, 0);
  const hours = [];
  for (let i = 23; i >= 0; i--) hours.push(new Date(end.getTime() - i * 3600e3).toISOString());
  const order = ['charge', 'reserve', 'confirm'];  // the order steps run in; others after
  const rank = (step) => (order.includes(step) ? order.indexOf(step) : order.length);
  const steps = [...new Set((rows || []).map((row) => row.step))]
    .sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  if (steps.length === 0) steps.push(...order);
  const byKey = new Map();
  for (const row of rows || []) {
    const hour = new Date(row.hour);
    hour.setUTCMinutes(0, 0, 0);
    byKey.set(`${row.step}|${hour.toISOString()}`, row);
  }
  const max = Math.max(1, ...(rows || []).map((row) => Number(row.attempts) || 0));

  const width = 760;
  const panel = 90;
  const left = 70;
  const top = 24;
  const height = top + steps.length * (panel + 24) + 20;
  const slot = (width - left - 10) / 24;
  const bar = Math.max(2, (slot - 4) / 3);
  const root = svg('svg', {
    viewBox: `0 0 ${width} ${height}`, role: 'img', class: 'chart', 'data-testid': 'chart',
    'aria-labelledby': 'chart-title chart-desc',
  });
  root.append(svg('title', { id: 'chart-title' }, 'Step attempts, retries and failures, last 24 hours'));
  root.append(svg('desc', { id: 'chart-desc' },
    `Per step and hour (UTC); tallest bar ${max} attempts.`));
  SERIES.forEach((name, i) => {
    root.append(svg('rect', { x: left + i * 110, y: 6, width: 10, height: 10, class: `bar-${name}` }));
    root.append(svg('text', { x: left + i * 110 + 14, y: 15, class: 'legend' }, name));
  });
  steps.forEach((step, s) => {
    const y0 = top + s * (panel + 24) + 10;
    root.append(svg('text', { x: 4, y: y0 + panel / 2, class: 'axis-label' }, step));
    root.append(svg('line', { x1: left, y1: y0 + panel, x2: width - 10, y2: y0 + panel, class: 'axis' }));
    hours.forEach((hour, h) => {
      const row = byKey.get(`${step}|${hour}`);
      SERIES.forEach((name, i) => {
        const value = row ? Number(row[name]) || 0 : 0;
        if (value === 0) return;
        const barHeight = Math.max(1, (value / max) * panel);
        const rect = svg('rect', {
          x: left + h * slot + 2 + i * bar, y: y0 + panel - barHeight, width: bar - 1,
          height: barHeight, class: `bar-${name}`,
        });
        rect.append(svg('title', {}, `${step} ${hour.slice(11, 16)} UTC: ${value} ${name}`));
        root.append(rect);
      });
      if (h % 6 === 0) {
        root.append(svg('text', { x: left + h * slot, y: y0 + panel + 14, class: 'tick' },
          hour.slice(11, 16)));
      }
    });
  });
  return root;
}
