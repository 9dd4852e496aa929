// haft's Explorer. The page's address names what it shows —
// #/MODEL/path/0/3/1?key=value&… : a model, its parameters and a path of
// choices — and the page asks the server's API (/api/…, see
// src/cli/explore.rs) for the rest. Every link is an address, so the
// browser's back button, bookmarks and counterexample links all work alike.
"use strict";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";

let registry = null; // /api/models
let generation = 0; // bumped by each navigation; older answers are dropped
let pollTimer = null;

/** An element with attributes and children (strings become text). */
function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

/** An SVG element with attributes and an optional text. */
function svg(tag, attributes = {}, text = null) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text !== null) node.textContent = text;
  return node;
}

/** GETs JSON from the API; an error answer throws its message. */
async function api(url) {
  const response = await fetch(url);
  let body;
  try {
    body = await response.json();
  } catch {
    body = { error: `${response.status} ${response.statusText}` };
  }
  if (!response.ok) throw new Error(body.error || `${response.status} ${response.statusText}`);
  return body;
}

/** The page's address: { model, path (null if none is named), query }. */
function parseAddress() {
  const hash = location.hash.replace(/^#\/?/, "");
  const at = hash.indexOf("?");
  const route = at < 0 ? hash : hash.slice(0, at);
  const query = at < 0 ? "" : hash.slice(at + 1);
  const [model, ...rest] = route.split("/");
  const path = rest[0] === "path" ? rest.slice(1).filter((s) => s !== "") : null;
  return { model: decodeURIComponent(model || ""), path, query };
}

/** The address of `path` in `model` at the parameters `query`. */
function address(model, path, query) {
  return `#/${encodeURIComponent(model)}/path/${path.join("/")}?${query}`;
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = false;
}

/** Shows what the address names. */
async function navigate() {
  const mine = ++generation;
  clearTimeout(pollTimer);
  $("error").hidden = true;
  try {
    if (!registry) {
      registry = await api("/api/models");
      $("model-select").replaceChildren(
        ...registry.models.map((m) => el("option", { value: m.name }, m.name)),
      );
    }
    const { model, path, query } = parseAddress();
    if (!model) {
      location.replace(`#/${registry.start.model}?${registry.start.query}`);
      return;
    }
    const base = `/api/model/${encodeURIComponent(model)}`;
    const info = await api(`${base}?${query}`);
    if (mine !== generation) return;
    showModel(info);
    const walk = await api(`${base}/path/${(path || []).join("/")}?${info.query}`);
    if (mine !== generation) return;
    // A model with one initial state opens at it.
    if (path === null && walk.choices.length === 1) {
      location.replace(address(info.model, [0], info.query));
      return;
    }
    showWalk(info, walk);
    poll(info, mine);
  } catch (error) {
    if (mine === generation) showError(error.message);
  }
}

/** Asks again for the check's verdicts until they are in. */
function poll(info, mine) {
  if (info.check.state === "done" || info.check.state === "failed") return;
  pollTimer = setTimeout(async () => {
    try {
      const again = await api(`/api/model/${encodeURIComponent(info.model)}?${info.query}`);
      if (mine !== generation) return;
      showProperties(again);
      poll(again, mine);
    } catch (error) {
      if (mine === generation) showError(error.message);
    }
  }, 400);
}

function showModel(info) {
  $("model-name").textContent = info.model;
  $("model-params").textContent = info.params_text;
  $("model-summary").textContent = info.summary;
  document.title = `${info.model} — haft Explorer`;
  $("model-select").value = info.model;
  showParamFields(info.model, new Map(info.params));
  showProperties(info);
}

/** The form's fields for `model`'s parameters, holding `values`. */
function showParamFields(model, values) {
  const entry = registry.models.find((m) => m.name === model);
  const fields = entry.params.map((param) => {
    const value = values.get(param.name) ?? param.default;
    let input;
    if (param.kind === "int") {
      input = el("input", { type: "number", min: param.min, max: param.max, value });
    } else {
      input = el("select", {}, ...param.choices.map((c) => el("option", { value: c }, c)));
      input.value = value;
    }
    input.name = param.name;
    return el("label", { title: param.help }, `${param.name} `, input);
  });
  $("param-fields").replaceChildren(...fields);
}

const VERDICTS = {
  holds: "✓ holds",
  violated: "✗ violated",
  "not-witnessed": "✗ never witnessed",
  unknown: "? unknown",
  checking: "… checking",
};

function showProperties(info) {
  const check = info.check;
  const status = $("check-status");
  status.dataset.state = check.state;
  status.textContent = {
    queued: "— waiting for another model's check",
    running: `— checking: ${check.unique_states ?? 0} states, ${Math.round(check.seconds ?? 0)} s`,
    failed: `— the check failed: ${check.error}`,
    done: `— ${check.unique_states} states, depth ${check.max_depth}, ${check.seconds?.toFixed(2)} s${
      check.complete ? "" : ` (incomplete: ${check.stopped})`
    }`,
  }[check.state];
  const rows = info.properties.map((p) => {
    const links = el("td");
    if (p.path) {
      links.append(
        el("a", { class: "counterexample", href: address(info.model, p.path, info.query) },
          `${p.steps} steps`),
      );
      if (p.trap_path) {
        links.append(" ",
          el("a", { class: "trap", href: address(info.model, p.trap_path, info.query) },
            "with its trap"));
      }
    } else if (p.steps != null) {
      links.append(`${p.steps} steps (not replayable here)`);
    }
    const verdict = el("td", {}, VERDICTS[p.status] ?? p.status);
    if (p.note) verdict.append(el("div", { class: "note" }, p.note));
    return el("tr", { class: "property", "data-name": p.name, "data-status": p.status },
      el("td", {}, p.name), el("td", {}, p.kind), verdict, links);
  });
  $("properties").tBodies[0].replaceChildren(...rows);
}

/** What a check's verdict at one state reads. */
function judgedText(judged, atStart) {
  const [yes, no] = {
    always: ["holds here", "violated here"],
    sometimes: ["witnessed here", "not witnessed here"],
    eventually: ["reached here", "not reached here"],
    liveness: ["a goal state", "not a goal state"],
    transition: atStart
      ? ["accepts the initial state", "refuses the initial state"]
      : ["accepts the last step", "refuses the last step"],
  }[judged.kind] ?? ["true", "false"];
  return judged.holds ? yes : no;
}

function showWalk(info, walk) {
  const { path, steps } = walk;
  const at = (prefix) => address(info.model, prefix, info.query);
  $("path-length").textContent = steps.length ? `— ${steps.length - 1} steps` : "— choose an initial state";
  $("path").replaceChildren(
    ...steps.map((step, i) =>
      el("li", { class: i === steps.length - 1 ? "current" : "" },
        el("a", { href: at(path.slice(0, i + 1)) }, step.action)),
    ),
  );
  const back = $("back");
  back.disabled = path.length === 0;
  back.onclick = () => { location.hash = at(path.slice(0, -1)); };
  $("choices").replaceChildren(
    ...(walk.choices.length
      ? walk.choices.map((choice, i) =>
          el("li", {}, el("a", { class: "choice", href: at([...path, i]) }, choice)))
      : [el("li", {}, "no action is enabled here")]),
  );
  $("here").tBodies[0].replaceChildren(
    ...walk.here.map((judged) => {
      const text = el("td", {}, judgedText(judged, steps.length === 1));
      if (judged.note) text.append(el("div", { class: "note" }, judged.note));
      return el("tr", { "data-name": judged.name, "data-kind": judged.kind, "data-holds": String(judged.holds) },
        el("td", {}, judged.name), el("td", {}, judged.kind), text);
    }),
  );
  const last = steps[steps.length - 1];
  const changes = last?.changes ?? [];
  $("changes").replaceChildren(
    ...(steps.length === 1 ? [el("li", {}, "(the initial state)")] : []),
    ...changes.map((c) => {
      const change = c.before == null ? `+ ${c.after}`
        : c.after == null ? `− ${c.before}` : `${c.before} → ${c.after}`;
      return el("li", {}, `${c.path}: ${change}`);
    }),
  );
  $("state").textContent = last ? JSON.stringify(last.state, null, 2) : "";
  drawSequence(walk.sequence, (step) => at(path.slice(0, step + 1)));
  $("mermaid").textContent = walk.mermaid;
}

/** The path's sequence diagram: a column per actor, a row per step, each row
 * a link to the path up to its step (`link(step)`). */
function drawSequence({ actors, events }, link) {
  const box = $("sequence");
  if (events.length === 0) {
    box.replaceChildren(el("p", {}, "No step yet."));
    return;
  }
  const texts = events.map((e) => (e.kind === "message" ? e.label : e.text));
  const longest = Math.max(...actors.map((a) => a.length), ...texts.map((t) => t.length));
  const gap = Math.min(420, Math.max(160, longest * 6.5 + 24));
  const margin = 40;
  const column = new Map(actors.map((a, i) => [a, margin + gap / 2 + i * gap]));
  const rowHeight = 30;
  const top = 60;
  const height = top + events.length * rowHeight + 10;
  const width = margin + actors.length * gap + 10;
  const root = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img" });
  const defs = svg("defs");
  const marker = svg("marker", {
    id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5,
    markerWidth: 8, markerHeight: 8, markerUnits: "userSpaceOnUse", orient: "auto-start-reverse",
  });
  marker.append(svg("path", { d: "M0,0 L10,5 L0,10 z" }));
  defs.append(marker);
  root.append(defs);
  for (const actor of actors) {
    const x = column.get(actor);
    root.append(svg("line", { class: "lifeline", x1: x, y1: 40, x2: x, y2: height }));
    const head = svg("g", { class: "actor" });
    head.append(svg("rect", { x: x - gap / 2 + 10, y: 8, width: gap - 20, height: 26, rx: 4 }));
    head.append(svg("text", { x, y: 26, "text-anchor": "middle" }, actor));
    root.append(head);
  }
  const fit = (text, room) => {
    const chars = Math.floor(room / 6.5);
    return text.length <= chars ? text : `${text.slice(0, chars - 1)}…`;
  };
  events.forEach((event, i) => {
    const y = top + i * rowHeight + 12;
    const latest = i === events.length - 1 ? " latest" : "";
    const g = svg("g", { class: event.kind + latest, "data-step": event.step });
    g.append(svg("title", {}, `${event.step}. ${texts[i]}`));
    g.append(svg("text", { class: "step", x: 4, y: y + 4 }, `${event.step}.`));
    if (event.kind === "message") {
      const [x1, x2] = [column.get(event.from), column.get(event.to)];
      if (x1 === x2) {
        g.append(svg("path", {
          d: `M${x1},${y - 6} h30 v12 h-30`, "marker-end": "url(#arrow)",
        }));
        g.append(svg("text", { class: "label", x: x1 + 36, y: y + 4 }, fit(event.label, gap - 50)));
      } else {
        g.append(svg("line", { x1, y1: y, x2, y2: y, "marker-end": "url(#arrow)" }));
        g.append(svg("text", { class: "label", x: (x1 + x2) / 2, y: y - 5, "text-anchor": "middle" },
          fit(event.label, Math.abs(x2 - x1) - 10)));
      }
    } else {
      const x = column.get(event.over);
      g.append(svg("rect", { x: x - gap / 2 + 6, y: y - 10, width: gap - 12, height: 20, rx: 3 }));
      g.append(svg("text", { x, y: y + 4, "text-anchor": "middle" }, fit(event.text, gap - 20)));
    }
    const row = svg("a", { href: link(event.step) });
    row.append(g);
    root.append(row);
  });
  box.replaceChildren(root);
}

$("model-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const model = $("model-select").value;
  const query = [...$("param-fields").querySelectorAll("input, select")]
    .map((field) => `${encodeURIComponent(field.name)}=${encodeURIComponent(field.value)}`)
    .join("&");
  location.hash = `#/${encodeURIComponent(model)}?${query}`;
});
$("model-select").addEventListener("change", () => {
  showParamFields($("model-select").value, new Map());
});
window.addEventListener("hashchange", navigate);
navigate();
