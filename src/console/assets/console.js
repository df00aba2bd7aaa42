// The Switchyard console: one frame a second from `events` (server-sent events), rendered into
// the tables. Frames are {seq, mode: "full"|"delta", stats, requests}; a delta carries only the
// requests that finished since the previous frame. URLs are relative, so the page works behind
// `kubectl port-forward` and under a proxy path prefix.
'use strict';

(function () {
  const MAX_REQUESTS = 200;
  const SVG_NS = 'http://www.w3.org/2000/svg';
  const state = { requests: [], stats: null, filter: '', selected: null };

  const byId = (id) => document.getElementById(id);

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== undefined && v !== null) node.setAttribute(k, String(v));
    }
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function fmtMs(v) {
    if (v === null || v === undefined) return '–';
    if (v < 10) return v.toFixed(1) + ' ms';
    if (v < 1000) return Math.round(v) + ' ms';
    return (v / 1000).toFixed(2) + ' s';
  }

  function fmtRate(r) {
    return r === null || r === undefined ? '–' : (r * 100).toFixed(1) + '%';
  }

  function fmtTime(unixMs) {
    const d = new Date(unixMs);
    const pad = (n, w) => String(n).padStart(w || 2, '0');
    return pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds()) + '.' +
      pad(d.getMilliseconds(), 3);
  }

  function attemptClass(result) {
    if (result === 'ok') return 'ok';
    if (result === 'circuit_open' || result === 'hedge_lost') return 'skip';
    return 'fail';
  }

  function fill(tbody, rows, columns) {
    tbody.replaceChildren(...rows);
    if (rows.length === 0) {
      const tr = el('tr', { class: 'empty' });
      tr.appendChild(el('td', { colspan: columns }, 'nothing yet'));
      tbody.appendChild(tr);
    }
  }

  function renderHeader(stats) {
    const c = stats.config;
    byId('config-hash').textContent = c.hash;
    const reload = byId('last-reload');
    if (!c.hot_reload) {
      reload.textContent = 'not watched';
    } else if (c.last_reload_unix_ms) {
      reload.textContent = new Date(c.last_reload_unix_ms).toLocaleString() +
        (c.last_reload_error ? ' · last attempt failed' : ' · ok');
    } else {
      reload.textContent = c.last_reload_error ? 'failed' : 'none since start';
    }
    reload.setAttribute('data-result', c.last_reload_error ? 'error' : 'ok');
    const banner = byId('reload-error');
    banner.hidden = !c.last_reload_error;
    banner.textContent = c.last_reload_error
      ? 'The last config reload was refused; still serving ' + c.hash + ':\n' + c.last_reload_error
      : '';
    byId('window').textContent = stats.window_s >= 60 ? '60 s' : stats.window_s + ' s so far';
  }

  function renderTargets(stats) {
    const rows = stats.targets.map((t) => {
      const tr = el('tr', {
        'data-config': t.config,
        'data-target': t.target,
        'data-provider': t.provider,
        'data-circuit': t.circuit.state,
      });
      const cell = (field, text, cls) =>
        tr.appendChild(el('td', { 'data-field': field, class: cls }, text));
      cell('config', t.config);
      cell('target', t.target);
      cell('provider', t.provider);
      const circuit = el('td', { 'data-field': 'circuit' });
      let label = t.circuit.state.replace('_', '-');
      if (t.circuit.state === 'open' && t.circuit.half_open_in_s !== null) {
        label += t.circuit.half_open_in_s > 0
          ? ' · half-open in ' + Math.ceil(t.circuit.half_open_in_s) + ' s'
          : ' · probing next call';
      }
      circuit.appendChild(el('span', { class: 'circuit ' + t.circuit.state }, label));
      tr.appendChild(circuit);
      cell('rps', t.rps.toFixed(2), 'num');
      cell('p50', fmtMs(t.latency_ms.p50), 'num');
      cell('p95', fmtMs(t.latency_ms.p95), 'num');
      cell('p99', fmtMs(t.latency_ms.p99), 'num');
      cell('ttft_p50', fmtMs(t.ttft_ms.p50), 'num');
      cell('ttft_p95', fmtMs(t.ttft_ms.p95), 'num');
      cell('ttft_p99', fmtMs(t.ttft_ms.p99), 'num');
      cell('errors', t.errors, t.errors ? 'num bad' : 'num');
      cell('timeouts', t.timeouts, t.timeouts ? 'num bad' : 'num');
      cell('skipped', t.skipped, 'num');
      return tr;
    });
    fill(byId('targets-body'), rows, 14);
  }

  // Points are placed by age (0–600 s); a missing rate breaks the line.
  function sparkline(points) {
    const svg = document.createElementNS(SVG_NS, 'svg');
    svg.setAttribute('class', 'spark');
    svg.setAttribute('viewBox', '0 0 600 100');
    svg.setAttribute('preserveAspectRatio', 'none');
    let max = 0.05;
    for (const p of points) {
      max = Math.max(max, p.fallback_rate || 0, p.retry_rate || 0);
    }
    for (const series of ['retry', 'fallback']) {
      let segment = [];
      const flush = () => {
        // A lone point still shows, as a short dash.
        if (segment.length === 1) segment.push([Math.max(0, segment[0][0] - 6), segment[0][1]]);
        if (segment.length > 0) {
          const line = document.createElementNS(SVG_NS, 'polyline');
          line.setAttribute('class', series);
          line.setAttribute('points', segment.map((p) => p[0].toFixed(1) + ',' + p[1].toFixed(1)).join(' '));
          svg.appendChild(line);
        }
        segment = [];
      };
      for (const p of points) {
        const v = p[series + '_rate'];
        if (v === null || v === undefined) {
          flush();
          continue;
        }
        const x = Math.max(0, 600 - p.ago_s);
        const y = 98 - (v / max) * 96;
        segment.push([x, y]);
      }
      flush();
    }
    return svg;
  }

  function renderConfigs(stats) {
    const rows = stats.configs.map((c) => {
      const tr = el('tr', {
        'data-config': c.name,
        'data-fallback-rate': c.fallback_rate === null ? '' : c.fallback_rate,
        'data-retry-rate': c.retry_rate === null ? '' : c.retry_rate,
      });
      tr.appendChild(el('td', { 'data-field': 'name' }, c.name));
      tr.appendChild(el('td', { 'data-field': 'rps', class: 'num' }, c.rps.toFixed(2)));
      tr.appendChild(el('td', { 'data-field': 'requests', class: 'num' }, c.requests));
      tr.appendChild(el('td', { 'data-field': 'fallback_rate', class: 'num' }, fmtRate(c.fallback_rate)));
      tr.appendChild(el('td', { 'data-field': 'retry_rate', class: 'num' }, fmtRate(c.retry_rate)));
      const spark = el('td', { 'data-field': 'spark', 'data-points': c.spark.length });
      spark.appendChild(sparkline(c.spark));
      tr.appendChild(spark);
      return tr;
    });
    fill(byId('configs-body'), rows, 6);
  }

  function renderRequests() {
    const shown = state.requests.filter((r) => !state.filter || r.outcome === state.filter);
    byId('requests-count').textContent =
      shown.length + ' of ' + state.requests.length + ' kept (newest first)';
    const rows = shown.map((r) => {
      const tr = el('tr', {
        'data-id': r.id,
        'data-trace-id': r.trace_id,
        'data-outcome': r.outcome,
        'data-attempts': r.attempts.length,
      });
      if (state.selected && state.selected.id === r.id) tr.classList.add('selected');
      tr.appendChild(el('td', { 'data-field': 'time' }, fmtTime(r.start_unix_ms)));
      tr.appendChild(el('td', { 'data-field': 'trace_id' }, r.trace_id.slice(0, 16)));
      tr.appendChild(el('td', { 'data-field': 'config' }, r.config));
      tr.appendChild(el('td', { 'data-field': 'outcome', class: 'outcome ' + r.outcome }, r.outcome));
      tr.appendChild(el('td', { 'data-field': 'status', class: 'num' }, r.status));
      const attempts = el('td', { 'data-field': 'attempts' });
      for (const a of r.attempts) {
        attempts.appendChild(el('span', { class: 'chip ' + attemptClass(a.result), 'data-result': a.result },
          a.target + ' ' + a.result));
      }
      tr.appendChild(attempts);
      tr.appendChild(el('td', { 'data-field': 'duration', class: 'num' }, fmtMs(r.duration_ms)));
      tr.appendChild(el('td', { 'data-field': 'tokens', class: 'num' },
        r.tokens ? r.tokens.input + ' / ' + r.tokens.output : '–'));
      tr.appendChild(el('td', { 'data-field': 'cost', class: 'num' },
        r.cost_usd === null || r.cost_usd === undefined ? '–' : '$' + r.cost_usd.toFixed(6)));
      tr.addEventListener('click', () => select(r));
      return tr;
    });
    fill(byId('requests-body'), rows, 9);
  }

  function select(r) {
    state.selected = r;
    renderRequests();
    const detail = byId('detail');
    detail.hidden = false;
    detail.setAttribute('data-id', r.id);
    byId('detail-trace').textContent = r.trace_id;
    const facts = byId('detail-facts');
    facts.replaceChildren();
    const fact = (k, v) => {
      facts.appendChild(el('dt', {}, k));
      facts.appendChild(el('dd', {}, v));
    };
    fact('time', new Date(r.start_unix_ms).toLocaleString());
    fact('request', r.method + ' ' + r.path + (r.stream ? ' (stream)' : ''));
    fact('config', r.config + (r.virtual_key ? ' · ' + r.virtual_key : ''));
    fact('model', r.model || '–');
    fact('outcome', r.outcome + ' · ' + r.status + ' · ' + fmtMs(r.duration_ms));
    fact('cache', r.cache);
    const timeline = byId('timeline');
    timeline.replaceChildren();
    const span = Math.max(r.duration_ms,
      ...r.attempts.map((a) => a.offset_ms + a.total_ms), 1);
    r.attempts.forEach((a, i) => {
      const row = el('div', { class: 'attempt', 'data-index': i, 'data-result': a.result });
      const phases = [];
      if (a.connect_ms !== null) phases.push('connect ' + fmtMs(a.connect_ms));
      if (a.headers_ms !== null) phases.push('headers ' + fmtMs(a.headers_ms));
      if (a.first_token_ms !== null) phases.push('first token ' + fmtMs(a.first_token_ms));
      phases.push('total ' + fmtMs(a.total_ms));
      row.appendChild(el('div', { class: 'label' },
        (i + 1) + '. ' + a.target + ' (' + a.provider + ') ' + a.result +
        (a.status ? ' ' + a.status : '') + ' · ' + phases.join(' · ')));
      const track = el('div', { class: 'track' });
      const bar = el('div', { class: 'bar ' + attemptClass(a.result) });
      bar.style.left = (a.offset_ms / span * 100) + '%';
      bar.style.width = (a.total_ms / span * 100) + '%';
      track.appendChild(bar);
      for (const mark of [a.headers_ms, a.first_token_ms]) {
        if (mark === null || mark === undefined) continue;
        const m = el('div', { class: 'mark' });
        m.style.left = ((a.offset_ms + mark) / span * 100) + '%';
        track.appendChild(m);
      }
      row.appendChild(track);
      timeline.appendChild(row);
    });
    const bodies = byId('detail-bodies');
    bodies.replaceChildren();
    if (r.has_bodies) {
      const button = el('button', { type: 'button' }, 'show prompt and completion');
      button.addEventListener('click', () => {
        fetch('api/requests/' + r.id)
          .then((resp) => (resp.ok ? resp.json() : Promise.reject(new Error(resp.status))))
          .then((full) => {
            bodies.replaceChildren(el('h3', {}, 'prompt'), el('pre', {}, full.bodies.request),
              el('h3', {}, 'completion'), el('pre', {}, full.bodies.response));
          })
          .catch(() => bodies.replaceChildren(el('p', { class: 'muted' }, 'no longer kept')));
      });
      bodies.appendChild(button);
    }
  }

  function apply(frame) {
    if (frame.mode === 'full') {
      state.requests = frame.requests;
    } else if (frame.requests.length > 0) {
      const top = state.requests.length > 0 ? state.requests[0].id : 0;
      const fresh = frame.requests.filter((r) => r.id > top);
      state.requests = fresh.concat(state.requests).slice(0, MAX_REQUESTS);
    }
    state.stats = frame.stats;
    renderHeader(frame.stats);
    renderTargets(frame.stats);
    renderConfigs(frame.stats);
    renderRequests();
    document.body.setAttribute('data-seq', frame.seq);
  }

  function setConn(s, text) {
    const conn = byId('conn');
    conn.setAttribute('data-state', s);
    conn.textContent = text;
  }

  function connect() {
    const events = new EventSource('events');
    events.onopen = () => setConn('live', 'live');
    events.onmessage = (e) => {
      setConn('live', 'live');
      apply(JSON.parse(e.data));
    };
    // EventSource reconnects by itself; the server starts every stream with a full frame.
    events.onerror = () => setConn('lost', 'reconnecting…');
  }

  document.addEventListener('DOMContentLoaded', () => {
    byId('outcome-filter').addEventListener('change', (e) => {
      state.filter = e.target.value;
      renderRequests();
    });
    connect();
  });
})();
