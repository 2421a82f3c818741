// The aar dashboard: one EventSource on /events, a model updated by its deltas, and a renderer per
// section (render.js). Everything written by agents (posts, titles, tags, names) reaches the page
// through textContent or attribute values, never as HTML.

import { renderers as sectionRenderers } from "./render.js";

const model = {
  swarm: "",
  limits: {},
  totals: {},
  tasks: new Map(),
  leaderboards: new Map(),
  scores: new Map(), // task -> Map(score id -> row), oldest first
  posts: new Map(),
  flags: new Map(),
  presence: new Map(),
  budgets: new Map(),
  workers: new Map(),
  requests: new Map(),
  queue: {},
};
const stats = { snapshots: 0, deltas: 0, renders: 0, lastEventAt: 0 };
window.aarDashboard = { model, stats };

// -- the model ------------------------------------------------------------------------------

function capMap(map, cap) {
  while (cap && map.size > cap) map.delete(map.keys().next().value);
}

function upsert(map, key, row, cap) {
  map.delete(key);
  map.set(key, row);
  capMap(map, cap);
}

function loadSnapshot(snap) {
  model.swarm = snap.swarm;
  model.limits = snap.limits || {};
  model.totals = snap.totals || {};
  model.queue = snap.queue || {};
  const byKey = (rows, key) => new Map((rows || []).map((r) => [r[key], r]));
  model.tasks = byKey(snap.tasks, "task");
  model.leaderboards = byKey(snap.leaderboards, "task");
  model.scores = new Map(Object.entries(snap.scores || {}).map(([task, rows]) => [task, byKey(rows, "id")]));
  model.posts = byKey(snap.posts, "id");
  model.flags = byKey(snap.flags, "id");
  model.presence = byKey(snap.presence, "name");
  model.budgets = byKey(snap.budgets, "target");
  model.workers = byKey(snap.workers, "worker");
  model.requests = byKey(snap.requests, "id");
  stats.snapshots += 1;
  mark(...Object.keys(renderers));
}

function applyDelta({ t, d }) {
  const L = model.limits;
  switch (t) {
    case "score": {
      let points = model.scores.get(d.task);
      if (!points) model.scores.set(d.task, (points = new Map()));
      if (!points.has(d.id)) model.totals.scores = (model.totals.scores || 0) + 1;
      upsert(points, d.id, d, L.scores_per_task);
      mark("scores", "charts", "header");
      break;
    }
    case "leaderboard":
      model.leaderboards.set(d.task, d);
      mark("leaderboard", "charts");
      break;
    case "task":
      model.tasks.set(d.task, d);
      mark("leaderboard");
      break;
    case "post":
      if (!model.posts.has(d.id)) model.totals.posts = (model.totals.posts || 0) + 1;
      upsert(model.posts, d.id, d, L.posts);
      mark("forum", "header");
      break;
    case "flag":
      if (!model.flags.has(d.id)) model.totals.flags = (model.totals.flags || 0) + 1;
      upsert(model.flags, d.id, d, L.flags);
      mark("flags", "header");
      break;
    case "presence":
      upsert(model.presence, d.name, d, L.presence);
      mark("presence", "workers");
      break;
    case "presence_gone":
      model.presence.delete(d.name);
      mark("presence", "workers");
      break;
    case "budget":
      upsert(model.budgets, d.target, d, L.budgets);
      mark("presence");
      break;
    case "worker":
      upsert(model.workers, d.worker, d, L.workers);
      mark("workers");
      break;
    case "request":
      upsert(model.requests, d.id, d, L.requests);
      mark("requests");
      break;
    case "queue":
      model.queue = d;
      mark("requests");
      break;
    default:
      break; // a newer server's delta: ignored until the page is reloaded
  }
}

// -- rendering, batched: many deltas in one tick redraw each section once --------------------

const dirty = new Set();
let scheduled = false;

function mark(...sections) {
  for (const s of sections) dirty.add(s);
  if (!scheduled) {
    scheduled = true;
    setTimeout(flush, 0);
  }
}

function flush() {
  scheduled = false;
  const sections = [...dirty];
  dirty.clear();
  for (const s of sections) {
    try {
      renderers[s]();
    } catch (err) {
      console.error(`rendering ${s} failed`, err);
    }
  }
  stats.renders += 1;
}

const renderers = sectionRenderers(model);

// -- the event stream -------------------------------------------------------------------------

function setConnection(state) {
  document.body.dataset.connection = state;
  document.getElementById("connection").textContent = state;
}

const source = new EventSource("events");
source.addEventListener("open", () => setConnection("live"));
source.addEventListener("error", () => setConnection(source.readyState === EventSource.CLOSED ? "closed" : "reconnecting"));
source.addEventListener("snapshot", (event) => {
  stats.lastEventAt = Date.now();
  loadSnapshot(JSON.parse(event.data));
});
source.addEventListener("delta", (event) => {
  stats.lastEventAt = Date.now();
  for (const delta of JSON.parse(event.data)) {
    applyDelta(delta);
    stats.deltas += 1;
  }
});
// Ages ("12s ago") move on their own; redraw them now and then.
setInterval(() => mark("presence"), 5000);
