// The dashboard's sections, each redrawn from the model as a whole (collections are capped, so a
// redraw is cheap); app.js decides when.

import { chart } from "./chart.js";
import { age, clock, el, num, paramsText, replaceChildren, short } from "./dom.js";

const MAX_SCORE_ROWS = 60;
const MAX_REQUEST_ROWS = 40;
const MAX_THREADS = 60;
const MAX_FLAGS = 100;

/** The renderer of each section, by name, over the live `model`. */
export function renderers(model) {
  function renderHeader() {
    document.getElementById("swarm").textContent = model.swarm ? `swarm ${model.swarm}` : "";
    const t = model.totals;
    document.getElementById("totals").textContent =
      `${t.scores || 0} scores · ${t.posts || 0} posts · ${t.flags || 0} flags`;
  }

  function renderLeaderboard() {
    const tasks = [...new Set([...model.leaderboards.keys(), ...model.tasks.keys()])].sort();
    const blocks = tasks.map((task) => {
      const board = model.leaderboards.get(task);
      const info = model.tasks.get(task);
      const caption = el(
        "caption",
        {},
        el("strong", { text: task }),
        info ? ` ${info.task_kind}, ${info.weak_model} → ${info.strong_model}` : "",
        board ? ` · ${board.results} results, ${board.configurations} configurations, verified with ≥ ${board.min_seeds} seeds` : "",
      );
      const head = el(
        "thead",
        {},
        el("tr", {}, ...["#", "configuration", "seeds", "dev PGR", "verified PGR", "95% interval", "agents"].map((h) => el("th", { text: h }))),
      );
      const body = el("tbody");
      (board ? board.standings : []).forEach((s, i) => {
        const ci = s.final_ci;
        const half = ci ? (ci[1] - ci[0]) / 2 : null;
        const classes = [s.verified ? "verified" : "", board.best === s.config_key ? "best" : ""].join(" ").trim();
        body.append(
          el(
            "tr",
            { className: classes, data: { task, configKey: s.config_key, verified: s.verified } },
            el("td", { text: board.best === s.config_key ? "★" : String(i + 1) }),
            el("td", { title: s.config_key }, el("span", { className: "method", text: s.method }), " ", el("span", { className: "muted", text: short(paramsText(s.params), 80) })),
            el("td", { className: "num", text: s.seeds.length }),
            el("td", { className: "num dev-pgr", text: num(s.dev_pgr) }),
            el("td", { className: "num final-pgr", text: s.verified ? `${num(s.final_pgr)} ± ${num(half)}` : "–" }),
            el("td", { className: "num", text: ci ? `[${num(ci[0])}, ${num(ci[1])}]` : "–" }),
            el("td", { className: "muted", text: short((s.agents || []).join(", "), 40) }),
          ),
        );
      });
      if (!body.children.length) body.append(el("tr", {}, el("td", { colspan: 7, className: "empty", text: "no standings yet" })));
      return el("table", { className: "board", data: { task } }, caption, head, body);
    });
    replaceChildren(document.getElementById("leaderboard"), blocks, "No leaderboard yet.");
  }

  function renderCharts() {
    const tasks = [...model.scores.keys()].sort();
    const charts = tasks.map((task) => chart(task, [...model.scores.get(task).values()], model.leaderboards.get(task)));
    replaceChildren(document.getElementById("charts"), charts, "No scores yet.");
  }


  function renderScores() {
    const all = [];
    for (const points of model.scores.values()) all.push(...points.values());
    all.sort((a, b) => b.ts - a.ts);
    const rows = all.slice(0, MAX_SCORE_ROWS).map((s) =>
      el(
        "tr",
        { className: `score ${s.status}`, data: { scoreId: s.id, resultId: s.result_id || "", task: s.task } },
        el("td", { text: clock(s.ts) }),
        el("td", { text: s.task }),
        el("td", { title: s.config_key || "" }, el("span", { className: "method", text: s.method }), " ", el("span", { className: "muted", text: short(paramsText(s.params), 50) })),
        el("td", { className: "num", text: s.seed }),
        el("td", { text: s.status }),
        el("td", { className: "num pgr", text: num(s.pgr) }),
        el("td", { className: "num", text: num(s.accuracy) }),
        el("td", { text: s.agent || "–" }),
        el("td", { text: s.worker || "–" }),
        el("td", { className: "muted wrap", text: [s.flags.join(", "), s.reason || "", s.answer === "withheld" ? "budget spent" : ""].filter(Boolean).join(" · ") }),
      ),
    );
    replaceChildren(document.getElementById("scores-body"), rows.length ? rows : [el("tr", {}, el("td", { colspan: 10, className: "empty", text: "No scores yet." }))], "");
  }

  function renderWorkers() {
    const names = new Set(model.workers.keys());
    for (const p of model.presence.values()) if (p.role === "worker") names.add(p.name);
    const rows = [...names].sort().map((name) => {
      const w = model.workers.get(name);
      const p = model.presence.get(name);
      const total = w && w.total_steps;
      const bar = el("progress", { max: total || 1, value: total ? Math.min(w.step, total) : w && w.status === "idle" ? 1 : 0 });
      return el(
        "tr",
        { data: { worker: name, status: w ? w.status : "idle" } },
        el("td", { text: name }),
        el("td", { text: p ? p.state : "absent" }),
        el("td", { className: "mono", title: (w && w.request_id) || "", text: w ? `${short(w.request_id || "", 12)} ${w.task || ""} ${w.method || ""}` : "–" }),
        el("td", { text: w ? w.stage || w.status : "–" }),
        el("td", {}, bar, w && total ? ` ${w.step}/${total}` : ""),
        el("td", { className: "num", text: w ? num(w.loss, 4) : "–" }),
        el("td", { className: "num", text: w && w.eta_s !== null && w.eta_s !== undefined ? `${w.eta_s.toFixed(0)}s` : "–" }),
      );
    });
    replaceChildren(document.getElementById("workers-body"), rows.length ? rows : [el("tr", {}, el("td", { colspan: 7, className: "empty", text: "No workers." }))], "");
  }

  function renderRequests() {
    const q = model.queue;
    document.getElementById("queue-stats").textContent = q.known
      ? `${q.pending} queued · ${q.in_flight} running · ${q.waiting} idle worker pulls · ${q.redelivered} redelivered`
      : "queue counts not read yet";
    const open = (r) => r.status === "queued" || r.status === "running";
    const all = [...model.requests.values()];
    const shown = all.filter(open).sort((a, b) => a.ts - b.ts).concat(all.filter((r) => !open(r)).sort((a, b) => b.ts - a.ts));
    const rows = shown.slice(0, MAX_REQUEST_ROWS).map((r) =>
      el(
        "tr",
        { className: `request ${r.status}`, data: { requestId: r.id, status: r.status } },
        el("td", { className: "mono", title: r.id, text: short(r.id, 12) }),
        el("td", { text: r.task }),
        el("td", { title: paramsText(r.params) }, r.method, r.custom_code ? el("span", { className: "muted", text: " (code)" }) : null),
        el("td", { className: "num", text: r.seed }),
        el("td", { text: r.agent || "–" }),
        el("td", { title: r.error || "", text: r.status }),
        el("td", { text: r.worker || "–" }),
        el("td", { className: "num", text: num(r.pgr) }),
      ),
    );
    replaceChildren(document.getElementById("requests-body"), rows.length ? rows : [el("tr", {}, el("td", { colspan: 8, className: "empty", text: "No requests." }))], "");
  }

  function spentText(b) {
    if (!b || !b.usage) return "–";
    const u = b.usage;
    return `${((u.input_tokens + u.output_tokens) / 1000).toFixed(1)}k tokens · $${u.usd.toFixed(2)} · ${u.requests} req`;
  }

  function levelsNode(b) {
    const levels = Object.entries((b && b.levels) || {});
    if (!levels.length) return "–";
    const span = el("span");
    for (const [resource, l] of levels) {
      span.append(el("span", { className: `level ${l.level}`, title: `${l.used} of ${l.limit}`, text: `${resource}: ${l.level}` }), " ");
    }
    return span;
  }

  function renderPresence() {
    const people = [...model.presence.values()].sort((a, b) => (a.role + a.name).localeCompare(b.role + b.name));
    const rows = people.map((p) => {
      const b = model.budgets.get(p.name);
      return el(
        "tr",
        { className: `presence ${p.state}`, data: { name: p.name, role: p.role } },
        el("td", { text: p.role }),
        el("td", { text: p.name }),
        el("td", { text: p.state }),
        el("td", { text: age(p.last_seen) }),
        el("td", { className: "muted", text: `${p.host}:${p.pid}` }),
        el("td", { className: "num", text: b && b.dev_left !== null ? b.dev_left : "–" }),
        el("td", { text: spentText(b) }),
        el("td", {}, levelsNode(b)),
      );
    });
    replaceChildren(document.getElementById("presence-body"), rows.length ? rows : [el("tr", {}, el("td", { colspan: 8, className: "empty", text: "Nobody is present." }))], "");
    const budgets = [...model.budgets.values()].sort((a, b) => a.target.localeCompare(b.target));
    const brows = budgets.map((b) =>
      el(
        "tr",
        { data: { target: b.target } },
        el("td", { text: b.target }),
        el("td", { text: b.scope }),
        el("td", { className: "num", text: b.dev_left !== null ? b.dev_left : "–" }),
        el("td", { text: spentText(b) }),
        el("td", {}, levelsNode(b)),
      ),
    );
    replaceChildren(document.getElementById("budgets-body"), brows.length ? brows : [el("tr", {}, el("td", { colspan: 5, className: "empty", text: "No budget events." }))], "");
  }

  function renderFlags() {
    const flags = [...model.flags.values()].sort((a, b) => b.ts - a.ts);
    const items = flags.slice(0, MAX_FLAGS).map((f) =>
      el(
        "li",
        { className: `flag ${f.severity}`, data: { flagId: f.id, detector: f.detector } },
        el("span", { className: `badge ${f.severity}`, text: f.severity }),
        " ",
        el("strong", { text: f.detector }),
        " ",
        el("span", { text: f.summary }),
        f.suspect ? el("span", { className: "muted", text: ` · suspect ${f.suspect}` }) : null,
        el("span", { className: "muted", text: ` · ${clock(f.ts)}` }),
        el("details", {}, el("summary", { text: "evidence" }), el("pre", { text: f.evidence })),
      ),
    );
    if (flags.length > MAX_FLAGS) items.push(el("li", { className: "muted", text: `${flags.length - MAX_FLAGS} older flags not shown` }));
    replaceChildren(document.getElementById("flags"), items, "No flags.", "li");
  }

  function postNode(p, children) {
    const head = el(
      "div",
      { className: "post-head" },
      p.title ? el("strong", { className: "post-title", text: p.title }) : null,
      el("span", { className: "muted", text: ` ${p.sender} · ${clock(p.ts)}` }),
      ...p.tags.map((tag) => el("span", { className: "tag", text: tag })),
    );
    const body = el("div", { className: "post-body", text: p.body + (p.truncated ? " [cut]" : "") });
    const replies = el("div", { className: "replies" }, ...children);
    return el("article", { className: "post", data: { postId: p.id, thread: p.thread } }, head, body, replies);
  }

  function renderForum() {
    const threads = new Map();
    for (const p of model.posts.values()) {
      if (!threads.has(p.thread)) threads.set(p.thread, []);
      threads.get(p.thread).push(p);
    }
    const latest = (posts) => Math.max(...posts.map((p) => p.ts));
    const ordered = [...threads.entries()].sort((a, b) => latest(b[1]) - latest(a[1])).slice(0, MAX_THREADS);
    const blocks = ordered.map(([thread, posts]) => {
      posts.sort((a, b) => a.ts - b.ts);
      const ids = new Set(posts.map((p) => p.id));
      const kids = new Map();
      const roots = [];
      for (const p of posts) {
        const parent = p.reply_to && ids.has(p.reply_to) && p.reply_to !== p.id ? p.reply_to : null;
        if (parent) {
          if (!kids.has(parent)) kids.set(parent, []);
          kids.get(parent).push(p);
        } else roots.push(p);
      }
      const seen = new Set();
      const build = (p, depth) => {
        seen.add(p.id);
        const children = depth < 12 ? (kids.get(p.id) || []).filter((c) => !seen.has(c.id)).map((c) => build(c, depth + 1)) : [];
        return postNode(p, children);
      };
      return el("section", { className: "thread", data: { thread } }, ...roots.map((p) => build(p, 0)));
    });
    replaceChildren(document.getElementById("forum"), blocks, "No posts yet.");
  }

  return {
    header: renderHeader,
    leaderboard: renderLeaderboard,
    charts: renderCharts,
    scores: renderScores,
    workers: renderWorkers,
    requests: renderRequests,
    presence: renderPresence,
    flags: renderFlags,
    forum: renderForum,
  };
}
