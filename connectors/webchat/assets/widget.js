/*
 * Switchboard web chat widget: one file, no build step, no dependencies.
 *
 * Embed with one tag (attributes are optional):
 *   <script src="https://support.example.com/webchat/widget.js"
 *           data-attributes='{"plan":"pro"}'
 *           data-user-claims="<base64url JSON: user_id, exp, tier, email... made by your server>"
 *           data-user-sig="<hex HMAC-SHA256(secret, data-user-claims) made by your server>"
 *           data-title="Support" data-assistant-name="Acme AI" data-accent="#4f46e5"></script>
 *
 * It keeps a random session token in localStorage (the visitor's chat survives reloads),
 * queues every message in localStorage until the gateway acks it (resends reuse the same
 * client_id, which the gateway dedupes), reconnects with exponential backoff passing the
 * last seen message id, and falls back to HTTP polling when WebSocket is blocked.
 * Everything renders inside a shadow root so the host page's CSS and ours never clash.
 */
(function () {
  "use strict";

  // The gateway fills in its configured title, greeting and limits when serving this file.
  var SERVER = Object.assign(
    { title: "Chat with us", greeting: "", assistant_name: "AI assistant", max_message_bytes: 4000 },
    /*SB_SERVER_CONFIG*/null
  );

  var script = document.currentScript;
  if (!script || window.__switchboardWebchat) return;
  window.__switchboardWebchat = true;

  var data = script.dataset;
  var gateway = (data.gateway || new URL(script.src, location.href).origin).replace(/\/+$/, "");
  var settings = {
    title: data.title || SERVER.title,
    greeting: data.greeting || SERVER.greeting,
    assistantName: data.assistantName || SERVER.assistant_name,
    accent: /^#[0-9a-fA-F]{3,8}$/.test(data.accent || "") ? data.accent : "#4f46e5",
    maxBytes: SERVER.max_message_bytes
  };
  var attributes = {};
  try {
    var parsed = JSON.parse(data.attributes || "{}");
    if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) attributes = parsed;
  } catch (e) {
    console.warn("switchboard: data-attributes is not valid JSON; ignored");
  }
  // Signed claims (user id, expiry, tier...) from the site's server; the older form signs
  // only `data-user-id`. The widget reads the id out of the claims just to keep each user's
  // chat apart in this browser's storage; the gateway checks the signature.
  var userClaims = data.userClaims || null;
  var userSig = data.userSig || null;
  var userId = userClaims ? claimedUserId(userClaims) : (data.userId || null);
  function claimedUserId(blob) {
    try {
      var b64 = blob.replace(/=+$/, "").replace(/-/g, "+").replace(/_/g, "/");
      var binary = atob(b64 + "===".slice((b64.length + 3) % 4));
      var bytes = new Uint8Array(binary.length);
      for (var i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
      var claims = JSON.parse(new TextDecoder().decode(bytes));
      return claims && typeof claims.user_id === "string" ? claims.user_id : "claims";
    } catch (e) {
      console.warn("switchboard: data-user-claims is not base64url JSON");
      return "claims";
    }
  }
  // Who this visitor says they are, as the gateway's endpoints take it.
  function identityFields() {
    if (userClaims) return { user_claims: userClaims, user_sig: userSig || "" };
    if (userId) return { user_id: userId, user_sig: userSig || "" };
    return {};
  }
  function identityQuery() {
    var fields = identityFields();
    return Object.keys(fields).map(function (key) {
      return "&" + key + "=" + encodeURIComponent(fields[key]);
    }).join("");
  }

  // ---- storage: localStorage when allowed, memory otherwise (private modes, blocked storage)
  var memory = {};
  var prefix = "sb:" + gateway + ":";
  var scope = userId ? "u:" + userId : "anon";
  function load(key, fallback) {
    try {
      var raw = window.localStorage.getItem(prefix + key);
      return raw === null ? fallback : JSON.parse(raw);
    } catch (e) {
      return key in memory ? memory[key] : fallback;
    }
  }
  function save(key, value) {
    memory[key] = value;
    try { window.localStorage.setItem(prefix + key, JSON.stringify(value)); } catch (e) { /* memory only */ }
  }

  function randomToken(bytes) {
    var buf = new Uint8Array(bytes);
    window.crypto.getRandomValues(buf);
    var alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    var out = "";
    for (var i = 0; i < buf.length; i++) out += alphabet[buf[i] & 63];
    return out;
  }
  function newClientId() {
    if (window.crypto.randomUUID) return window.crypto.randomUUID();
    var hex = Array.prototype.map.call(window.crypto.getRandomValues(new Uint8Array(16)), function (b) {
      return (b + 256).toString(16).slice(1);
    }).join("");
    return hex.slice(0, 8) + "-" + hex.slice(8, 12) + "-4" + hex.slice(13, 16) + "-a" + hex.slice(17, 20) + "-" + hex.slice(20, 32);
  }

  // 32 characters of a 64-letter alphabet: 192 bits, well past the gateway's 16-character minimum.
  var session = load("session", null);
  if (typeof session !== "string" || !/^[A-Za-z0-9_-]{16,128}$/.test(session)) {
    session = randomToken(32);
    save("session", session);
  }
  var queue = load("queue:" + scope, []);
  if (!Array.isArray(queue)) queue = [];
  function saveQueue() { save("queue:" + scope, queue); }

  // ---- DOM
  var host = document.createElement("div");
  host.id = "switchboard-webchat";
  var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
  root.innerHTML =
    "<style>" + css(settings.accent) + "</style>" +
    '<button class="sb-launcher" id="sb-launcher" data-testid="sb-launcher" type="button" aria-expanded="false" aria-controls="sb-panel" aria-label="Open chat">' +
    icon("chat", "sb-icon-open") + icon("close", "sb-icon-close") +
    '<span class="sb-unread" hidden aria-hidden="true"></span></button>' +
    '<section class="sb-panel" id="sb-panel" role="dialog" aria-labelledby="sb-title" hidden>' +
    '<header class="sb-header"><div class="sb-avatar" aria-hidden="true">' + icon("spark") + "</div>" +
    '<div class="sb-heading"><h2 id="sb-title"></h2><p class="sb-subtitle"><span class="sb-dot"></span><span id="sb-status"></span></p></div>' +
    '<button class="sb-close" type="button" aria-label="Close chat">' + icon("minus") + "</button></header>" +
    '<div class="sb-banner" id="sb-banner" role="status" hidden></div>' +
    '<div class="sb-log" id="sb-log" role="log" aria-live="polite" aria-label="Conversation"></div>' +
    '<div class="sb-typing" id="sb-typing" hidden aria-hidden="true"><span></span><span></span><span></span><em></em></div>' +
    '<div class="sb-actions"><button class="sb-human" id="sb-human" data-testid="sb-human" type="button" hidden>' +
    icon("person") + "<span>Talk to a human</span></button></div>" +
    '<form class="sb-composer" id="sb-form"><label class="sb-sr" for="sb-input">Type your message</label>' +
    '<textarea id="sb-input" data-testid="sb-input" rows="1" placeholder="Ask a question…" autocomplete="off"></textarea>' +
    '<input type="file" id="sb-file" data-testid="sb-file" hidden>' +
    '<button class="sb-attach" id="sb-attach" data-testid="sb-attach" type="button" aria-label="Attach a file">\u{1F4CE}</button>' +
    '<button class="sb-send" id="sb-send" data-testid="sb-send" type="submit" aria-label="Send message">' + icon("send") + "</button></form>" +
    '<p class="sb-hint" id="sb-hint" role="alert"></p>' +
    '<p class="sb-footer">AI answers are marked · a person is one click away</p></section>';

  function $(id) { return root.getElementById ? root.getElementById(id) : root.querySelector("#" + id); }
  var launcher = $("sb-launcher");
  var panel = $("sb-panel");
  var log = $("sb-log");
  var input = $("sb-input");
  var form = $("sb-form");
  var humanButton = $("sb-human");
  var banner = $("sb-banner");
  var hint = $("sb-hint");
  var typing = $("sb-typing");
  var unreadBadge = root.querySelector(".sb-unread");
  $("sb-title").textContent = settings.title;
  typing.querySelector("em").textContent = settings.assistantName + " is typing…";

  if (settings.greeting) {
    var greeting = document.createElement("div");
    greeting.className = "sb-msg sb-msg--ai sb-greeting";
    greeting.innerHTML = '<div class="sb-meta"><span class="sb-badge">' + icon("spark") + "<span></span></span></div><div class=\"sb-bubble\"></div>";
    greeting.querySelector(".sb-badge span").textContent = settings.assistantName;
    renderMarkdown(greeting.querySelector(".sb-bubble"), settings.greeting);
    log.appendChild(greeting);
  }

  // ---- conversation state
  var seen = {};            // stored message id -> element
  var pending = {};         // client_id -> element of a message not yet acked
  var lastSeenId = null;    // newest stored id shown; `after` on reconnect
  var historyLoaded = false;
  var status = "bot";
  var aiAnswered = false;
  var humanRequested = false;
  var unread = 0;
  var typingTimer = null;
  var humanClientId = null; // the pending "Talk to a human" request, until the notice arrives
  var humanTimer = null;

  function compareIds(a, b) {
    var pa = String(a).split("-"), pb = String(b).split("-");
    for (var i = 0; i < Math.max(pa.length, pb.length); i++) {
      var x = Number(pa[i] || 0), y = Number(pb[i] || 0);
      if (isNaN(x) || isNaN(y)) return String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0;
      if (x !== y) return x < y ? -1 : 1;
    }
    return 0;
  }

  function formatTime(ms) {
    try {
      return new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    } catch (e) {
      return "";
    }
  }

  function buildMessage(author, text, atMs) {
    var kind = author && author.kind ? author.kind : "system";
    var el = document.createElement("div");
    el.className = "sb-msg sb-msg--" + kind;
    el.setAttribute("data-testid", "sb-message");
    el.setAttribute("data-author", kind);
    if (kind === "system") {
      el.innerHTML = '<div class="sb-notice">' + icon("info") + "<span></span></div>";
      el.querySelector("span").textContent = text;
      return el;
    }
    var meta = document.createElement("div");
    meta.className = "sb-meta";
    if (kind === "ai") {
      meta.innerHTML = '<span class="sb-badge">' + icon("spark") + "<span></span></span>";
      meta.querySelector(".sb-badge span").textContent = settings.assistantName;
    } else if (kind === "agent") {
      var name = author.name || "Support";
      meta.innerHTML = '<span class="sb-initial" aria-hidden="true"></span><strong></strong><span class="sb-role">Support team</span>';
      meta.querySelector(".sb-initial").textContent = name.charAt(0).toUpperCase();
      meta.querySelector("strong").textContent = name;
    } else {
      meta.innerHTML = "<span>You</span>";
    }
    if (atMs) {
      var time = document.createElement("time");
      time.textContent = formatTime(atMs);
      meta.appendChild(time);
    }
    var bubble = document.createElement("div");
    bubble.className = "sb-bubble";
    // Answers come from Markdown knowledge bases; the customer's own text is shown as typed.
    if (kind === "customer") bubble.textContent = text;
    else renderMarkdown(bubble, text);
    var state = document.createElement("div");
    state.className = "sb-state";
    el.appendChild(meta);
    el.appendChild(bubble);
    el.appendChild(state);
    return el;
  }

  // A small, safe Markdown subset: paragraphs, list items, **bold**, `code` and links.
  // Text only ever becomes text nodes; nothing from a message is parsed as HTML.
  function renderMarkdown(container, text) {
    String(text).replace(/\r\n?/g, "\n").split(/\n{2,}/).forEach(function (block) {
      var lines = block.split("\n");
      var p = document.createElement("p");
      lines.forEach(function (line, index) {
        var item = /^\s*([-*\u2022]|\d+[.)])\s+/.test(line);
        // Hard-wrapped prose joins with a space; list items keep their own line.
        if (index > 0) p.appendChild(item ? document.createElement("br") : document.createTextNode(" "));
        if (item) line = line.replace(/^\s*[-*\u2022]\s+/, "\u2022 ");
        appendInline(p, line.trim());
      });
      container.appendChild(p);
    });
  }

  function appendInline(parent, line) {
    var pattern = /(\*\*[^*]+\*\*|`[^`]+`|https?:\/\/[^\s<>()]+[^\s<>().,;:!?'"])/g;
    var last = 0, match;
    while ((match = pattern.exec(line))) {
      if (match.index > last) parent.appendChild(document.createTextNode(line.slice(last, match.index)));
      var token = match[0], node;
      if (token.indexOf("**") === 0) {
        node = document.createElement("strong");
        node.textContent = token.slice(2, -2);
      } else if (token.charAt(0) === "`") {
        node = document.createElement("code");
        node.textContent = token.slice(1, -1);
      } else {
        node = document.createElement("a");
        node.href = token;
        node.target = "_blank";
        node.rel = "noopener noreferrer";
        node.textContent = token;
      }
      parent.appendChild(node);
      last = match.index + token.length;
    }
    if (last < line.length) parent.appendChild(document.createTextNode(line.slice(last)));
  }

  // Confirmed messages go above unsent ones, so "sending…" always sits at the bottom.
  function insert(el) {
    var firstPending = log.querySelector(".sb-pending");
    log.insertBefore(el, firstPending);
    log.scrollTop = log.scrollHeight;
  }

  function showStored(message, actions) {
    if (!message || typeof message.id !== "string" || seen[message.id]) return;
    if (lastSeenId === null || compareIds(message.id, lastSeenId) > 0) lastSeenId = message.id;
    var kind = message.author && message.author.kind;
    // Our own message coming back (history or another tab): adopt the pending bubble.
    var cid = typeof message.channel_message_id === "string" ? message.channel_message_id.replace(/^wc:/, "") : null;
    if (kind === "customer" && cid && pending[cid]) {
      confirm(cid, message.id);
      return;
    }
    // Stored before its ack got through (a drop or a reload): nothing left to resend.
    if (kind === "customer" && cid) dequeue(cid);
    var el = buildMessage(message.author, message.text, message.at_ms);
    if (Array.isArray(message.files)) message.files.forEach(function (file) { el.appendChild(fileView(file)); });
    el.setAttribute("data-id", message.id);
    seen[message.id] = el;
    insert(el);
    if (kind === "ai") aiAnswered = true;
    if (kind === "system" && humanRequested && status === "bot") status = "escalated";
    if (kind === "agent") { status = "human"; humanRequested = true; }
    // The escalation notice (or an agent) answers a pending "Talk to a human".
    if (humanClientId && (kind === "system" || kind === "agent")) resetHumanButton(true);
    if (actions && actions.indexOf("talk_to_human") >= 0) aiAnswered = true;
    if (actions && actions.indexOf("rate_service") >= 0) el.appendChild(ratingButtons());
    if (kind !== "customer") {
      setTyping(false);
      if (panel.hidden) setUnread(unread + 1);
    }
    refreshChrome();
  }

  // 1-5 buttons under the satisfaction question; a press is sent as the number, which the
  // gateway stores as the rating (typing the number works the same way).
  function ratingButtons() {
    var row = document.createElement("div");
    row.className = "sb-rating";
    row.setAttribute("role", "group");
    row.setAttribute("aria-label", "Rate this conversation from 1 to 5");
    for (var n = 1; n <= 5; n++) {
      (function (score) {
        var button = document.createElement("button");
        button.type = "button";
        button.textContent = String(score);
        button.setAttribute("data-testid", "sb-rate-" + score);
        button.setAttribute("aria-label", score + " out of 5");
        button.addEventListener("click", function () {
          var buttons = row.querySelectorAll("button");
          for (var i = 0; i < buttons.length; i++) buttons[i].disabled = true;
          button.classList.add("sb-chosen");
          enqueue({ client_id: newClientId(), type: "message", text: String(score), at: Date.now() });
        });
        row.appendChild(button);
      })(n);
    }
    return row;
  }

  function showPending(item) {
    if (item.type !== "message") return;
    var el = buildMessage({ kind: "customer" }, item.text, item.at);
    el.classList.add("sb-pending");
    el.querySelector(".sb-state").textContent = "Sending…";
    pending[item.client_id] = el;
    log.appendChild(el);
    log.scrollTop = log.scrollHeight;
  }

  function confirm(clientId, messageId) {
    dequeue(clientId);
    var el = pending[clientId];
    delete pending[clientId];
    if (!el) return;
    if (seen[messageId]) { el.remove(); return; }
    el.classList.remove("sb-pending");
    el.querySelector(".sb-state").textContent = "";
    el.setAttribute("data-id", messageId);
    seen[messageId] = el;
    if (lastSeenId === null || compareIds(messageId, lastSeenId) > 0) lastSeenId = messageId;
    // Keep confirmed messages above the remaining unsent ones.
    log.insertBefore(el, log.querySelector(".sb-pending"));
  }

  function fail(clientId, text) {
    dequeue(clientId);
    var el = pending[clientId];
    delete pending[clientId];
    if (!el) return;
    el.classList.remove("sb-pending");
    el.classList.add("sb-failed");
    el.querySelector(".sb-state").textContent = "Not sent: " + text;
  }

  function dequeue(clientId) {
    queue = queue.filter(function (item) { return item.client_id !== clientId; });
    saveQueue();
    delete inFlight[clientId];
  }

  function statusLine() {
    if (!connected && !pollTimer) return "Connecting…";
    if (status === "escalated") return "Waiting for a person from our team";
    if (status === "human") return "You are chatting with our team";
    if (status === "resolved") return "Conversation resolved · ask anything";
    return settings.assistantName + " replies instantly";
  }

  function refreshChrome() {
    humanRequested = humanRequested || status === "escalated" || status === "human";
    humanButton.hidden = !aiAnswered || (humanRequested && !humanButton.classList.contains("sb-busy"));
    $("sb-status").textContent = statusLine();
    root.querySelector(".sb-dot").classList.toggle("sb-dot--on", connected || !!pollTimer);
  }

  function setTyping(on) {
    clearTimeout(typingTimer);
    typing.hidden = !on;
    if (on) {
      typingTimer = setTimeout(function () { typing.hidden = true; }, 25000);
      log.scrollTop = log.scrollHeight;
    }
  }

  function setUnread(count) {
    unread = count;
    unreadBadge.hidden = count === 0;
    unreadBadge.textContent = count > 9 ? "9+" : String(count);
    launcher.setAttribute("aria-label", count ? "Open chat (" + count + " new)" : "Open chat");
  }

  function setBanner(text) {
    banner.hidden = !text;
    banner.textContent = text || "";
  }

  // ---- open / close
  function open(focus) {
    panel.hidden = false;
    launcher.setAttribute("aria-expanded", "true");
    launcher.classList.add("sb-open");
    launcher.setAttribute("aria-label", "Close chat");
    setUnread(0);
    save("open", true);
    log.scrollTop = log.scrollHeight;
    if (focus) input.focus();
  }
  function close() {
    panel.hidden = true;
    launcher.setAttribute("aria-expanded", "false");
    launcher.classList.remove("sb-open");
    setUnread(0);
    save("open", false);
    launcher.focus();
  }
  launcher.addEventListener("click", function () { panel.hidden ? open(true) : close(); });
  root.querySelector(".sb-close").addEventListener("click", close);
  panel.addEventListener("keydown", function (event) {
    if (event.key === "Escape") close();
  });

  // ---- files
  var maxFileBytes = 10 * 1024 * 1024;
  var fileInput = $("sb-file");
  function humanSize(bytes) {
    if (bytes < 1024) return bytes + " bytes";
    if (bytes < 1024 * 1024) return Math.ceil(bytes / 1024) + " KB";
    return (Math.ceil(bytes * 10 / (1024 * 1024)) / 10) + " MB";
  }
  // Images from the gateway are shown inline; anything else is a link. Built with DOM calls
  // only, so a file name can never become markup.
  function fileView(file) {
    var box = document.createElement("div");
    box.className = "sb-file";
    var url = typeof file.url === "string" ? (file.url.charAt(0) === "/" ? gateway + file.url : file.url) : null;
    var safeUrl = url && /^https?:\/\//.test(url) ? url : null;
    var link = document.createElement(safeUrl ? "a" : "span");
    if (safeUrl) { link.href = safeUrl; link.target = "_blank"; link.rel = "noopener noreferrer"; }
    if (safeUrl && /^image\/(png|jpeg|gif|webp)$/.test(file.content_type || "")) {
      var img = document.createElement("img");
      img.src = safeUrl;
      img.alt = file.name || "image";
      img.loading = "lazy";
      link.appendChild(img);
    } else {
      link.textContent = "\u{1F4CE} " + (file.name || "file") + " (" + humanSize(file.size || 0) + ")";
    }
    box.appendChild(link);
    return box;
  }
  $("sb-attach").addEventListener("click", function () { fileInput.click(); });
  fileInput.addEventListener("change", function () {
    var file = fileInput.files && fileInput.files[0];
    fileInput.value = "";
    if (!file) return;
    if (file.size > maxFileBytes) {
      hint.textContent = file.name + " is " + humanSize(file.size) + "; the limit is " + humanSize(maxFileBytes) + ".";
      return;
    }
    var clientId = newClientId();
    var params = "?session=" + encodeURIComponent(session) + "&client_id=" + encodeURIComponent(clientId) +
      "&name=" + encodeURIComponent(file.name);
    params += identityQuery();
    hint.textContent = "Sending " + file.name + "…";
    fetch(gateway + "/webchat/files" + params, {
      method: "POST", body: file, headers: { "content-type": file.type || "application/octet-stream" }
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (body) {
        if (!response.ok) { hint.textContent = body.message || ("Not sent: HTTP " + response.status); return; }
        hint.textContent = "";
        showStored({ id: body.message_id, author: { kind: "customer" }, text: "", at_ms: Date.now(),
                     files: [{ name: file.name, content_type: file.type, size: file.size }] });
      });
    }).catch(function () { hint.textContent = "Not sent: the connection failed. Please try again."; });
  });

  // ---- composing
  function byteLength(text) { return new TextEncoder().encode(text).length; }

  input.addEventListener("input", function () {
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight, 120) + "px";
    hint.textContent = "";
  });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submit();
    }
  });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    submit();
  });

  function submit() {
    var text = input.value.trim();
    if (!text) return;
    var bytes = byteLength(text);
    if (bytes > settings.maxBytes) {
      hint.textContent = "That message is too long (" + bytes + " of " + settings.maxBytes + " bytes). Please shorten it.";
      return;
    }
    input.value = "";
    input.style.height = "auto";
    enqueue({ client_id: newClientId(), type: "message", text: text, at: Date.now() });
    if (status === "bot" || status === "resolved") setTyping(true);
  }

  humanButton.addEventListener("click", function () {
    if (humanClientId) return;
    humanRequested = true;
    humanClientId = newClientId();
    // If no notice arrives, stop showing "Connecting…" after a while; the request is stored.
    humanTimer = setTimeout(function () { resetHumanButton(true); }, 20000);
    humanButton.classList.add("sb-busy");
    humanButton.disabled = true;
    humanButton.querySelector("span").textContent = "Connecting you to a person…";
    enqueue({ client_id: humanClientId, type: "talk_to_human", at: Date.now() });
    setTyping(false);
  });

  function enqueue(item) {
    queue.push(item);
    saveQueue();
    showPending(item);
    flush();
  }

  // ---- transport
  var ws = null;
  var connected = false;
  var attempt = 0;
  var reconnectTimer = null;
  var retryTimer = null;
  var pollTimer = null;
  var fatal = false;
  var wsFailures = 0;
  var inFlight = {};        // client_id -> true while a send awaits its ack on this connection

  function helloFrame() {
    var frame = {
      type: "hello",
      session: session,
      page: { url: location.href, title: document.title },
      attributes: attributes
    };
    Object.assign(frame, identityFields());
    // A fresh page shows the whole history; a reconnect only asks for what it missed.
    if (historyLoaded && lastSeenId) frame.after = lastSeenId;
    return frame;
  }

  function frameFor(item) {
    return item.type === "talk_to_human"
      ? { type: "talk_to_human", client_id: item.client_id }
      : { type: "message", client_id: item.client_id, text: item.text };
  }

  function flush() {
    if (pollTimer) return flushHttp();
    if (!connected || !ws || ws.readyState !== 1) return;
    queue.forEach(function (item) {
      if (inFlight[item.client_id]) return;
      inFlight[item.client_id] = true;
      ws.send(JSON.stringify(frameFor(item)));
    });
  }

  // Queued messages the gateway could not take yet get another try a little later.
  function retrySoon(delay) {
    clearTimeout(retryTimer);
    retryTimer = setTimeout(function () { inFlight = {}; flush(); }, delay);
  }

  function onWelcome(frame) {
    connected = true;
    attempt = 0;
    wsFailures = 0;
    setBanner("");
    if (frame.limits && frame.limits.max_message_bytes) settings.maxBytes = frame.limits.max_message_bytes;
    if (frame.limits && frame.limits.max_file_bytes) maxFileBytes = frame.limits.max_file_bytes;
    if (typeof frame.status === "string") status = frame.status;
    humanRequested = status === "escalated" || status === "human";
    (frame.messages || []).forEach(function (message) { showStored(message); });
    if (!historyLoaded) {
      historyLoaded = true;
      // Unsent messages from an earlier page load reappear under the history.
      queue.forEach(function (item) { if (!pending[item.client_id]) showPending(item); });
    }
    refreshChrome();
    // A new socket starts with nothing in flight; polls keep their POSTs in flight.
    if (!pollTimer) inFlight = {};
    flush();
  }

  function onError(frame) {
    var cid = frame.client_id;
    if (cid) {
      if (frame.code === "unavailable" || frame.code === "rate_limited") {
        var el = pending[cid];
        if (el) el.querySelector(".sb-state").textContent = frame.code === "rate_limited" ? "Waiting a moment…" : "Retrying…";
        delete inFlight[cid];
        // The gateway says how long its rate limit needs; wait that long, not a guess.
        var wait = frame.code === "rate_limited" ? 10000 : 3000;
        if (typeof frame.retry_after_ms === "number" && frame.retry_after_ms > 0) {
          wait = Math.min(Math.max(frame.retry_after_ms, 250), 120000);
        }
        retrySoon(wait);
      } else {
        fail(cid, frame.message || frame.code);
        if (cid === humanClientId) resetHumanButton(false);
      }
      return;
    }
    if (frame.code === "unauthorized") {
      fatal = true;
      setBanner("This chat could not confirm who you are. Please reload the page or sign in again.");
    }
  }

  // `requested`: the request went through, so the button goes away; otherwise it is offered again.
  function resetHumanButton(requested) {
    humanClientId = null;
    clearTimeout(humanTimer);
    humanButton.classList.remove("sb-busy");
    humanButton.disabled = false;
    humanButton.querySelector("span").textContent = "Talk to a human";
    humanRequested = requested || status === "escalated" || status === "human";
    refreshChrome();
  }

  function onFrame(frame) {
    if (!frame || typeof frame !== "object") return;
    if (frame.type === "welcome") onWelcome(frame);
    else if (frame.type === "ack") confirm(frame.client_id, frame.message_id);
    else if (frame.type === "message") showStored(frame.message, frame.actions);
    else if (frame.type === "error") onError(frame);
    else if (frame.type === "reconnect") restartSoon = true;
  }

  // Set when the gateway said it is shutting down: the socket's close is then not a failure,
  // and the widget reconnects at once (a load balancer picks another instance).
  var restartSoon = false;

  function connect() {
    if (fatal || pollTimer) return;
    clearTimeout(reconnectTimer);
    var opened = false;
    var socket;
    try {
      socket = new WebSocket(gateway.replace(/^http/, "ws") + "/webchat/ws");
    } catch (e) {
      return scheduleReconnect(false);
    }
    ws = socket;
    socket.onopen = function () {
      opened = true;
      socket.send(JSON.stringify(helloFrame()));
    };
    socket.onmessage = function (event) {
      var frame;
      try { frame = JSON.parse(event.data); } catch (e) { return; }
      onFrame(frame);
    };
    socket.onclose = function () {
      if (ws !== socket) return;
      ws = null;
      connected = false;
      inFlight = {};
      refreshChrome();
      if (restartSoon) {
        restartSoon = false;
        attempt = 0;
        clearTimeout(reconnectTimer);
        // A little jitter, so an instance's visitors do not all arrive in the same instant.
        reconnectTimer = setTimeout(connect, 50 + Math.random() * 250);
        return;
      }
      scheduleReconnect(opened);
    };
  }

  function scheduleReconnect(opened) {
    if (fatal) return;
    if (!opened) wsFailures++;
    // A gateway that answers HTTP but never upgrades sits behind a proxy without WebSocket.
    if (wsFailures >= 3 && !pollTimer) {
      poll(function (ok) { if (ok) startPolling(); else backoff(); });
      return;
    }
    backoff();
  }

  function backoff() {
    attempt++;
    var delay = Math.min(30000, 500 * Math.pow(2, attempt)) * (0.5 + Math.random() / 2);
    setBanner(queue.length ? "Connection lost. Your messages will be sent when we reconnect…" : "Reconnecting…");
    clearTimeout(reconnectTimer);
    reconnectTimer = setTimeout(connect, delay);
  }

  // ---- HTTP fallback: POST each queued message, poll history every few seconds.
  function query() {
    var params = "session=" + encodeURIComponent(session);
    params += identityQuery();
    if (historyLoaded && lastSeenId) params += "&after=" + encodeURIComponent(lastSeenId);
    return params;
  }

  function poll(done) {
    fetch(gateway + "/webchat/messages?" + query(), { credentials: "omit" })
      .then(function (response) {
        return response.json().then(function (body) { return { ok: response.ok, body: body }; });
      })
      .then(function (result) {
        if (result.ok) onWelcome(result.body);
        else onError(result.body || {});
        if (done) done(result.ok);
      })
      .catch(function () { if (done) done(false); });
  }

  function startPolling() {
    connected = false;
    pollTimer = setInterval(function () { poll(); }, 3000);
    refreshChrome();
    setBanner("");
  }

  function flushHttp() {
    queue.forEach(function (item) {
      if (inFlight[item.client_id]) return;
      inFlight[item.client_id] = true;
      var body = frameFor(item);
      body.session = session;
      body.page = { url: location.href, title: document.title };
      body.attributes = attributes;
      Object.assign(body, identityFields());
      fetch(gateway + "/webchat/messages", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
        credentials: "omit"
      })
        .then(function (response) {
          return response.json().then(function (reply) {
            if (response.ok) onFrame({ type: "ack", client_id: item.client_id, message_id: reply.message_id });
            else { reply.client_id = item.client_id; onError(reply); }
          });
        })
        .catch(function () { delete inFlight[item.client_id]; retrySoon(5000); });
    });
  }

  window.addEventListener("online", function () { if (!connected && !pollTimer) { attempt = 0; connect(); } });
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible" && !connected && !ws && !pollTimer) { attempt = 0; connect(); }
  });

  // ---- start
  function start() {
    document.body.appendChild(host);
    refreshChrome();
    if (load("open", false) === true) open(false);
    connect();
  }
  if (document.body) start();
  else document.addEventListener("DOMContentLoaded", start);

  // ---- look
  function icon(name, extraClass) {
    var paths = {
      chat: '<path d="M4 5.5A2.5 2.5 0 0 1 6.5 3h11A2.5 2.5 0 0 1 20 5.5v8a2.5 2.5 0 0 1-2.5 2.5H10l-4.2 3.6c-.5.4-1.3.1-1.3-.6V16A2.5 2.5 0 0 1 4 13.5z"/>',
      close: '<path d="M6 6l12 12M18 6L6 18" fill="none" stroke="currentColor" stroke-width="2.2" stroke-linecap="round"/>',
      minus: '<path d="M6 12h12" fill="none" stroke="currentColor" stroke-width="2.2" stroke-linecap="round"/>',
      send: '<path d="M3.4 20.4l17.4-7.5c.8-.4.8-1.5 0-1.8L3.4 3.6c-.7-.3-1.4.3-1.2 1l1.9 6.4 8.4 1-8.4 1-1.9 6.4c-.2.7.5 1.3 1.2 1z"/>',
      spark: '<path d="M12 2l1.9 5.6L19.5 9.5l-5.6 1.9L12 17l-1.9-5.6L4.5 9.5l5.6-1.9zM19 15l.9 2.1L22 18l-2.1.9L19 21l-.9-2.1L16 18l2.1-.9z"/>',
      person: '<path d="M12 12a4.5 4.5 0 1 0 0-9 4.5 4.5 0 0 0 0 9zm0 2c-4.4 0-8 2.2-8 5v1.5c0 .3.2.5.5.5h15c.3 0 .5-.2.5-.5V19c0-2.8-3.6-5-8-5z"/>',
      info: '<path d="M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20zm1 15h-2v-6h2zm0-8h-2V7h2z"/>'
    };
    return '<svg class="sb-svg ' + (extraClass || "") + '" viewBox="0 0 24 24" width="20" height="20" fill="currentColor" aria-hidden="true" focusable="false">' + paths[name] + "</svg>";
  }

  function css(accent) {
    return [
      ":host{all:initial}",
      "*{box-sizing:border-box}",
      "[hidden]{display:none!important}",
      ".sb-launcher,.sb-panel{--sb-accent:" + accent + ";font-family:ui-sans-serif,system-ui,-apple-system,'Segoe UI',Roboto,'Helvetica Neue',Arial,sans-serif;font-size:14px;line-height:1.45;color:#111827}",
      ".sb-launcher{position:fixed;right:20px;bottom:20px;z-index:2147483646;width:58px;height:58px;border-radius:50%;border:0;cursor:pointer;color:#fff;background:var(--sb-accent);box-shadow:0 10px 30px rgba(17,24,39,.25);display:flex;align-items:center;justify-content:center;transition:transform .15s ease}",
      ".sb-launcher:hover{transform:scale(1.06)}",
      ".sb-launcher:focus-visible,.sb-panel button:focus-visible,.sb-panel textarea:focus-visible{outline:3px solid color-mix(in srgb,var(--sb-accent) 45%,white);outline-offset:2px}",
      ".sb-launcher .sb-svg{width:26px;height:26px}",
      ".sb-launcher .sb-icon-close,.sb-launcher.sb-open .sb-icon-open{display:none}",
      ".sb-launcher.sb-open .sb-icon-close{display:block}",
      ".sb-unread{position:absolute;top:-2px;right:-2px;min-width:20px;height:20px;padding:0 5px;border-radius:10px;background:#ef4444;color:#fff;font:600 12px/20px system-ui,sans-serif;text-align:center;border:2px solid #fff}",
      ".sb-panel{position:fixed;right:20px;bottom:92px;z-index:2147483647;width:380px;max-width:calc(100vw - 24px);height:600px;max-height:calc(100vh - 116px);display:flex;flex-direction:column;background:#fff;border-radius:18px;overflow:hidden;box-shadow:0 24px 60px rgba(17,24,39,.28),0 0 0 1px rgba(17,24,39,.06);animation:sb-in .18s ease-out}",
      "@keyframes sb-in{from{opacity:0;transform:translateY(12px)}to{opacity:1;transform:none}}",
      "@media (max-width:480px){.sb-panel{right:0;bottom:0;width:100vw;max-width:100vw;height:100%;max-height:100%;border-radius:0}}",
      ".sb-header{display:flex;align-items:center;gap:12px;padding:16px 16px 14px;color:#fff;background:linear-gradient(135deg,var(--sb-accent),color-mix(in srgb,var(--sb-accent) 70%,#000))}",
      ".sb-avatar{width:40px;height:40px;border-radius:12px;background:rgba(255,255,255,.18);display:flex;align-items:center;justify-content:center;flex:none}",
      ".sb-heading{flex:1;min-width:0}",
      ".sb-heading h2{margin:0;font-size:16px;font-weight:650;letter-spacing:-.01em;color:#fff}",
      ".sb-subtitle{margin:2px 0 0;font-size:12.5px;opacity:.9;display:flex;align-items:center;gap:6px}",
      ".sb-dot{width:8px;height:8px;border-radius:50%;background:#fbbf24;flex:none}.sb-dot--on{background:#34d399}",
      ".sb-close{border:0;background:rgba(255,255,255,.14);color:#fff;width:32px;height:32px;border-radius:10px;cursor:pointer;display:flex;align-items:center;justify-content:center}",
      ".sb-close:hover{background:rgba(255,255,255,.26)}",
      ".sb-banner{padding:8px 16px;background:#fef3c7;color:#92400e;font-size:12.5px;border-bottom:1px solid #fde68a}",
      ".sb-log{flex:1;overflow-y:auto;padding:16px;display:flex;flex-direction:column;gap:12px;background:#f8fafc;scroll-behavior:smooth}",
      ".sb-msg{display:flex;flex-direction:column;max-width:85%;align-self:flex-start}",
      ".sb-meta{display:flex;align-items:center;gap:6px;margin:0 4px 4px;font-size:11.5px;color:#6b7280}",
      ".sb-meta time{margin-left:2px;color:#9ca3af}",
      ".sb-badge{display:inline-flex;align-items:center;gap:4px;padding:1px 8px 1px 6px;border-radius:999px;font-weight:600;color:var(--sb-accent);background:color-mix(in srgb,var(--sb-accent) 10%,white)}",
      ".sb-badge .sb-svg{width:12px;height:12px}",
      ".sb-bubble{padding:10px 13px;border-radius:16px;overflow-wrap:anywhere;background:#fff;box-shadow:0 1px 2px rgba(17,24,39,.08);border:1px solid #eef0f3}",
      ".sb-msg--ai .sb-bubble{border-top-left-radius:5px}",
      ".sb-bubble p{margin:0}.sb-bubble p+p{margin-top:8px}",
      ".sb-bubble a{color:var(--sb-accent);text-decoration:underline;overflow-wrap:anywhere}",
      ".sb-bubble code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12.5px;background:rgba(17,24,39,.06);padding:1px 4px;border-radius:4px}",
      ".sb-msg--agent .sb-bubble{border-top-left-radius:5px;background:#ecfdf5;border-color:#a7f3d0}",
      ".sb-initial{width:18px;height:18px;border-radius:50%;background:#059669;color:#fff;font-size:10.5px;font-weight:700;display:inline-flex;align-items:center;justify-content:center}",
      ".sb-meta strong{color:#065f46;font-weight:650}.sb-role{color:#6b7280}",
      ".sb-msg--customer{align-self:flex-end;align-items:flex-end}",
      ".sb-msg--customer .sb-bubble{background:var(--sb-accent);color:#fff;border:0;border-top-right-radius:5px;white-space:pre-wrap}",
      ".sb-state{font-size:11px;color:#9ca3af;margin:3px 4px 0}.sb-state:empty{display:none}",
      ".sb-pending .sb-bubble{opacity:.65}",
      ".sb-failed .sb-bubble{background:#fee2e2;color:#991b1b}.sb-failed .sb-state{color:#b91c1c}",
      ".sb-msg--system{align-self:center;max-width:92%}",
      ".sb-notice{display:flex;gap:8px;align-items:flex-start;padding:9px 12px;border-radius:12px;background:#fffbeb;border:1px solid #fde68a;color:#92400e;font-size:13px}",
      ".sb-notice .sb-svg{width:16px;height:16px;flex:none;margin-top:1px}",
      ".sb-typing{display:flex;align-items:center;gap:4px;padding:0 20px 8px;background:#f8fafc;color:#6b7280;font-size:12px}",
      ".sb-typing span{width:6px;height:6px;border-radius:50%;background:#9ca3af;animation:sb-blink 1.2s infinite}",
      ".sb-typing span:nth-child(2){animation-delay:.2s}.sb-typing span:nth-child(3){animation-delay:.4s}",
      ".sb-typing em{font-style:normal;margin-left:6px}",
      "@keyframes sb-blink{0%,80%,100%{opacity:.3}40%{opacity:1}}",
      ".sb-actions{display:flex;justify-content:center;padding:0 16px;background:#f8fafc}",
      ".sb-rating{display:flex;gap:6px;margin-top:8px}",
      ".sb-rating button{min-width:32px;height:32px;border-radius:8px;border:1px solid #c7d2fe;background:#fff;color:#3730a3;font:inherit;font-weight:600;cursor:pointer}",
      ".sb-rating button:hover:not(:disabled){background:#eef2ff}",
      ".sb-rating button:disabled{cursor:default;opacity:.55}",
      ".sb-rating button.sb-chosen{background:#4f46e5;color:#fff;opacity:1}",
      ".sb-human{display:inline-flex;align-items:center;gap:6px;margin:0 0 10px;padding:7px 14px;border-radius:999px;border:1px solid color-mix(in srgb,var(--sb-accent) 35%,white);background:#fff;color:var(--sb-accent);font:inherit;font-weight:600;font-size:13px;cursor:pointer;box-shadow:0 1px 2px rgba(17,24,39,.06)}",
      ".sb-human:hover{background:color-mix(in srgb,var(--sb-accent) 7%,white)}",
      ".sb-human .sb-svg{width:16px;height:16px}.sb-human:disabled{cursor:default;opacity:.75}",
      ".sb-composer{display:flex;align-items:flex-end;gap:8px;padding:12px;border-top:1px solid #eef0f3;background:#fff}",
      ".sb-composer textarea{flex:1;resize:none;min-height:42px;max-height:120px;padding:10px 12px;border:1px solid #d1d5db;border-radius:12px;font:inherit;color:#111827;background:#fff;outline:none}",
      ".sb-composer textarea:focus{border-color:var(--sb-accent);box-shadow:0 0 0 3px color-mix(in srgb,var(--sb-accent) 18%,transparent)}",
      ".sb-send{width:42px;height:42px;flex:none;border:0;border-radius:12px;background:var(--sb-accent);color:#fff;cursor:pointer;display:flex;align-items:center;justify-content:center}",
      ".sb-send:hover{filter:brightness(1.08)}",
      ".sb-attach{width:36px;height:42px;flex:none;border:0;background:transparent;cursor:pointer;font-size:18px}",
      ".sb-file{margin-top:6px}.sb-file img{max-width:220px;max-height:220px;border-radius:8px;display:block}",
      ".sb-file a{color:inherit;text-decoration:underline;word-break:break-all}",
      ".sb-hint{margin:0;padding:0 14px;color:#b91c1c;font-size:12px}.sb-hint:empty{display:none}",
      ".sb-footer{margin:0;padding:6px 12px 10px;text-align:center;font-size:11px;color:#9ca3af;background:#fff}",
      ".sb-sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}",
      "@media (prefers-reduced-motion:reduce){.sb-panel,.sb-typing span{animation:none}.sb-log{scroll-behavior:auto}}"
    ].join("\n");
  }
})();
