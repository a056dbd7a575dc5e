// The console's entry: the login form, hash routing (#/, #/orders?…, #/orders/<id>), and the
// status line. The server answers GET / with this page whether or not the token is known; the
// token lives in sessionStorage (this tab only) and goes out as a Bearer header.
import { ApiError, get, onUnauthorized, token } from './api.js';
import * as views from './views.js';

const $ = (id) => document.getElementById(id);

function showLogin(message = '') {
  $('login').hidden = false;
  $('nav').hidden = true;
  $('view').replaceChildren();
  $('status-line').textContent = '';
  $('login-error').textContent = message;
  $('token').focus();
}

function showApp() {
  $('login').hidden = true;
  $('nav').hidden = false;
}

async function route(notice) {
  if (!token.get()) {
    showLogin();
    return;
  }
  showApp();
  const hash = location.hash.replace(/^#/, '') || '/';
  const [path, query = ''] = hash.split('?');
  const params = new URLSearchParams(query);
  const render = (message) => route(message);
  $('status-line').textContent = 'Loading…';
  try {
    let page;
    const match = path.match(/^\/orders\/(.+)$/);
    if (match) {
      page = await views.order(render, decodeURIComponent(match[1]), notice);
    } else if (path === '/orders') {
      page = await views.orders(render, params);
    } else {
      page = await views.overview(render);
    }
    $('view').replaceChildren(page);
    $('status-line').textContent = `Updated ${new Date().toLocaleTimeString()}`;
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return;  // onUnauthorized shows the login
    $('status-line').textContent = '';
    $('view').replaceChildren(Object.assign(document.createElement('p'), {
      className: 'error', textContent: `Could not load this page: ${e.message}`,
    }));
  }
}

function start() {
  onUnauthorized(() => showLogin('The server refused the token; paste it again.'));
  $('login-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const given = $('token').value.trim();
    if (given === '') {
      $('login-error').textContent = 'Paste the token first.';
      return;
    }
    token.set(given);
    try {
      await get('/api/overview');
      $('token').value = '';
      route();
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 401)) $('login-error').textContent = e.message;
    }
  });
  $('sign-out').addEventListener('click', () => {
    token.clear();
    showLogin();
  });
  window.addEventListener('hashchange', () => route());
  route();
}

start();
