/* The API reference, drawn from the server's own OpenAPI schema (nothing loaded from elsewhere). */
"use strict";

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

function typeOf(schema) {
  if (!schema) return "";
  if (schema.anyOf) return schema.anyOf.map(typeOf).join(" | ");
  let t = schema.type || (schema.$ref ? schema.$ref.split("/").pop() : "");
  const bounds = [["minimum", "≥"], ["maximum", "≤"], ["maxLength", "length ≤"]]
    .filter(([k]) => schema[k] !== undefined).map(([k, s]) => `${s} ${schema[k]}`);
  if (bounds.length) t += ` (${bounds.join(", ")})`;
  if (schema.default !== undefined) t += `, default ${JSON.stringify(schema.default)}`;
  return t;
}

async function main() {
  const spec = await (await fetch("/api/openapi.json")).json();
  const box = document.getElementById("ops");
  box.replaceChildren();
  for (const [path, ops] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const div = el("div", undefined, "api-op");
      const h = el("h2");
      h.append(el("code", method.toUpperCase(), "method"), " ", el("code", path));
      div.appendChild(h);
      if (op.description || op.summary) div.appendChild(el("p", op.description || op.summary, "small"));
      const params = op.parameters || [];
      if (params.length) {
        const t = el("table");
        t.appendChild(el("tr")).append(el("th", "parameter"), el("th", "in"), el("th", "type"), el("th", "meaning"));
        for (const p of params) {
          t.appendChild(el("tr")).append(el("td", p.name), el("td", p.in), el("td", typeOf(p.schema)),
            el("td", p.description || (p.schema && p.schema.description) || ""));
        }
        div.appendChild(t);
      }
      if (op.requestBody) {
        const c = op.requestBody.content || {}, j = c["application/json"];
        div.appendChild(el("p", "body: " + ((j && j.schema && j.schema.description) || Object.keys(c).join(", ")), "small muted"));
      }
      const codes = Object.keys(op.responses || {});
      div.appendChild(el("p", "answers: " + codes.join(", "), "small muted"));
      box.appendChild(div);
    }
  }
  document.body.dataset.ready = "1";
}
main().catch((e) => { document.getElementById("ops").textContent = "could not read the schema: " + e.message; });
