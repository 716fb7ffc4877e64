// Vigie console: the little script the server-rendered pages need. No framework, no build step.
// - <time datetime> shown in the browser's time zone;
// - <form data-api="/api/v1/..."> sent to the JSON API (with the session's CSRF token), the
//   API's validation errors shown beside the fields they name;
// - <button data-api> for one-click actions (workflow buttons, Test, enable); a form's submit
//   button with data-submit-api sends the form's fields to another endpoint (Backtest);
// - [data-refresh] fragments reloaded on a timer (dashboards), [data-autosubmit] filter forms;
// - [data-copy] buttons.
(function () {
  'use strict';

  function csrf() {
    var m = document.querySelector('meta[name="csrf-token"]');
    return m ? m.getAttribute('content') : '';
  }

  function localTimes(root) {
    root.querySelectorAll('time[datetime]').forEach(function (t) {
      if (t.dataset.local) return;
      var d = new Date(t.getAttribute('datetime'));
      if (isNaN(d.getTime())) return;
      var opts = t.dataset.format === 'date' ? { dateStyle: 'medium' } : { dateStyle: 'medium', timeStyle: 'short' };
      t.title = t.textContent;
      t.textContent = d.toLocaleString(undefined, opts);
      t.dataset.local = '1';
    });
  }

  // Sets obj.a.b[0].c = v for the path "a.b.0.c".
  function setPath(obj, path, value) {
    var keys = path.split('.');
    var cur = obj;
    for (var i = 0; i < keys.length - 1; i++) {
      var k = keys[i];
      var nextIsIndex = /^\d+$/.test(keys[i + 1]);
      if (cur[k] === undefined) cur[k] = nextIsIndex ? [] : {};
      cur = cur[k];
    }
    cur[keys[keys.length - 1]] = value;
  }

  function FieldProblem(field, message) {
    this.field = field;
    this.message = message;
  }

  // The form's fields as the JSON the API takes. data-type on a field: number, int, bool,
  // json, list (comma or newline separated; or checkboxes sharing a name), lines, values (one
  // value as a string, or a list when it holds commas: a policy condition's value); data-empty:
  // "null" sends null for an empty field, "keep" sends "", otherwise it is left out.
  function formJson(form) {
    var out = {};
    var lists = {};
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || el.disabled || el.name.charAt(0) === '_' || el.type === 'submit' || el.type === 'button') return;
      var t = el.dataset.type || '';
      if (el.type === 'checkbox' && t === 'list') {
        if (!lists[el.name]) lists[el.name] = [];
        if (el.checked) lists[el.name].push(el.value);
        return;
      }
      if (el.type === 'checkbox') { setPath(out, el.name, el.checked); return; }
      if (el.type === 'radio') { if (el.checked) setPath(out, el.name, el.value); return; }
      var v = el.value;
      if (v.trim() === '') {
        if (el.dataset.empty === 'null') setPath(out, el.name, null);
        else if (el.dataset.empty === 'keep') setPath(out, el.name, '');
        else if (t === 'list' || t === 'lines') setPath(out, el.name, []);
        return;
      }
      var value = v;
      if (t === 'number' || t === 'int') {
        value = Number(v);
        if (!isFinite(value) || (t === 'int' && !Number.isInteger(value))) throw new FieldProblem(el.name, t === 'int' ? 'a whole number is expected' : 'a number is expected');
      } else if (t === 'bool') {
        value = v === 'true';
      } else if (t === 'json') {
        try { value = JSON.parse(v); } catch (e) { throw new FieldProblem(el.name, 'this is not valid JSON: ' + e.message); }
      } else if (t === 'list') {
        value = v.split(/[\n,]/).map(function (s) { return s.trim(); }).filter(Boolean);
      } else if (t === 'lines') {
        value = v.split('\n').map(function (s) { return s.trim(); }).filter(Boolean);
      } else if (t === 'values') {
        value = v.indexOf(',') < 0 ? v.trim() : v.split(',').map(function (s) { return s.trim(); }).filter(Boolean);
      } else if (t === 'datetime') {
        var d = new Date(v);
        if (isNaN(d.getTime())) throw new FieldProblem(el.name, 'a date and time is expected');
        value = d.toISOString();
      }
      setPath(out, el.name, value);
    });
    Object.keys(lists).forEach(function (k) { setPath(out, k, lists[k]); });
    return compact(out);
  }

  // Lists without holes: an optional row left empty (a select at actions.1 with nothing chosen)
  // is dropped rather than sent as null.
  function compact(v) {
    if (Array.isArray(v)) return v.filter(function () { return true; }).map(compact);
    if (v && typeof v === 'object') Object.keys(v).forEach(function (k) { v[k] = compact(v[k]); });
    return v;
  }

  function clearErrors(form) {
    form.querySelectorAll('.field-error').forEach(function (e) { e.remove(); });
    form.querySelectorAll('[aria-invalid]').forEach(function (e) { e.removeAttribute('aria-invalid'); });
    var box = form.querySelector('.form-error');
    if (box) { box.hidden = true; box.textContent = ''; }
    var ok = form.querySelector('.form-ok');
    if (ok) ok.hidden = true;
  }

  function errorBox(form) {
    var box = form.querySelector('.form-error');
    if (!box) {
      box = document.createElement('div');
      box.className = 'form-error';
      box.setAttribute('role', 'alert');
      form.insertBefore(box, form.firstChild);
    }
    box.hidden = false;
    return box;
  }

  function fieldFor(form, path) {
    var esc = window.CSS && CSS.escape ? CSS.escape(path) : path;
    return form.querySelector('[name="' + esc + '"]') || form.querySelector('[data-error-for="' + esc + '"]');
  }

  // Shows an API error: {error, code, fields: [{field, message}]}.
  function showErrors(form, err) {
    var box = errorBox(form);
    box.textContent = err.error || 'The request failed.';
    var unplaced = [];
    (err.fields || []).forEach(function (f, i) {
      var el = fieldFor(form, f.field);
      if (!el) { unplaced.push(f); return; }
      el.setAttribute('aria-invalid', 'true');
      var p = document.createElement('p');
      p.className = 'field-error';
      p.id = 'err-' + i + '-' + Math.random().toString(36).slice(2, 7);
      p.textContent = f.message;
      el.setAttribute('aria-describedby', p.id);
      el.insertAdjacentElement('afterend', p);
    });
    if (unplaced.length) {
      var ul = document.createElement('ul');
      unplaced.forEach(function (f) {
        var li = document.createElement('li');
        li.textContent = (f.field ? f.field + ': ' : '') + f.message;
        ul.appendChild(li);
      });
      box.appendChild(ul);
    }
    var first = form.querySelector('[aria-invalid="true"]');
    if (first && first.focus) first.focus();
  }

  function fill(template, data) {
    return template.replace(/\{([a-z_0-9.]+)\}/g, function (_, k) {
      var v = k.split('.').reduce(function (o, p) { return o == null ? o : o[p]; }, data);
      return v == null ? '' : encodeURIComponent(String(v));
    });
  }

  // What to do with a successful answer: data-then = reload (default) | redirect:/path/{id} |
  // show:#selector (an HTML answer replaces its content; a JSON answer fills its
  // [data-field="name"] elements and unhides it) | none.
  function after(el, data, isHtml) {
    var then = el.dataset.then || 'reload';
    if (then === 'reload') { location.reload(); return; }
    if (then === 'none') return;
    if (then.indexOf('redirect:') === 0) { location.href = fill(then.slice(9), data || {}); return; }
    if (then.indexOf('show:') === 0) {
      var target = document.querySelector(then.slice(5));
      if (!target) return;
      if (isHtml) {
        target.innerHTML = data;
      } else {
        target.querySelectorAll('[data-field]').forEach(function (f) {
          var v = f.dataset.field.split('.').reduce(function (o, p) { return o == null ? o : o[p]; }, data);
          f.textContent = v == null ? '' : (typeof v === 'object' ? JSON.stringify(v, null, 2) : String(v));
        });
      }
      target.hidden = false;
      localTimes(target);
      wire(target);
      var ok = el.querySelector && el.querySelector('.form-ok');
      if (ok) ok.hidden = false;
    }
  }

  function endedSession(res) {
    if (!res.redirected) return false;
    try { return new URL(res.url).pathname === '/login'; } catch (e) { return false; }
  }

  // A 401 means "log in again" only on a page with a session and for an ended session; other
  // 401s (an invitation that expired) are errors to show.
  function sessionEnded(r) {
    if (r.status !== 401 || !csrf()) return false;
    var code = r.data && r.data.code;
    return !code || ['missing_credentials', 'invalid_credentials', 'token_expired', 'unauthorized'].indexOf(code) >= 0;
  }

  function sameOrigin(url) {
    try { return new URL(url, location.href).origin === location.origin; } catch (e) { return false; }
  }

  function call(method, url, body) {
    // The CSRF token never leaves this origin.
    if (!sameOrigin(url)) return Promise.reject(new Error('refused to send a request to another site'));
    var headers = { 'Accept': 'application/json, text/html', 'X-CSRF-Token': csrf() };
    var init = { method: method, headers: headers, credentials: 'same-origin' };
    if (body !== undefined && method !== 'GET') {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    return fetch(url, init).then(function (res) {
      // A page route whose session ended answers a redirect to the login page: log in again
      // rather than show the login form inside a result box.
      if (endedSession(res)) return { ok: false, status: 401, data: {}, isHtml: false };
      var ct = res.headers.get('content-type') || '';
      var isHtml = ct.indexOf('text/html') === 0;
      var read = ct.indexOf('json') >= 0 ? res.json() : res.text();
      return read.then(function (data) { return { ok: res.ok, status: res.status, data: data, isHtml: isHtml }; });
    });
  }

  function loginAgain() {
    location.href = '/login?next=' + encodeURIComponent(location.pathname + location.search);
  }

  // A submit button with data-submit-api sends the form there instead (its own data-method and
  // data-then): a Backtest button beside Save sends the same fields to another endpoint.
  function submitForm(form, submitter) {
    var via = submitter && submitter.dataset && submitter.dataset.submitApi ? submitter : null;
    clearErrors(form);
    var body;
    try { body = formJson(form); } catch (e) {
      if (e instanceof FieldProblem) { showErrors(form, { error: 'Please correct the highlighted field.', fields: [e] }); return; }
      throw e;
    }
    if (form.dataset.wrap) { var w = {}; w[form.dataset.wrap] = body; body = w; }
    var buttons = form.querySelectorAll('button[type="submit"], button:not([type])');
    buttons.forEach(function (b) { b.setAttribute('aria-busy', 'true'); b.disabled = true; });
    var method = ((via || form).dataset.method || 'POST').toUpperCase();
    call(method, fill(via ? via.dataset.submitApi : form.dataset.api, body), body).then(function (r) {
      buttons.forEach(function (b) { b.removeAttribute('aria-busy'); b.disabled = false; });
      if (sessionEnded(r)) { loginAgain(); return; }
      if (!r.ok) {
        showErrors(form, typeof r.data === 'object' ? r.data : { error: 'The request failed (' + r.status + ').' });
        return;
      }
      after(via || form, r.data, r.isHtml);
    }).catch(function (e) {
      buttons.forEach(function (b) { b.removeAttribute('aria-busy'); b.disabled = false; });
      showErrors(form, { error: 'The server could not be reached: ' + e.message });
    });
  }

  function clickAction(btn) {
    if (btn.dataset.confirm && !window.confirm(btn.dataset.confirm)) return;
    var body;
    if (btn.dataset.body) {
      try { body = JSON.parse(btn.dataset.body); } catch (e) { body = undefined; }
    }
    var status = btn.parentElement.querySelector('.action-status') || null;
    btn.setAttribute('aria-busy', 'true');
    btn.disabled = true;
    call((btn.dataset.method || 'POST').toUpperCase(), btn.dataset.api, body === undefined ? {} : body).then(function (r) {
      btn.removeAttribute('aria-busy');
      btn.disabled = false;
      if (sessionEnded(r)) { loginAgain(); return; }
      if (!r.ok) {
        var msg = (r.data && r.data.error) || ('The request failed (' + r.status + ').');
        if (status) { status.textContent = msg; status.className = 'action-status form-error'; } else { window.alert(msg); }
        return;
      }
      after(btn, r.data, r.isHtml);
    }).catch(function (e) {
      btn.removeAttribute('aria-busy');
      btn.disabled = false;
      window.alert('The server could not be reached: ' + e.message);
    });
  }

  // The next refresh is armed only when the last one finished: a slow server is never asked
  // again while it is still answering.
  function refresh(el) {
    var every = Number(el.dataset.every || '60') * 1000;
    if (!(every > 0)) return;
    function again() { setTimeout(tick, every); }
    function tick() {
      var toggle = document.querySelector('[data-refresh-toggle]');
      if (document.hidden || (toggle && !toggle.checked)) { again(); return; }
      fetch(el.dataset.refresh, { credentials: 'same-origin', headers: { 'Accept': 'text/html' } }).then(function (res) {
        if (res.status === 401 || endedSession(res)) { loginAgain(); return null; }
        return res.ok ? res.text() : null;
      }).then(function (html) {
        if (html != null) {
          el.innerHTML = html;
          localTimes(el);
          wire(el);
        }
        again();
      }).catch(function () { again(); });
    }
    again();
  }

  function wire(root) {
    root.querySelectorAll('form[data-api]').forEach(function (form) {
      if (form.dataset.wired) return;
      form.dataset.wired = '1';
      form.addEventListener('submit', function (ev) { ev.preventDefault(); submitForm(form, ev.submitter); });
    });
    root.querySelectorAll('button[data-api]').forEach(function (btn) {
      if (btn.dataset.wired) return;
      btn.dataset.wired = '1';
      btn.addEventListener('click', function (ev) { ev.preventDefault(); clickAction(btn); });
    });
    root.querySelectorAll('form[data-autosubmit]').forEach(function (form) {
      if (form.dataset.wired) return;
      form.dataset.wired = '1';
      form.addEventListener('change', function () { form.requestSubmit ? form.requestSubmit() : form.submit(); });
    });
    root.querySelectorAll('[data-copy]').forEach(function (btn) {
      if (btn.dataset.wired) return;
      btn.dataset.wired = '1';
      btn.addEventListener('click', function () {
        var src = document.querySelector(btn.dataset.copy);
        if (src && navigator.clipboard) navigator.clipboard.writeText(src.textContent.trim()).then(function () { btn.textContent = 'Copied'; }, function () {});
      });
    });
    root.querySelectorAll('[data-confirm-submit]').forEach(function (form) {
      if (form.dataset.wired) return;
      form.dataset.wired = '1';
      form.addEventListener('submit', function (ev) { if (!window.confirm(form.dataset.confirmSubmit)) ev.preventDefault(); });
    });
  }

  document.addEventListener('DOMContentLoaded', function () {
    localTimes(document);
    wire(document);
    document.querySelectorAll('[data-refresh]').forEach(refresh);
  });
})();
