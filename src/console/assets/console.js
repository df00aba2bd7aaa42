// The Switchyard console, three views chosen by the URL fragment:
// - live (`#live`, the default): one frame a second from `events` (server-sent events), rendered
//   into the tables. Frames are {seq, mode: "full"|"delta", stats, requests}; a delta carries only
//   the requests that finished since the previous frame. The stream is open only while this view
//   is shown.
// - traces (`#traces`, one trace at `#trace=<id>`): searches of the request store through
//   `v1/analytics/requests`; a trace shows its requests as turns, oldest first, each with its
//   attempts from `v1/analytics/requests/{id}`.
// - analytics (`#analytics`): `v1/analytics/summary` for a group-by and a time range, as bars.
// Everything the API returns is untrusted text: it only ever reaches the page as textContent or
// an attribute value. URLs are relative, so the page works behind `kubectl port-forward` and
// under a proxy path prefix.
'use strict';

(function () {
  const MAX_REQUESTS = 200;
  const SVG_NS = 'http://www.w3.org/2000/svg';
  const state = { requests: [], stats: null, filter: '', selected: null };

  const byId = (id) => document.getElementById(id);
  const present = (v) => v !== null && v !== undefined;
  const pad = (n, w) => String(n).padStart(w || 2, '0');

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
    return pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds()) + '.' +
      pad(d.getMilliseconds(), 3);
  }

  function attemptClass(result) {
    if (result === 'ok') return 'ok';
    if (result === 'circuit_open' || result === 'hedge_lost') return 'skip';
    return 'fail';
  }

  function fmtDateTime(unixMs) {
    const d = new Date(unixMs);
    return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' + fmtTime(unixMs);
  }

  function fmtCost(v) {
    if (!present(v)) return '–';
    if (v === 0) return '$0';
    if (v < 0.01) return '$' + v.toFixed(6);
    return '$' + v.toFixed(v < 100 ? 4 : 2);
  }

  function fmtTokens(r) {
    if (!present(r.input_tokens) && !present(r.output_tokens)) return '–';
    const n = (v) => (present(v) ? String(v) : '–');
    return n(r.input_tokens) + ' / ' + n(r.output_tokens);
  }

  function fmtMean(v) {
    if (!present(v)) return '–';
    return (v > 0 ? '+' : v < 0 ? '−' : '') + Math.abs(v).toFixed(2);
  }

  function fill(tbody, rows, columns, emptyText) {
    tbody.replaceChildren(...rows);
    if (rows.length === 0) {
      const tr = el('tr', { class: 'empty' });
      tr.appendChild(el('td', { colspan: columns }, emptyText || 'nothing yet'));
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

  const pct = (v, span) => (Math.max(0, v) / span * 100) + '%';

  function attemptLabel(a, i) {
    const phases = [];
    if (present(a.connect_ms)) phases.push('connect ' + fmtMs(a.connect_ms));
    if (present(a.headers_ms)) phases.push('headers ' + fmtMs(a.headers_ms));
    if (present(a.first_token_ms)) phases.push('first token ' + fmtMs(a.first_token_ms));
    phases.push('total ' + fmtMs(a.total_ms));
    return (i + 1) + '. ' + a.target + ' (' + a.provider + ') ' + a.result +
      (a.status ? ' ' + a.status : '') + ' · ' + phases.join(' · ');
  }

  // One attempt as a bar on the request's time axis (`span` ms wide): offset from the request's
  // start, width its total time, marks at its response headers and first token.
  function attemptRow(a, i, span) {
    const label = attemptLabel(a, i);
    const row = el('div', { class: 'attempt', 'data-index': i, 'data-result': a.result });
    row.appendChild(el('div', { class: 'label' }, label));
    const track = el('div', { class: 'track', title: label });
    const bar = el('div', { class: 'bar ' + attemptClass(a.result) });
    bar.style.left = pct(a.offset_ms, span);
    bar.style.width = pct(a.total_ms, span);
    track.appendChild(bar);
    for (const mark of [a.headers_ms, a.first_token_ms]) {
      if (!present(mark)) continue;
      const m = el('div', { class: 'mark' });
      m.style.left = pct(a.offset_ms + mark, span);
      track.appendChild(m);
    }
    row.appendChild(track);
    return row;
  }

  function renderTimeline(node, attempts, durationMs) {
    const span = Math.max(durationMs || 0, ...attempts.map((a) => a.offset_ms + a.total_ms), 1);
    node.replaceChildren(...attempts.map((a, i) => attemptRow(a, i, span)));
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
    const trace = el('dd');
    trace.appendChild(el('a', { href: traceHref(r.trace_id), 'data-field': 'trace_link' },
      'open the trace in the request store'));
    facts.append(el('dt', {}, 'trace'), trace);
    renderTimeline(byId('timeline'), r.attempts, r.duration_ms);
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

  const live = { source: null };

  function connect() {
    const events = new EventSource('events');
    live.source = events;
    events.onopen = () => setConn('live', 'live');
    events.onmessage = (e) => {
      setConn('live', 'live');
      apply(JSON.parse(e.data));
    };
    // EventSource reconnects by itself; the server starts every stream with a full frame.
    events.onerror = () => setConn('lost', 'reconnecting…');
  }

  // The live view's stream runs only while it is shown: no sampling for a hidden view.
  function setLive(on) {
    if (on && !live.source) connect();
    if (!on) {
      if (live.source) live.source.close();
      live.source = null;
      setConn('paused', 'live view paused');
    }
  }

  // --- The request store's query API -------------------------------------------------------

  const API = 'v1/analytics/';
  const PAGE = 50;
  const MAX_METADATA_FILTERS = 4;

  function apiError(status, code, message) {
    const e = new Error(message);
    e.status = status;
    e.code = code;
    return e;
  }

  // A GET on the query API (same origin: the admin cookie rides along). Resolves to the JSON
  // body; rejects with {status, code, message} from the OpenAI-shaped error body if any.
  async function apiGet(path, params) {
    const url = params ? path + '?' + params.toString() : path;
    let resp;
    try {
      resp = await fetch(url, { headers: { accept: 'application/json' } });
    } catch (e) {
      throw apiError(0, 'unreachable', 'the gateway did not answer: ' + e.message);
    }
    const body = await resp.json().catch(() => null);
    if (resp.ok && body) return body;
    const err = (body && body.error) || {};
    throw apiError(resp.status, err.code || 'http_' + resp.status,
      err.message || 'the gateway answered HTTP ' + resp.status);
  }

  // A view's status line: hidden when `text` is empty; `code` ("loading", "store_disabled", …)
  // goes to data-code for styling and tests.
  function setStatus(id, text, code) {
    const node = byId(id);
    node.hidden = !text;
    node.textContent = text || '';
    node.setAttribute('data-code', text ? code || '' : '');
  }

  function showError(id, e) {
    const text = e.code === 'store_disabled'
      ? 'No request store on this gateway — ' + e.message
      : (e.status ? 'HTTP ' + e.status + ': ' : '') + e.message;
    setStatus(id, text, e.code || 'error');
  }

  // A view's data-state (loading, done, error) and data-seq (which fetch it shows) tell a
  // test when the view has settled on an answer.
  function loading(viewId, seq) {
    const view = byId(viewId);
    view.setAttribute('data-state', 'loading');
    view.setAttribute('data-seq', seq);
  }

  const startMs = (r) => (present(r.start_unix_ms) ? r.start_unix_ms : Date.parse(r.start));
  const traceHref = (id) => '#trace=' + encodeURIComponent(id);

  function outcomeBadge(outcome) {
    return el('span', { class: 'outcome ' + outcome }, outcome);
  }

  function feedbackText(f, full) {
    const v = Number(f.value);
    let text = (v > 0 ? '▲ +' : v < 0 ? '▼ −' : '● ') + Math.abs(v);
    if (!full) return text;
    if (present(f.weight)) text += ' · weight ' + f.weight;
    const comment = f.metadata && f.metadata.comment;
    if (comment) text += ' · “' + String(comment) + '”';
    return text;
  }

  // A request's feedback as chips; `full` adds the weight and the comment (feedback metadata).
  function feedbackList(list, full) {
    const items = list || [];
    const box = el('span', {
      class: 'feedback',
      'data-count': items.length,
      'data-values': items.map((f) => f.value).join(','),
    });
    if (items.length === 0) box.textContent = '–';
    for (const f of items) {
      const sign = f.value > 0 ? 'pos' : f.value < 0 ? 'neg' : 'zero';
      box.appendChild(el('span', {
        class: 'fb ' + sign,
        'data-value': f.value,
        'data-feedback-id': f.id,
        title: f.metadata ? JSON.stringify(f.metadata) : null,
      }, feedbackText(f, full)));
    }
    return box;
  }

  function metadataChips(meta) {
    const box = el('span', { class: 'metadata' });
    const entries = meta ? Object.entries(meta) : [];
    if (entries.length === 0) box.textContent = '–';
    for (const [k, v] of entries) {
      const value = typeof v === 'string' ? v : JSON.stringify(v);
      box.appendChild(el('span', { class: 'chip', 'data-key': k, 'data-value': value }, k + '=' + value));
    }
    return box;
  }

  // --- Traces: the search ------------------------------------------------------------------

  const search = { params: null, cursor: null, shown: 0, seq: 0, started: false };

  function metadataFilters() {
    const pairs = [];
    for (const input of document.querySelectorAll('#q-metadata .meta-filter')) {
      const text = input.value.trim();
      if (!text) continue;
      const eq = text.indexOf('=');
      if (eq <= 0) throw apiError(0, 'bad_metadata', 'a metadata filter is key=value, not “' + text + '”');
      pairs.push([text.slice(0, eq).trim(), text.slice(eq + 1).trim()]);
    }
    return pairs;
  }

  function searchParams() {
    const p = new URLSearchParams();
    const trace = byId('q-trace').value.trim();
    if (trace) p.set('trace_id', trace);
    for (const [k, v] of metadataFilters()) p.append('metadata.' + k, v);
    if (byId('q-outcome').value) p.set('outcome', byId('q-outcome').value);
    if (byId('q-feedback').value) p.set('feedback', byId('q-feedback').value);
    p.set('time_range', byId('q-range').value);
    p.set('limit', String(PAGE));
    return p;
  }

  function runSearch() {
    search.started = true;
    try {
      search.params = searchParams();
    } catch (e) {
      showError('traces-status', e);
      return;
    }
    search.cursor = null;
    loadPage(false);
  }

  function loadPage(append) {
    const seq = ++search.seq;
    const params = new URLSearchParams(search.params);
    if (append && search.cursor) params.set('cursor', search.cursor);
    setStatus('traces-status', 'searching…', 'loading');
    loading('view-traces', seq);
    byId('traces-more').disabled = true;
    apiGet(API + 'requests', params)
      .then((list) => seq === search.seq && showPage(list, append))
      .catch((e) => {
        if (seq !== search.seq) return;
        showError('traces-status', e);
        if (!append) fill(byId('traces-body'), [], 9, 'no results');
        byId('traces-more').hidden = true;
        byId('view-traces').setAttribute('data-state', 'error');
      });
  }

  function showPage(list, append) {
    setStatus('traces-status', '');
    const rows = list.data.map(searchRow);
    const body = byId('traces-body');
    if (append) body.append(...rows);
    else fill(body, rows, 9, 'no request matches');
    search.shown = (append ? search.shown : 0) + rows.length;
    search.cursor = list.has_more && list.next_cursor ? list.next_cursor : null;
    const more = byId('traces-more');
    more.hidden = !search.cursor;
    more.disabled = false;
    byId('traces-count').textContent = search.shown + (search.cursor ? ' shown; more match' : ' shown');
    byId('view-traces').setAttribute('data-state', 'done');
  }

  function searchRow(r) {
    const tr = el('tr', { 'data-id': r.id, 'data-trace-id': r.trace_id, 'data-outcome': r.outcome });
    const cell = (field, content, cls) => {
      const td = el('td', { 'data-field': field, class: cls });
      td.append(content);
      tr.appendChild(td);
    };
    cell('time', fmtDateTime(startMs(r)));
    cell('trace_id', el('a', { href: traceHref(r.trace_id), title: r.trace_id }, r.trace_id));
    cell('model', r.response_model || r.model || '–');
    cell('outcome', outcomeBadge(r.outcome));
    cell('status', String(r.status), 'num');
    cell('latency', fmtMs(r.duration_ms), 'num');
    cell('tokens', fmtTokens(r), 'num');
    cell('cost', fmtCost(r.cost_usd), 'num');
    cell('feedback', feedbackList(r.feedback, false));
    return tr;
  }

  function addMetadataFilter() {
    const inputs = document.querySelectorAll('#q-metadata .meta-filter');
    if (inputs.length >= MAX_METADATA_FILTERS) return;
    const input = inputs[0].cloneNode(false);
    input.value = '';
    const add = byId('q-metadata-add');
    add.before(input);
    add.disabled = inputs.length + 1 >= MAX_METADATA_FILTERS;
    input.focus();
  }

  // --- Traces: one trace as its turns --------------------------------------------------------

  const trace = { seq: 0 };

  function openTrace(id) {
    const seq = ++trace.seq;
    byId('trace-id').textContent = id;
    byId('trace-summary').textContent = '';
    byId('trace-turns').replaceChildren();
    setStatus('trace-status', 'loading…', 'loading');
    loading('view-trace', seq);
    // A trace is a session: look back the whole 30 days the API allows.
    const params = new URLSearchParams({ trace_id: id, time_range: '30d', limit: '200' });
    apiGet(API + 'requests', params)
      .then((list) => seq === trace.seq && showTurns(list, seq))
      .catch((e) => {
        if (seq !== trace.seq) return;
        showError('trace-status', e);
        byId('view-trace').setAttribute('data-state', 'error');
      });
  }

  function byStart(a, b) {
    return startMs(a) - startMs(b) || (a.start < b.start ? -1 : a.start > b.start ? 1 : 0);
  }

  function showTurns(list, seq) {
    const turns = list.data.slice().sort(byStart);
    if (turns.length === 0) {
      setStatus('trace-status', 'no request of this trace in the last 30 days', 'empty');
    } else if (list.has_more) {
      setStatus('trace-status', 'a long trace: only its newest ' + turns.length + ' requests are shown', 'truncated');
    } else {
      setStatus('trace-status', '');
    }
    byId('trace-summary').textContent = traceSummary(turns);
    const items = turns.map(turnItem);
    byId('trace-turns').replaceChildren(...items);
    byId('view-trace').setAttribute('data-state', 'done');
    loadAttempts(turns, items, seq);
  }

  function traceSummary(turns) {
    if (turns.length === 0) return '';
    const sum = (f) => turns.reduce((acc, r) => acc + (r[f] || 0), 0);
    const first = startMs(turns[0]);
    const last = turns[turns.length - 1];
    const spanMs = startMs(last) + (last.duration_ms || 0) - first;
    return turns.length + (turns.length === 1 ? ' turn' : ' turns') + ' · ' +
      sum('input_tokens') + ' / ' + sum('output_tokens') + ' tokens · ' + fmtCost(sum('cost_usd')) +
      ' · ' + fmtDateTime(first) + ' over ' + fmtMs(spanMs);
  }

  function turnItem(r, i) {
    const li = el('li', { class: 'turn', 'data-turn': i + 1, 'data-id': r.id, 'data-outcome': r.outcome });
    const head = el('h3');
    head.append('Turn ' + (i + 1) + ' · ', el('time', { datetime: r.start }, fmtDateTime(startMs(r))),
      ' · ', outcomeBadge(r.outcome), ' · ' + r.status + (r.fallback ? ' · fell back' : ''));
    li.append(head, turnFacts(r), turnLabels(r));
    li.appendChild(el('div', { class: 'timeline', 'data-field': 'attempts', 'data-state': 'loading' },
      'loading ' + r.attempt_count + (r.attempt_count === 1 ? ' attempt…' : ' attempts…')));
    return li;
  }

  function factList(cls, facts) {
    const dl = el('dl', { class: cls });
    for (const [field, label, value] of facts) {
      const dd = el('dd', { 'data-field': field });
      dd.append(value);
      dl.append(el('dt', {}, label), dd);
    }
    return dl;
  }

  function turnFacts(r) {
    const model = (r.model || '–') +
      (r.response_model && r.response_model !== r.model ? ' → ' + r.response_model : '');
    const provider = (r.provider || '–') + (r.provider_kind ? ' (' + r.provider_kind + ')' : '');
    return factList('facts', [
      ['model', 'model', model],
      ['provider', 'provider', provider],
      ['tokens', 'tokens in / out', fmtTokens(r)],
      ['cost', 'cost', fmtCost(r.cost_usd)],
      ['latency', 'latency', fmtMs(r.duration_ms)],
      ['ttft', 'TTFT', fmtMs(r.ttft_ms)],
      ['request', 'request', r.method + ' ' + r.path + (r.stream ? ' (stream)' : '')],
      ['config', 'config', (r.config || '–') + (r.virtual_key ? ' · ' + r.virtual_key : '')],
      ['cache', 'cache', r.cache || '–'],
    ]);
  }

  function turnLabels(r) {
    const span = r.client_span;
    const spanText = span
      ? [span.span_id, span.parent_span_id && 'parent ' + span.parent_span_id, span.span_name]
        .filter(Boolean).join(' · ')
      : '–';
    return factList('facts wide', [
      ['metadata', 'metadata', metadataChips(r.metadata)],
      ['feedback', 'feedback', feedbackList(r.feedback, true)],
      ['span', 'span', spanText || '–'],
      ['gateway', 'gateway', r.gateway || '–'],
    ]);
  }

  // Each turn's attempts and bodies come from its own `requests/{id}`, three at a time.
  function loadAttempts(turns, items, seq) {
    let next = 0;
    const worker = async () => {
      while (next < turns.length && seq === trace.seq) {
        const i = next++;
        await loadTurnDetail(turns[i], items[i]);
      }
    };
    return Promise.all([worker(), worker(), worker()]);
  }

  function loadTurnDetail(r, li) {
    const box = li.querySelector('[data-field="attempts"]');
    return apiGet(API + 'requests/' + encodeURIComponent(r.id))
      .then((full) => {
        renderTimeline(box, full.attempts || [], full.duration_ms);
        box.setAttribute('data-state', 'done');
        box.setAttribute('data-count', (full.attempts || []).length);
        if (full.bodies) li.appendChild(bodiesBlock(full.bodies));
      })
      .catch((e) => {
        box.textContent = 'attempts unavailable: ' + e.message;
        box.setAttribute('data-state', 'error');
      });
  }

  // Bodies are often JSON: shown indented when they parse, as sent otherwise.
  function pretty(text) {
    if (!present(text)) return '–';
    try {
      return JSON.stringify(JSON.parse(text), null, 2);
    } catch (_) {
      return String(text);
    }
  }

  function bodiesBlock(bodies) {
    const details = el('details', { 'data-field': 'bodies' });
    details.append(el('summary', {}, 'request and response bodies'),
      el('h4', {}, 'request'), el('pre', {}, pretty(bodies.request)),
      el('h4', {}, 'response'), el('pre', {}, pretty(bodies.response)));
    return details;
  }

  // --- Analytics ---------------------------------------------------------------------------

  // The metrics drawn as bars; `floor` keeps a near-zero maximum from filling the chart, and a
  // diverging metric (mean feedback, −…+) grows left or right from the middle.
  const METRICS = [
    { key: 'cost_usd', label: 'Cost', fmt: fmtCost, floor: 0 },
    { key: 'requests', label: 'Requests', fmt: (v) => (present(v) ? String(v) : '–'), floor: 0 },
    { key: 'p95_ms', label: 'P95 latency', fmt: fmtMs, floor: 0 },
    { key: 'fallback_rate', label: 'Fallback rate', fmt: fmtRate, floor: 0.05 },
    { key: 'feedback_mean', label: 'Mean feedback', fmt: fmtMean, floor: 1, diverging: true },
  ];

  const analytics = { seq: 0, started: false };

  function groupBy() {
    const g = byId('a-group').value;
    if (g !== 'metadata') return g;
    const key = byId('a-meta-key').value.trim();
    if (!key) throw apiError(0, 'bad_group_by', 'name the metadata key to group by (e.g. feature)');
    return 'metadata.' + key;
  }

  function runAnalytics() {
    analytics.started = true;
    let params;
    try {
      params = new URLSearchParams({ group_by: groupBy(), time_range: byId('a-range').value });
    } catch (e) {
      showError('analytics-status', e);
      return;
    }
    const seq = ++analytics.seq;
    setStatus('analytics-status', 'loading…', 'loading');
    loading('view-analytics', seq);
    apiGet(API + 'summary', params)
      .then((s) => seq === analytics.seq && renderSummary(s))
      .catch((e) => {
        if (seq !== analytics.seq) return;
        showError('analytics-status', e);
        byId('analytics-charts').replaceChildren();
        fill(byId('analytics-body'), [], 12, 'no results');
        byId('view-analytics').setAttribute('data-state', 'error');
      });
  }

  function renderSummary(s) {
    const groups = s.groups || [];
    setStatus('analytics-status', groups.length ? '' : 'no request in this time range', 'empty');
    byId('analytics-window').textContent = 'by ' + s.group_by + ' · ' +
      fmtDateTime(Date.parse(s.from)) + ' → ' + fmtDateTime(Date.parse(s.to));
    byId('analytics-charts').replaceChildren(...(groups.length ? METRICS.map((m) => chart(m, groups)) : []));
    fill(byId('analytics-body'), groups.map(summaryRow), 12, 'no request in this time range');
    const view = byId('view-analytics');
    view.setAttribute('data-group-by', s.group_by);
    view.setAttribute('data-state', 'done');
  }

  const groupKey = (g) => (g.group === null || g.group === undefined ? '' : String(g.group));
  const groupLabel = (g) => (g.group === null || g.group === undefined ? '(not set)' : String(g.group));

  function chart(metric, groups) {
    const fig = el('figure', { class: 'chart', 'data-metric': metric.key });
    fig.appendChild(el('figcaption', {}, metric.label));
    const max = Math.max(metric.floor, ...groups.map((g) => Math.abs(g[metric.key] || 0))) || 1;
    for (const g of groups) fig.appendChild(chartRow(metric, g, max));
    return fig;
  }

  function chartRow(metric, g, max) {
    const v = g[metric.key];
    const row = el('div', { class: 'hbar-row', 'data-group': groupKey(g), 'data-value': present(v) ? v : '' });
    row.appendChild(el('span', { class: g.group === null ? 'hbar-label unset' : 'hbar-label', title: groupLabel(g) },
      groupLabel(g)));
    const track = el('span', { class: metric.diverging ? 'hbar-track diverging' : 'hbar-track' });
    if (present(v) && v !== 0) track.appendChild(hbar(v, max, metric.diverging));
    row.append(track, el('span', { class: 'hbar-value' }, metric.fmt(v)));
    return row;
  }

  function hbar(v, max, diverging) {
    const bar = el('span', { class: v < 0 ? 'hbar neg' : 'hbar' });
    const share = Math.abs(v) / max * (diverging ? 50 : 100);
    bar.style.width = share + '%';
    if (diverging) bar.style.left = (v < 0 ? 50 - share : 50) + '%';
    return bar;
  }

  function summaryRow(g) {
    const tr = el('tr', { 'data-group': groupKey(g), 'data-null': g.group === null ? 'true' : null });
    const cell = (field, text) => tr.appendChild(el('td', { 'data-field': field, class: field === 'group' ? '' : 'num' }, text));
    cell('group', groupLabel(g));
    if (g.group === null) tr.firstChild.classList.add('unset');
    cell('requests', g.requests);
    cell('errors', g.errors);
    cell('error_rate', fmtRate(g.error_rate));
    cell('fallback_rate', fmtRate(g.fallback_rate));
    cell('p50_ms', fmtMs(g.p50_ms));
    cell('p95_ms', fmtMs(g.p95_ms));
    cell('p99_ms', fmtMs(g.p99_ms));
    cell('tokens', fmtTokens(g));
    cell('cost_usd', fmtCost(g.cost_usd));
    cell('feedback_count', g.feedback_count);
    cell('feedback_mean', fmtMean(g.feedback_mean));
    return tr;
  }

  // --- Views and the URL fragment ----------------------------------------------------------

  function safeDecode(text) {
    try {
      return decodeURIComponent(text);
    } catch (_) {
      return '';
    }
  }

  // `#live`, `#traces`, `#analytics` or `#trace=<id>`; anything else is the live view.
  function currentRoute() {
    const h = location.hash.replace(/^#/, '');
    if (h.startsWith('trace=')) {
      const id = safeDecode(h.slice('trace='.length));
      return id ? { panel: 'trace', id } : { panel: 'traces' };
    }
    return { panel: h === 'traces' || h === 'analytics' ? h : 'live' };
  }

  const ENTER = {
    live: () => {},
    traces: () => search.started || runSearch(),
    trace: (r) => openTrace(r.id),
    analytics: () => analytics.started || runAnalytics(),
  };

  function route(moveFocus) {
    const r = currentRoute();
    for (const panel of document.querySelectorAll('[data-panel]')) {
      panel.hidden = panel.getAttribute('data-panel') !== r.panel;
    }
    const tab = r.panel === 'trace' ? 'traces' : r.panel;
    for (const a of document.querySelectorAll('nav.views [data-view]')) {
      if (a.getAttribute('data-view') === tab) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    document.body.setAttribute('data-current-view', r.panel);
    setLive(r.panel === 'live');
    ENTER[r.panel](r);
    const heading = byId('view-' + r.panel).querySelector('h2');
    if (moveFocus && heading) heading.focus();
  }

  function bindForms() {
    byId('traces-form').addEventListener('submit', (e) => {
      e.preventDefault();
      runSearch();
    });
    byId('q-metadata-add').addEventListener('click', addMetadataFilter);
    byId('traces-more').addEventListener('click', () => loadPage(true));
    byId('analytics-form').addEventListener('submit', (e) => {
      e.preventDefault();
      runAnalytics();
    });
    byId('a-group').addEventListener('change', (e) => {
      const metadata = e.target.value === 'metadata';
      byId('a-meta-key').disabled = !metadata;
      if (metadata && !byId('a-meta-key').value.trim()) byId('a-meta-key').focus();
      else runAnalytics();
    });
    byId('a-range').addEventListener('change', runAnalytics);
  }

  document.addEventListener('DOMContentLoaded', () => {
    byId('outcome-filter').addEventListener('change', (e) => {
      state.filter = e.target.value;
      renderRequests();
    });
    bindForms();
    window.addEventListener('hashchange', () => route(true));
    route(false);
  });
})();
