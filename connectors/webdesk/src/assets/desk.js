// The web desk: the queue and one conversation, refreshed when the server says something
// changed. Every text is put in with textContent, never as HTML.
"use strict";
(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const $ = (id) => document.getElementById(id);
  let threads = [];
  let openId = null;
  let openThread = null;

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function waited(ms) {
    const minutes = Math.max(0, Math.round((Date.now() - ms) / 60000));
    if (minutes < 1) return "just now";
    if (minutes < 60) return minutes + " min";
    return Math.floor(minutes / 60) + " h " + (minutes % 60) + " min";
  }

  async function getJson(path) {
    const response = await fetch(path, { credentials: "same-origin" });
    if (response.status === 401) { location.reload(); throw new Error("signed out"); }
    if (!response.ok) throw new Error((await response.json()).error || response.statusText);
    return response.json();
  }

  function showProblem(text) {
    const problem = $("problem");
    problem.textContent = text || "";
    problem.hidden = !text;
  }

  async function loadQueue() {
    const data = await getJson("/desk/api/queue");
    threads = data.threads;
    const team = $("team");
    const chosen = team.value;
    const teams = [...new Set(threads.map((t) => t.channel))].sort();
    team.replaceChildren(el("option", "", "All queues"));
    team.firstChild.value = "";
    for (const name of teams) {
      const option = el("option", "", name);
      option.value = name;
      team.appendChild(option);
    }
    team.value = teams.includes(chosen) ? chosen : "";
    renderQueue();
  }

  function renderQueue() {
    const team = $("team").value;
    const shown = threads.filter((t) => !team || t.channel === team);
    const list = $("queue");
    list.replaceChildren();
    for (const t of shown) {
      const item = el("li", t.status === "human" ? "human" : "");
      item.tabIndex = 0;
      item.dataset.id = t.id;
      item.setAttribute("role", "button");
      if (t.id === openId) item.setAttribute("aria-current", "true");
      item.appendChild(el("strong", "", t.customer));
      item.appendChild(el("div", "meta",
        `${t.customer_channel} · ${t.channel} · waiting ${waited(t.opened_ms)}` +
        (t.claimed_by ? ` · claimed by ${t.claimed_by}` : " · unclaimed")));
      item.appendChild(el("div", "", t.summary));
      item.addEventListener("click", () => open(t.id));
      item.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); open(t.id); } });
      list.appendChild(item);
    }
    $("count").textContent = `(${shown.length})`;
    $("empty").hidden = shown.length > 0;
  }

  function fact(list, name, value) {
    if (value === null || value === undefined || value === "") return;
    list.appendChild(el("dt", "", name));
    const dd = el("dd");
    if (typeof value === "object") dd.appendChild(value); else dd.textContent = value;
    list.appendChild(dd);
  }

  function fileLinks(files) {
    const span = el("span");
    for (const file of files || []) {
      if (file.url) {
        const a = el("a", "", file.name);
        a.href = file.url; a.rel = "noopener noreferrer"; a.target = "_blank";
        span.append(" ", a);
      } else {
        span.append(" " + file.name);
      }
    }
    return span;
  }

  async function open(id) {
    openId = id;
    document.body.classList.add("reading");
    const data = await getJson("/desk/api/threads/" + encodeURIComponent(id));
    openThread = data.thread;
    const b = data.thread.briefing;
    $("conversation").hidden = false;
    $("conv-title").textContent = `${b.customer_name} — ${b.status}${b.claimed_by ? " (claimed by " + b.claimed_by + ")" : ""}`;
    const facts = $("facts");
    facts.replaceChildren();
    fact(facts, "Customer", b.customer_name + (b.verified ? " (verified)" : "") + (b.email ? " · " + b.email : ""));
    fact(facts, "Channel", b.channel);
    fact(facts, "Queue", data.thread.channel);
    fact(facts, "Tier", b.tier);
    if (b.page_url) {
      const a = el("a", "", b.page_title || b.page_url);
      a.href = b.page_url; a.rel = "noopener noreferrer"; a.target = "_blank";
      fact(facts, "Page", a);
    }
    for (const [name, value] of b.attributes || []) fact(facts, name, value);
    fact(facts, "Reason", b.reason_detail || b.reason);
    fact(facts, "AI confidence", Math.round((b.confidence || 0) * 100) + "%");
    fact(facts, "Waiting", waited(data.thread.opened_ms));
    fact(facts, "Summary", b.summary_source);
    fact(facts, "Knowledge base", (b.citations || []).map((c) => `${c.id}: ${c.title}`).join(" · "));
    if (b.previous_case) {
      // The customer's earlier case; its thread is one of this desk's when the ids match.
      const a = el("a", "", `${b.previous_case.case_id}: its thread`);
      a.href = "#thread=" + encodeURIComponent(b.previous_case.thread.ts);
      fact(facts, "Previous case", a);
    }
    $("summary").textContent = b.summary;
    const transcript = $("transcript");
    transcript.replaceChildren();
    for (const line of b.transcript) {
      const item = el("li", line.role);
      item.appendChild(el("span", "author", line.author));
      item.append(line.text);
      if (line.files && line.files.length) item.appendChild(fileLinks(line.files));
      transcript.appendChild(item);
    }
    const briefed = b.transcript.length ? b.transcript[b.transcript.length - 1].at_ms : 0;
    // With another desk beside this one, the briefing is refreshed after every agent reply,
    // so replies sent from here are in its transcript too.
    const replied = new Set(b.transcript.filter((l) => l.role === "agent").map((l) => l.text));
    for (const post of data.posts) {
      // Customer messages the briefing already holds are not shown twice.
      if (post.kind === "customer" && post.at_ms <= briefed) continue;
      if (post.kind === "agent" && replied.has(post.text)) continue;
      const item = el("li", post.kind);
      const label = post.kind === "note" ? `${post.author} (internal note)` : post.author;
      if (label) item.appendChild(el("span", "author", label));
      if (post.url) {
        const a = el("a", "", post.text);
        a.href = post.url; a.rel = "noopener noreferrer"; a.target = "_blank";
        item.appendChild(a);
      } else {
        item.append(post.text);
      }
      transcript.appendChild(item);
    }
    $("suggested").hidden = !b.suggested_reply;
    $("suggested-text").textContent = b.suggested_reply || "";
    renderQueue();
  }

  async function act(kind, text) {
    if (!openId) return;
    showProblem("");
    const actionId = crypto.getRandomValues(new Uint32Array(4)).join("-").slice(0, 60);
    const response = await fetch(`/desk/api/threads/${encodeURIComponent(openId)}/actions`, {
      method: "POST",
      credentials: "same-origin",
      headers: { "content-type": "application/json", "x-csrf-token": csrf },
      body: JSON.stringify({ kind, text: text || "", action_id: actionId }),
    });
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      showProblem(body.error || "That did not work; try again.");
      return false;
    }
    // Taken: the caller clears the reply box now, before the view redraws with the reply.
    refresh();
    return true;
  }

  async function refresh() {
    try {
      await loadQueue();
      if (openId) await open(openId);
    } catch (error) {
      showProblem(String(error.message || error));
    }
  }

  function connect(delay) {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const socket = new WebSocket(scheme + location.host + "/desk/ws");
    socket.onopen = () => { $("live").textContent = "live"; delay = 500; refresh(); };
    socket.onmessage = (message) => {
      const frame = JSON.parse(message.data);
      if (frame.type === "resync" || frame.type === "changed") refresh();
    };
    socket.onclose = () => {
      $("live").textContent = "reconnecting…";
      setTimeout(() => connect(Math.min(delay * 2, 10000)), delay);
    };
  }

  $("team").addEventListener("change", renderQueue);
  $("back").addEventListener("click", () => {
    document.body.classList.remove("reading");
    openId = null;
    $("conversation").hidden = true;
    renderQueue();
  });
  $("reply-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const text = $("reply").value.trim();
    if (text && await act("reply", text)) $("reply").value = "";
  });
  $("note").addEventListener("click", async () => {
    const text = $("reply").value.trim();
    if (text && await act("note", text)) $("reply").value = "";
  });
  $("use-suggested").addEventListener("click", () => {
    if (openThread && openThread.briefing.suggested_reply) act("reply", openThread.briefing.suggested_reply);
  });
  for (const button of document.querySelectorAll("[data-action]")) {
    button.addEventListener("click", () => {
      const text = button.dataset.action === "approve_knowledge" ? $("reply").value.trim() : "";
      act(button.dataset.action, text);
    });
  }
  $("logout").addEventListener("click", async () => {
    await fetch("/desk/logout", { method: "POST", credentials: "same-origin", headers: { "x-csrf-token": csrf } });
    location.href = "/desk";
  });
  setInterval(renderQueue, 30000);
  // Links from elsewhere (`switchboard replay --html`) open a thread: /desk#thread=<id>.
  const linked = new URLSearchParams(location.hash.slice(1)).get("thread");
  if (linked) openId = linked;
  // The same links inside the desk (a briefing's previous case) open their thread in place.
  window.addEventListener("hashchange", () => {
    const id = new URLSearchParams(location.hash.slice(1)).get("thread");
    if (id && id !== openId) open(id).catch(() => {});
  });
  refresh();
  connect(500);
})();
