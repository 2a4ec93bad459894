// The API reference: renders /api/openapi.json as one readable page (operations by tag, their
// parameters, bodies, answers and problem types). No framework: the document is small.
"use strict";

const el = (tag, attrs = {}, ...children) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
};

function schemaText(s, doc, depth = 0) {
  if (!s) return "";
  if (s.$ref) {
    const name = s.$ref.split("/").pop();
    const target = doc.components.schemas[name];
    return depth > 1 || !target ? name : `${name} ${schemaText(target, doc, depth + 1)}`;
  }
  if (s.oneOf) return s.oneOf.map((x) => schemaText(x, doc, depth)).join(" | ");
  if (s.allOf) return s.allOf.map((x) => schemaText(x, doc, depth)).join(" & ");
  if (s.type === "array") return `[${schemaText(s.items, doc, depth)}]`;
  if (s.type === "object" && s.properties) {
    const req = new Set(s.required || []);
    const fields = Object.entries(s.properties).map(
      ([k, v]) => `${k}${req.has(k) ? "" : "?"}: ${schemaText(v, doc, depth + 1)}`);
    return `{ ${fields.join(", ")} }`;
  }
  if (s.enum) return s.enum.map((v) => JSON.stringify(v)).join(" | ");
  return [].concat(s.type || "any").join(" | ") + (s.format ? ` (${s.format})` : "");
}

async function render() {
  const root = document.getElementById("reference");
  const doc = await (await fetch("/api/openapi.json")).json();
  root.replaceChildren(el("p", {}, doc.info.description));
  const byTag = new Map();
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const tag = (op.tags && op.tags[0]) || "other";
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag).push([method.toUpperCase(), path, op]);
    }
  }
  for (const [tag, ops] of byTag) {
    root.append(el("h2", {}, tag));
    for (const [method, path, op] of ops) {
      const section = el("section", { class: "op" },
        el("h3", {}, el("code", {}, `${method} ${path}`)),
        el("p", {}, op.summary || op.description || ""));
      if (op.security && op.security.length) section.append(el("p", { class: "muted" }, "Needs a signed-in user."));
      for (const p of op.parameters || []) {
        section.append(el("p", {}, el("code", {}, `${p.in} ${p.name}`), " ", p.description || "", " ", el("span", { class: "muted" }, schemaText(p.schema, doc))));
      }
      const body = op.requestBody && op.requestBody.content && op.requestBody.content["application/json"];
      if (body) section.append(el("p", {}, "Body: ", el("code", {}, schemaText(body.schema, doc))));
      const answers = el("ul");
      for (const [status, r] of Object.entries(op.responses || {})) {
        const content = r.content && Object.values(r.content)[0];
        answers.append(el("li", {}, el("strong", {}, status), " ", r.description || "", " ",
          el("span", { class: "muted" }, content && content.schema ? schemaText(content.schema, doc) : "")));
      }
      section.append(answers);
      root.append(section);
    }
  }
}

render().catch((e) => {
  document.getElementById("reference").textContent = `Could not load the API description: ${e}`;
});
