/**
 * `GET /docs`: a reference of `/openapi.json` rendered in the browser by the inline script
 * below. Everything is in this one page (no CDN, fonts or images), so it works offline and
 * under a CSP that allows no other origin. Strings from the document are only ever set as
 * text, never parsed as HTML.
 */
export const DOCS_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>API reference</title>
<style>
  :root { --fg: #1d232a; --muted: #5c6670; --line: #dde2e7; --bg: #f7f8fa; --accent: #2456c7; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); display: flex; }
  nav { width: 300px; height: 100vh; overflow: auto; position: sticky; top: 0; border-right: 1px solid var(--line); background: var(--bg); padding: 12px; flex-shrink: 0; }
  nav input { width: 100%; padding: 6px 8px; border: 1px solid var(--line); border-radius: 4px; margin-bottom: 8px; }
  nav h4 { margin: 12px 0 4px; font-size: 12px; text-transform: uppercase; color: var(--muted); }
  nav a { display: block; padding: 2px 4px; color: var(--fg); text-decoration: none; font-size: 13px; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
  nav a:hover { background: #e9edf2; }
  main { flex: 1; padding: 16px 32px 64px; max-width: 1100px; min-width: 0; }
  h1 { margin: 0 0 4px; font-size: 24px; }
  h2 { margin: 32px 0 8px; font-size: 18px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
  .op { border: 1px solid var(--line); border-radius: 6px; margin: 12px 0; padding: 12px 16px; }
  .op h3 { margin: 0; font-size: 15px; font-family: ui-monospace, monospace; word-break: break-all; }
  .m { display: inline-block; min-width: 58px; text-align: center; border-radius: 3px; color: #fff; font-size: 12px; padding: 1px 6px; margin-right: 8px; font-family: system-ui, sans-serif; }
  .get { background: #2f7d4f; } .post { background: #2456c7; } .put { background: #a86b00; } .delete { background: #b3261e; } .patch { background: #6b4fbb; }
  .muted { color: var(--muted); }
  .label { font-weight: 600; margin-top: 10px; }
  table { border-collapse: collapse; width: 100%; margin: 4px 0; }
  td, th { border-bottom: 1px solid var(--line); text-align: left; padding: 4px 8px; vertical-align: top; }
  code, .schema { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12.5px; }
  .schema { background: var(--bg); border-radius: 4px; padding: 6px 10px; margin: 4px 0; overflow-x: auto; }
  .schema ul { list-style: none; margin: 0; padding-left: 16px; border-left: 1px dotted var(--line); }
  .req { color: #b3261e; }
  .type { color: var(--accent); }
  summary { cursor: pointer; }
  .hidden { display: none; }
  #error { color: #b3261e; }
</style>
</head>
<body>
<nav><input id="filter" type="search" placeholder="Filter operations" aria-label="Filter operations"><div id="nav"></div></nav>
<main><div id="error"></div><div id="doc">Loading /openapi.json …</div></main>
<script>
(function () {
  'use strict';
  var METHODS = ['get', 'post', 'put', 'patch', 'delete'];
  var spec;

  function el(tag, attrs) {
    var node = document.createElement(tag);
    var key;
    for (key in attrs || {}) {
      if (key === 'text') node.textContent = attrs[key];
      else node.setAttribute(key, attrs[key]);
    }
    for (var i = 2; i < arguments.length; i++) {
      var child = arguments[i];
      if (child === null || child === undefined || child === false) continue;
      node.appendChild(typeof child === 'string' ? document.createTextNode(child) : child);
    }
    return node;
  }

  function refName(ref) { return ref.split('/').pop(); }

  function resolve(schema) {
    if (schema && schema.$ref) return (spec.components.schemas || {})[refName(schema.$ref)] || {};
    return schema || {};
  }

  function typeOf(schema) {
    if (schema.$ref) return refName(schema.$ref);
    if (schema.enum) return schema.enum.map(function (v) { return JSON.stringify(v); }).join(' | ');
    if (schema.const !== undefined) return JSON.stringify(schema.const);
    var t = Array.isArray(schema.type) ? schema.type.join(' | ') : schema.type;
    if (t === 'array') return 'array of ' + typeOf(schema.items || {});
    if (schema.format) return (t || '') + ' (' + schema.format + ')';
    if (schema.anyOf || schema.oneOf) return (schema.anyOf || schema.oneOf).map(typeOf).join(' | ');
    return t || (schema.properties ? 'object' : 'any');
  }

  function constraints(schema) {
    var parts = [];
    ['minimum', 'maximum', 'minLength', 'maxLength', 'minItems', 'maxItems', 'pattern', 'default'].forEach(function (k) {
      if (schema[k] !== undefined) parts.push(k + ': ' + JSON.stringify(schema[k]));
    });
    return parts.join(', ');
  }

  function schemaNode(schema, depth, seen) {
    var own = resolve(schema);
    var list = el('ul');
    if (depth > 6) return list;
    var name = schema.$ref ? refName(schema.$ref) : null;
    if (name && seen.indexOf(name) !== -1) return list;
    var next = name ? seen.concat([name]) : seen;
    var target = own.type === 'array' ? resolve(own.items || {}) : own;
    var props = target.properties || {};
    var required = target.required || [];
    Object.keys(props).forEach(function (key) {
      var p = props[key];
      var resolved = resolve(p);
      var item = el('li', null,
        el('span', { text: key }),
        required.indexOf(key) !== -1 ? el('span', { class: 'req', text: '*' }) : null,
        ' ',
        el('span', { class: 'type', text: typeOf(p) }),
        constraints(resolved) ? el('span', { class: 'muted', text: '  ' + constraints(resolved) }) : null,
        resolved.description ? el('div', { class: 'muted', text: resolved.description }) : null);
      var inner = resolved.type === 'array' ? resolve(resolved.items || {}) : resolved;
      if (inner.properties) item.appendChild(schemaNode(p.type === 'array' ? p.items : p, depth + 1, next));
      list.appendChild(item);
    });
    (target.anyOf || target.oneOf || []).forEach(function (alt, i) {
      list.appendChild(el('li', null, el('span', { class: 'muted', text: 'variant ' + (i + 1) + ': ' }),
        el('span', { class: 'type', text: typeOf(alt) }), schemaNode(alt, depth + 1, next)));
    });
    return list;
  }

  function schemaBlock(schema) {
    return el('div', { class: 'schema' }, el('span', { class: 'type', text: typeOf(schema) }),
      schemaNode(schema, 0, []));
  }

  function securityText(op) {
    var reqs = op.security || spec.security || [];
    if (reqs.length === 0) return 'none';
    return reqs.map(function (r) {
      var names = Object.keys(r);
      return names.length ? names.join(' + ') : 'none';
    }).join(' or ');
  }

  function operation(path, method, op, id) {
    var box = el('section', { class: 'op', id: id },
      el('h3', null, el('span', { class: 'm ' + method, text: method.toUpperCase() }), path),
      op.summary ? el('div', { text: op.summary }) : null,
      el('div', { class: 'muted', text: 'Auth: ' + securityText(op) }));
    var params = op.parameters || [];
    if (params.length) {
      var table = el('table', null, el('tr', null, el('th', { text: 'Parameter' }), el('th', { text: 'In' }),
        el('th', { text: 'Type' }), el('th', { text: 'Description' })));
      params.forEach(function (p) {
        var s = p.schema || {};
        table.appendChild(el('tr', null,
          el('td', null, el('code', { text: p.name }), p.required ? el('span', { class: 'req', text: '*' }) : null),
          el('td', { text: p.in }), el('td', { class: 'type', text: typeOf(s) }),
          el('td', { class: 'muted', text: [p.description || resolve(s).description || '', constraints(resolve(s))].filter(Boolean).join('; ') })));
      });
      box.appendChild(el('div', { class: 'label', text: 'Parameters' }));
      box.appendChild(table);
    }
    var body = op.requestBody && op.requestBody.content;
    if (body) {
      Object.keys(body).forEach(function (type) {
        box.appendChild(el('div', { class: 'label', text: 'Request body (' + type + ')' }));
        box.appendChild(schemaBlock(body[type].schema || {}));
      });
    }
    box.appendChild(el('div', { class: 'label', text: 'Responses' }));
    Object.keys(op.responses || {}).forEach(function (status) {
      var r = op.responses[status];
      var details = el('details', null, el('summary', null, el('code', { text: status }), ' ' + (r.description || '')));
      Object.keys(r.content || {}).forEach(function (type) {
        details.appendChild(el('div', { class: 'muted', text: type }));
        details.appendChild(schemaBlock(r.content[type].schema || {}));
      });
      box.appendChild(details);
    });
    return box;
  }

  function render() {
    var doc = document.getElementById('doc');
    var nav = document.getElementById('nav');
    doc.textContent = '';
    document.title = spec.info.title + ' ' + spec.info.version;
    doc.appendChild(el('h1', { text: spec.info.title }));
    doc.appendChild(el('div', { class: 'muted', text: 'OpenAPI ' + spec.openapi + ', version ' + spec.info.version }));
    if (spec.info.description) doc.appendChild(el('p', { text: spec.info.description }));
    var schemes = (spec.components && spec.components.securitySchemes) || {};
    var auth = el('table');
    Object.keys(schemes).forEach(function (name) {
      var s = schemes[name];
      auth.appendChild(el('tr', null, el('td', null, el('code', { text: name })),
        el('td', { text: s.type === 'http' ? 'Authorization: ' + s.scheme + (s.bearerFormat ? ' (' + s.bearerFormat + ')' : '') : s.in + ' ' + s.name }),
        el('td', { class: 'muted', text: s.description || '' })));
    });
    doc.appendChild(el('h2', { text: 'Authentication' }));
    doc.appendChild(auth);

    var byTag = {};
    Object.keys(spec.paths).forEach(function (path) {
      METHODS.forEach(function (method) {
        var op = spec.paths[path][method];
        if (!op) return;
        var tag = (op.tags && op.tags[0]) || 'Other';
        (byTag[tag] = byTag[tag] || []).push({ path: path, method: method, op: op });
      });
    });
    var n = 0;
    Object.keys(byTag).forEach(function (tag) {
      nav.appendChild(el('h4', { text: tag }));
      doc.appendChild(el('h2', { text: tag }));
      byTag[tag].forEach(function (entry) {
        var id = 'op-' + (n++);
        var link = el('a', { href: '#' + id, 'data-search': (entry.method + ' ' + entry.path + ' ' + (entry.op.summary || '')).toLowerCase() },
          el('span', { class: 'm ' + entry.method, text: entry.method.toUpperCase() }), entry.path);
        nav.appendChild(link);
        doc.appendChild(operation(entry.path, entry.method, entry.op, id));
      });
    });

    var schemas = (spec.components && spec.components.schemas) || {};
    doc.appendChild(el('h2', { text: 'Schemas' }));
    Object.keys(schemas).sort().forEach(function (name) {
      doc.appendChild(el('details', { id: 'schema-' + name }, el('summary', null, el('code', { text: name })),
        schemaBlock({ $ref: '#/components/schemas/' + name })));
    });
  }

  document.getElementById('filter').addEventListener('input', function (event) {
    var q = event.target.value.toLowerCase();
    Array.prototype.forEach.call(document.querySelectorAll('#nav a'), function (a) {
      a.classList.toggle('hidden', q !== '' && a.getAttribute('data-search').indexOf(q) === -1);
    });
  });

  fetch('openapi.json').then(function (res) {
    if (!res.ok) throw new Error('GET /openapi.json answered ' + res.status);
    return res.json();
  }).then(function (json) {
    spec = json;
    render();
  }).catch(function (err) {
    document.getElementById('error').textContent = String(err.message || err);
  });
})();
</script>
</body>
</html>
`
