// The simulator's chat page: a Telegram-like private chat with the bot, for one simulated
// user per tab (/chat?user=<id>). Plain JavaScript, no framework, nothing from the network:
// it talks to the simulator's control API only (see intake_bot/simulator/control.py).
//
// Safety rule of this file: text from the bot or from users (messages, captions, names,
// button labels, file names) is only ever put into the page with textContent or as an
// attribute value, never parsed as HTML. There is no innerHTML, no eval, and no inline
// style or script anywhere (the page runs under a strict Content-Security-Policy).
"use strict";

(() => {
  const POLL_TIMEOUT_SECONDS = 25;
  const TYPING_SHOWN_MS = 5000; // Telegram shows a chat action for about five seconds
  const TOAST_MS = 4000;
  const ALBUM_MIN = 2;
  const ALBUM_MAX = 10;
  const COMMAND_PATTERN = /(^|[\s(])(\/[A-Za-z0-9_]{1,32})(?=$|[\s).,;:!?])/g;
  const SAFE_URL = /^(https?|tg):/i;

  const $ = (id) => document.getElementById(id);

  const SVG = "http://www.w3.org/2000/svg";
  const ICONS = {
    lock: [["rect", { x: 5, y: 11, width: 14, height: 10, rx: 2 }], ["path", { d: "M8 11V8a4 4 0 0 1 8 0v3" }]],
    mic: [["rect", { x: 9, y: 3, width: 6, height: 11, rx: 3 }], ["path", { d: "M5.5 11a6.5 6.5 0 0 0 13 0M12 17.5V21" }]],
  };

  /** A decorative line icon (drawn, so that it shows without an emoji font). */
  function icon(name, className) {
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    svg.setAttribute("class", `icon ${className || ""}`.trim());
    for (const [tag, attributes] of ICONS[name]) {
      const shape = document.createElementNS(SVG, tag);
      for (const [key, value] of Object.entries(attributes)) shape.setAttribute(key, String(value));
      svg.append(shape);
    }
    return svg;
  }

  const state = {
    userId: null,
    user: null,
    bot: { first_name: "Bot", username: "" },
    version: null,
    nodes: new Map(), // message id -> { sig, node }
    days: new Map(), // day key -> separator node
    showDeleted: false,
    keyboardSig: "null",
    keyboardHidden: false,
    replyKeyboard: null,
    lastAction: null,
    actionSince: 0,
    actionTimer: null,
    connected: true,
    stickToBottom: true,
    firstRender: true,
    toastTimer: null,
  };

  // --- small helpers --------------------------------------------------------------------

  /** An element with a class, attributes, text and children; never parses HTML. */
  function el(tag, options = {}, ...children) {
    const node = document.createElement(tag);
    if (options.class) node.className = options.class;
    if (options.text !== undefined && options.text !== null) node.textContent = String(options.text);
    for (const [name, value] of Object.entries(options.attrs || {})) {
      if (value !== undefined && value !== null && value !== false) node.setAttribute(name, String(value));
    }
    for (const [event, handler] of Object.entries(options.on || {})) node.addEventListener(event, handler);
    for (const child of children) {
      if (child !== null && child !== undefined) node.append(child);
    }
    return node;
  }

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  async function api(method, path, body) {
    const init = { method, headers: {}, credentials: "same-origin", cache: "no-store" };
    if (body instanceof FormData) {
      init.body = body;
    } else if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    let data = null;
    try {
      data = await response.json();
    } catch (_) {
      data = null;
    }
    if (!response.ok) {
      const message = data && typeof data.error === "string" ? data.error : `HTTP ${response.status}`;
      throw new ApiError(response.status, message);
    }
    return data;
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  function fullName(user) {
    if (!user) return "";
    return [user.first_name, user.last_name].filter(Boolean).join(" ");
  }

  function initial(name) {
    const first = Array.from((name || "?").trim())[0] || "?";
    return first.toUpperCase();
  }

  function clockTime(seconds) {
    return new Date(seconds * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function dayKey(seconds) {
    const date = new Date(seconds * 1000);
    return `${date.getFullYear()}-${date.getMonth()}-${date.getDate()}`;
  }

  function dayLabel(seconds) {
    const date = new Date(seconds * 1000);
    if (dayKey(seconds) === dayKey(Date.now() / 1000)) return "Today";
    return date.toLocaleDateString([], { day: "numeric", month: "long", year: "numeric" });
  }

  function fileSize(bytes) {
    if (typeof bytes !== "number") return "";
    if (bytes < 1024) return `${bytes} B`;
    if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
    return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
  }

  function duration(seconds) {
    const s = Math.max(0, Math.round(seconds || 0));
    return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
  }

  function fileUrl(fileId) {
    return `/control/files/${encodeURIComponent(fileId)}`;
  }

  function toast(text, { alert = false } = {}) {
    const box = $("toast");
    box.replaceChildren(el("span", { text }));
    box.classList.toggle("toast-alert", alert);
    if (alert) {
      box.append(el("button", { class: "text-button", text: "OK", attrs: { type: "button" }, on: { click: hideToast } }));
    }
    box.hidden = false;
    clearTimeout(state.toastTimer);
    state.toastTimer = setTimeout(hideToast, alert ? TOAST_MS * 3 : TOAST_MS);
  }

  function hideToast() {
    $("toast").hidden = true;
  }

  function failed(error) {
    toast(error instanceof ApiError ? `Not sent: ${error.message}` : "Not sent: the simulator cannot be reached.");
  }

  // --- the user picker -------------------------------------------------------------------

  async function openPicker(error) {
    $("chat").hidden = true;
    $("picker").hidden = false;
    document.title = "Chat simulator: choose a user";
    const problem = $("picker-error");
    problem.textContent = error || "";
    problem.hidden = !error;
    let users = [];
    try {
      users = (await api("GET", "/control/users")).users;
    } catch (_) {
      problem.textContent = "The simulator cannot be reached.";
      problem.hidden = false;
    }
    const list = $("user-list");
    list.replaceChildren(
      ...users.map((user) => {
        const details = [user.language_code || "no language", `id ${user.id}`];
        if (user.blocked_bot) details.push("blocked the bot");
        return el(
          "li",
          {},
          el(
            "button",
            {
              class: "user-item",
              attrs: { type: "button", "aria-label": `Continue as ${fullName(user)} (${details.join(", ")})` },
              on: { click: () => location.assign(`/chat?user=${user.id}`) },
            },
            el("span", { class: "avatar avatar-user", text: initial(user.first_name), attrs: { "aria-hidden": "true" } }),
            el("span", { class: "user-item-text" },
              el("span", { class: "user-item-name", text: fullName(user) }),
              el("span", { class: "user-item-meta", text: details.join(" · ") })),
          ),
        );
      }),
    );
    $("no-users").hidden = users.length > 0;
    if (!users.length) $("new-user-name").focus();
  }

  async function createUser(event) {
    event.preventDefault();
    const name = $("new-user-name").value.trim();
    if (!name) return;
    const body = { first_name: name };
    const language = $("new-user-language").value;
    if (language) body.language_code = language;
    try {
      const created = await api("POST", "/control/users", body);
      location.assign(`/chat?user=${created.user.id}`);
    } catch (error) {
      const problem = $("picker-error");
      problem.textContent = error instanceof ApiError ? error.message : "The simulator cannot be reached.";
      problem.hidden = false;
    }
  }

  // --- the chat --------------------------------------------------------------------------

  async function openChat(userId) {
    let users;
    try {
      users = (await api("GET", "/control/users")).users;
    } catch (_) {
      openPicker("The simulator cannot be reached.");
      return;
    }
    const user = users.find((candidate) => candidate.id === userId);
    if (!user) {
      openPicker(`There is no user ${userId} in this simulator (was it restarted?). Choose or create one.`);
      return;
    }
    state.userId = userId;
    state.user = user;
    $("picker").hidden = true;
    $("chat").hidden = false;
    $("me").textContent = `as ${fullName(user)}${user.language_code ? ` · ${user.language_code}` : ""}`;
    document.title = `${fullName(user)} ↔ ${state.bot.first_name} · chat simulator`;
    refreshCommands();
    poll();
  }

  async function poll() {
    let delay = 500;
    for (;;) {
      const query = state.version === null ? "" : `?changed_after=${state.version}&timeout=${POLL_TIMEOUT_SECONDS}`;
      let chat;
      try {
        chat = await api("GET", `/control/chats/${state.userId}/transcript${query}`);
      } catch (error) {
        if (error instanceof ApiError && error.status === 404) {
          openPicker("This chat no longer exists (was the simulator restarted?).");
          return;
        }
        setConnected(false);
        await sleep(delay);
        delay = Math.min(delay * 2, 5000);
        continue;
      }
      setConnected(true);
      delay = 500;
      state.version = chat.version;
      try {
        render(chat);
      } catch (error) {
        console.error("the chat page could not show the transcript", error); // a bug here
      }
    }
  }

  function setConnected(connected) {
    if (state.connected !== connected) {
      state.connected = connected;
      renderStatus();
    }
  }

  function renderStatus() {
    const status = $("bot-status");
    const acting = state.lastAction && Date.now() - state.actionSince < TYPING_SHOWN_MS;
    let text = "bot";
    if (!state.connected) text = "waiting for the simulator…";
    else if (acting) text = actionText(state.lastAction);
    status.textContent = text;
    status.classList.toggle("active", Boolean(acting && state.connected));
  }

  function actionText(action) {
    const known = {
      typing: "typing…",
      upload_photo: "sending a photo…",
      upload_document: "sending a file…",
      upload_video: "sending a video…",
      record_voice: "recording a voice message…",
      upload_voice: "sending a voice message…",
      choose_sticker: "choosing a sticker…",
      find_location: "finding a location…",
    };
    return known[action] || "typing…";
  }

  function trackAction(action) {
    if (action === state.lastAction) return;
    state.lastAction = action;
    state.actionSince = Date.now();
    clearTimeout(state.actionTimer);
    if (action) state.actionTimer = setTimeout(renderStatus, TYPING_SHOWN_MS + 50);
    renderStatus();
  }

  // --- rendering the transcript ----------------------------------------------------------

  function render(chat) {
    const log = $("log");
    const wanted = [];
    const live = new Set();
    const visible = [];
    let lastDay = null;
    let anyProtected = false;
    for (const message of chat.messages) {
      live.add(message.message_id);
      if (message.deleted && !state.showDeleted) continue;
      const day = dayKey(message.date);
      if (day !== lastDay) {
        wanted.push(daySeparator(day, message.date));
        lastDay = day;
      }
      const node = messageNode(message);
      wanted.push(node);
      visible.push({ node, message });
      if (message.protect_content && !message.deleted) anyProtected = true;
    }
    visible.forEach(({ node, message }, index) => {
      const next = visible[index + 1];
      const sameSide = next && next.message.direction === message.direction && dayKey(next.message.date) === dayKey(message.date);
      node.classList.toggle("tail", !sameSide);
    });
    for (const id of state.nodes.keys()) if (!live.has(id)) state.nodes.delete(id);

    const keep = new Set(wanted);
    for (const child of Array.from(log.children)) if (!keep.has(child)) child.remove();
    wanted.forEach((node, index) => {
      const current = log.children[index];
      if (current !== node) log.insertBefore(node, current || null);
    });

    const empty = chat.messages.length === 0;
    $("start-bar").hidden = !empty;
    $("composer-area").hidden = empty;
    $("protect-note").hidden = !anyProtected;
    renderReplyKeyboard(chat.reply_keyboard);
    trackAction(chat.last_action);
    if (state.firstRender || state.stickToBottom) scrollToBottom();
    state.firstRender = false;
  }

  function daySeparator(key, seconds) {
    let node = state.days.get(key);
    if (!node) {
      node = el("div", { class: "day" }, el("span", { text: dayLabel(seconds) }));
      state.days.set(key, node);
    }
    return node;
  }

  function messageNode(message) {
    const sig = JSON.stringify([message.message, message.deleted, message.protect_content]);
    const cached = state.nodes.get(message.message_id);
    if (cached && cached.sig === sig) return cached.node;
    const node = buildMessage(message);
    state.nodes.set(message.message_id, { sig, node });
    return node;
  }

  function buildMessage(entry) {
    const m = entry.message;
    const mine = entry.direction === "in";
    const classes = ["msg", mine ? "mine" : "theirs"];
    if (entry.deleted) classes.push("deleted");
    if (entry.protect_content) classes.push("protected");
    const node = el("div", {
      class: classes.join(" "),
      attrs: { "data-message-id": entry.message_id, "data-from": mine ? "user" : "bot" },
    });

    const bubble = el("div", { class: "bubble" });
    bubble.append(el("span", { class: "visually-hidden", text: `${mine ? "You" : fullName(state.bot)}: ` }));
    const origin = forwardedFrom(m.forward_origin);
    if (origin) bubble.append(el("div", { class: "forwarded", text: `Forwarded from ${origin}` }));
    if (m.reply_to_message) bubble.append(quote(m.reply_to_message));
    const media = mediaOf(entry);
    if (media) bubble.append(media);
    const body = m.text ?? m.caption;
    if (body) bubble.append(textBlock(body, !mine));
    bubble.append(meta(entry, mine));
    if (!media && !body) bubble.classList.add("bubble-empty");
    if (media && media.classList.contains("media-photo")) bubble.classList.add("has-photo");
    if (body) bubble.classList.add("has-text");
    node.append(bubble);

    const markup = m.reply_markup;
    if (!entry.deleted && markup && Array.isArray(markup.inline_keyboard)) {
      node.append(inlineKeyboard(entry.message_id, markup.inline_keyboard));
    }
    return node;
  }

  function forwardedFrom(origin) {
    if (!origin) return null;
    if (origin.type === "user") return fullName(origin.sender_user);
    if (origin.type === "hidden_user") return origin.sender_user_name;
    if (origin.type === "chat") return origin.sender_chat && origin.sender_chat.title;
    if (origin.type === "channel") return origin.chat && origin.chat.title;
    return "someone";
  }

  function quote(quoted) {
    const fromBot = quoted.from && quoted.from.is_bot;
    const who = fromBot ? fullName(state.bot) : fullName(quoted.from) || "You";
    const what = quoted.text || quoted.caption || kindLabel(quoted);
    return el("div", { class: "quote" },
      el("span", { class: "quote-name", text: who }),
      el("span", { class: "quote-text", text: what }));
  }

  function kindLabel(m) {
    for (const [field, label] of [
      ["photo", "Photo"], ["document", "File"], ["voice", "Voice message"], ["audio", "Audio"],
      ["video", "Video"], ["video_note", "Video message"], ["sticker", "Sticker"],
      ["location", "Location"], ["contact", "Contact"], ["poll", "Poll"], ["dice", "Dice"],
    ]) {
      if (m[field]) return label;
    }
    return "Message";
  }

  function textBlock(text, linkCommands) {
    const block = el("div", { class: "text" });
    if (!linkCommands) {
      block.textContent = text;
      return block;
    }
    let last = 0;
    for (const match of text.matchAll(COMMAND_PATTERN)) {
      const start = match.index + match[1].length;
      block.append(document.createTextNode(text.slice(last, start)));
      const command = match[2];
      block.append(el("button", {
        class: "command-link",
        text: command,
        attrs: { type: "button", title: `Send ${command}` },
        on: { click: () => sendText(command).catch(failed) },
      }));
      last = start + command.length;
    }
    block.append(document.createTextNode(text.slice(last)));
    return block;
  }

  function meta(entry, mine) {
    const box = el("span", { class: "meta" });
    if (entry.deleted) box.append(el("span", { class: "meta-deleted", text: "deleted" }));
    if (entry.edit_date && mine) box.append(el("span", { class: "meta-edited", text: "edited" }));
    if (entry.protect_content) {
      box.append(el("span", {
        class: "badge-protected",
        attrs: { title: "Protected content: in real Telegram this message cannot be forwarded, copied or saved." },
      }, icon("lock", "lock"), "protected"));
    }
    box.append(el("time", { text: clockTime(entry.date), attrs: { datetime: new Date(entry.date * 1000).toISOString() } }));
    if (mine) box.append(el("span", { class: "ticks", text: "✓✓", attrs: { "aria-hidden": "true" } }));
    return box;
  }

  function mediaOf(entry) {
    const m = entry.message;
    if (Array.isArray(m.photo) && m.photo.length) {
      const largest = m.photo[m.photo.length - 1];
      const img = el("img", {
        class: "photo",
        attrs: { src: fileUrl(largest.file_id), alt: m.caption ? `Photo: ${m.caption}` : "Photo", width: largest.width, height: largest.height, loading: "lazy", decoding: "async" },
        on: { load: () => { if (state.stickToBottom) scrollToBottom(); }, error: (event) => event.target.classList.add("photo-broken") },
      });
      return el("div", { class: "media media-photo" }, img);
    }
    if (m.voice) {
      const bars = el("span", { class: "wave", attrs: { "aria-hidden": "true" } });
      for (let i = 0; i < 24; i += 1) bars.append(el("span", { class: `bar bar-${(i * 7 + 3) % 5}` }));
      return el("div", { class: "media voice" },
        el("span", { class: "voice-icon" }, icon("mic")),
        el("span", { class: "voice-body" }, bars,
          el("span", { class: "voice-meta", text: `Voice note · ${duration(m.voice.duration)} · ${fileSize(m.voice.file_size)}` })));
    }
    const file = m.document || m.audio || m.video || m.animation;
    if (file) {
      const name = file.file_name || file.title || kindLabel(m);
      const extension = (name.includes(".") ? name.split(".").pop() : kindLabel(m)).slice(0, 4).toUpperCase();
      const icon = el("span", { class: "doc-icon", text: extension, attrs: { "aria-hidden": "true" } });
      const details = el("span", { class: "doc-body" },
        el("span", { class: "doc-name", text: name }),
        el("span", { class: "doc-size", text: [fileSize(file.file_size), file.mime_type].filter(Boolean).join(" · ") }));
      if (entry.protect_content) return el("div", { class: "media doc" }, icon, details);
      return el("a", {
        class: "media doc",
        attrs: { href: fileUrl(file.file_id), download: name, title: `Download ${name}` },
      }, icon, details);
    }
    if (m.video_note) return el("div", { class: "media chip", text: `Video message · ${duration(m.video_note.duration)}` });
    if (m.sticker) return el("div", { class: "media sticker", text: m.sticker.emoji || "🙂", attrs: { role: "img", "aria-label": "Sticker" } });
    if (m.dice) return el("div", { class: "media sticker", text: `${m.dice.emoji} ${m.dice.value}`, attrs: { role: "img", "aria-label": `Dice: ${m.dice.value}` } });
    if (m.location) return el("div", { class: "media chip", text: `Location: ${m.location.latitude.toFixed(4)}, ${m.location.longitude.toFixed(4)}` });
    if (m.contact) return el("div", { class: "media chip", text: `Contact: ${[m.contact.first_name, m.contact.last_name].filter(Boolean).join(" ")} · ${m.contact.phone_number}` });
    if (m.poll) {
      return el("div", { class: "media poll" },
        el("span", { class: "poll-question", text: `Poll: ${m.poll.question}` }),
        el("ul", {}, ...m.poll.options.map((option) => el("li", { text: option.text }))));
    }
    if (!m.text && !m.caption) {
      const service = Object.keys(m).find((key) => !["message_id", "from", "chat", "date", "edit_date", "has_protected_content"].includes(key));
      return el("div", { class: "media chip", text: service ? service.replaceAll("_", " ") : "empty message" });
    }
    return null;
  }

  function inlineKeyboard(messageId, rows) {
    const keyboard = el("div", { class: "keyboard" });
    for (const row of rows) {
      const line = el("div", { class: "keyboard-row" });
      for (const button of row) line.append(inlineButton(messageId, button));
      keyboard.append(line);
    }
    return keyboard;
  }

  function inlineButton(messageId, button) {
    if (typeof button.callback_data === "string") {
      return el("button", {
        class: "kb-button",
        text: button.text,
        attrs: { type: "button" },
        on: { click: (event) => press(messageId, button.callback_data, event.currentTarget) },
      });
    }
    if (typeof button.url === "string" && SAFE_URL.test(button.url)) {
      return el("a", {
        class: "kb-button kb-link",
        text: button.text,
        attrs: { href: button.url, target: "_blank", rel: "noopener noreferrer" },
      });
    }
    return el("button", {
      class: "kb-button",
      text: button.text,
      attrs: { type: "button", disabled: true, title: "This kind of button is not simulated" },
    });
  }

  async function press(messageId, data, button) {
    button.classList.add("pending");
    try {
      const result = await api("POST", `/control/users/${state.userId}/callbacks`, { message_id: messageId, data });
      await showCallbackAnswer(result.callback_query.id);
    } catch (error) {
      failed(error);
    } finally {
      button.classList.remove("pending");
    }
  }

  async function showCallbackAnswer(queryId) {
    for (let attempt = 0; attempt < 20; attempt += 1) {
      const answer = await api("GET", `/control/callbacks/${encodeURIComponent(queryId)}`);
      if (answer.answered) {
        if (answer.text) toast(answer.text, { alert: Boolean(answer.show_alert) });
        return;
      }
      await sleep(150);
    }
  }

  // --- the reply keyboard ----------------------------------------------------------------

  function renderReplyKeyboard(markup) {
    const sig = JSON.stringify(markup || null);
    if (sig !== state.keyboardSig) {
      state.keyboardSig = sig;
      state.keyboardHidden = false;
      state.replyKeyboard = markup && Array.isArray(markup.keyboard) ? markup : null;
      const box = $("reply-keyboard");
      box.replaceChildren();
      if (state.replyKeyboard) {
        for (const row of state.replyKeyboard.keyboard) {
          const line = el("div", { class: "keyboard-row" });
          for (const button of row) {
            const spec = typeof button === "string" ? { text: button } : button;
            line.append(el("button", {
              class: "reply-button",
              text: spec.text,
              attrs: { type: "button" },
              on: { click: () => pressReplyButton(spec) },
            }));
          }
          box.append(line);
        }
      }
      const placeholder = state.replyKeyboard && state.replyKeyboard.input_field_placeholder;
      $("message-input").placeholder = placeholder || "Message";
    }
    showReplyKeyboard();
  }

  function showReplyKeyboard() {
    const has = Boolean(state.replyKeyboard);
    const shown = has && !state.keyboardHidden;
    $("reply-keyboard").hidden = !shown;
    const toggle = $("keyboard-toggle");
    toggle.hidden = !has;
    toggle.setAttribute("aria-pressed", String(shown));
    toggle.setAttribute("aria-label", shown ? "Hide the bot's keyboard" : "Show the bot's keyboard");
  }

  async function pressReplyButton(spec) {
    try {
      if (spec.request_contact) {
          await send(CANNED.contact());
      } else if (spec.request_location) {
        await send(CANNED.location());
      } else {
        await sendText(spec.text);
      }
      if (state.replyKeyboard && state.replyKeyboard.one_time_keyboard) {
        state.keyboardHidden = true;
        showReplyKeyboard();
      }
    } catch (error) {
      failed(error);
    }
  }

  // --- sending ---------------------------------------------------------------------------

  function send(body) {
    return api("POST", `/control/users/${state.userId}/messages`, body);
  }

  function sendText(text) {
    return send({ kind: "text", text });
  }

  function takeCaption() {
    const input = $("message-input");
    const caption = input.value.trim();
    input.value = "";
    autosize();
    return caption;
  }

  async function submitComposer(event) {
    event.preventDefault();
    const input = $("message-input");
    const text = input.value;
    if (!text.trim()) return;
    input.value = "";
    autosize();
    state.stickToBottom = true;
    try {
      await sendText(text);
    } catch (error) {
      if (!input.value) input.value = text;
      autosize();
      failed(error);
    }
    input.focus();
  }

  function autosize() {
    const input = $("message-input");
    input.style.height = "auto";
    input.style.height = `${Math.min(input.scrollHeight, 160)}px`;
  }

  function albumKind(file) {
    if (file.type.startsWith("image/")) return "photo";
    if (file.type.startsWith("video/")) return "video";
    if (file.type.startsWith("audio/")) return "audio";
    return "document";
  }

  async function sendFile(kind, file) {
    const form = new FormData();
    form.append("kind", kind);
    const caption = takeCaption();
    if (caption) form.append("caption", caption);
    if (kind !== "photo" && kind !== "voice") form.append("file_name", file.name);
    if (file.type && kind !== "photo") form.append("mime_type", file.type);
    form.append("file", file, file.name);
    state.stickToBottom = true;
    await api("POST", `/control/users/${state.userId}/messages`, form);
  }

  function base64Of(file) {
    return new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.addEventListener("load", () => resolve(String(reader.result).split(",", 2)[1] || ""));
      reader.addEventListener("error", () => reject(reader.error));
      reader.readAsDataURL(file);
    });
  }

  async function sendAlbum(files) {
    if (files.length === 1) {
      await sendFile(albumKind(files[0]), files[0]);
      return;
    }
    if (files.length < ALBUM_MIN || files.length > ALBUM_MAX) {
      toast(`An album has ${ALBUM_MIN} to ${ALBUM_MAX} files.`);
      return;
    }
    let kinds = files.map(albumKind);
    const distinct = new Set(kinds);
    const visual = [...distinct].every((kind) => kind === "photo" || kind === "video");
    if (distinct.size > 1 && !visual) kinds = kinds.map(() => "document"); // Telegram's rule
    const caption = takeCaption();
    const items = await Promise.all(files.map(async (file, index) => {
      const item = { kind: kinds[index], data_base64: await base64Of(file), file_name: file.name };
      if (file.type && kinds[index] !== "photo") item.mime_type = file.type;
      if (index === 0 && caption) item.caption = caption;
      return item;
    }));
    state.stickToBottom = true;
    await api("POST", `/control/users/${state.userId}/albums`, { items });
  }

  async function filesChosen(input, kind) {
    const files = Array.from(input.files || []);
    input.value = "";
    if (!files.length) return;
    try {
      if (kind === "album") await sendAlbum(files);
      else await sendFile(kind, files[0]);
    } catch (error) {
      failed(error);
    }
  }

  function openForward() {
    const dialog = $("forward-dialog");
    $("forward-text").value = $("message-input").value;
    dialog.showModal();
    $("forward-origin-name").focus();
  }

  async function submitForward(event) {
    event.preventDefault();
    const type = $("forward-origin-type").value;
    const name = $("forward-origin-name").value.trim();
    const text = $("forward-text").value;
    if (!name || !text.trim()) return;
    const origin = type === "hidden_user" ? { type, sender_user_name: name } : { type, title: name };
    try {
      await send({ kind: "text", text, forward_origin: origin });
      $("forward-dialog").close();
      $("forward-text").value = "";
      $("message-input").value = "";
      autosize();
      state.stickToBottom = true;
    } catch (error) {
      failed(error);
    }
  }

  // --- popups: attach menu, bot commands, chat options -----------------------------------

  const POPUPS = [
    ["attach-button", "attach-menu"],
    ["menu-button", "command-menu"],
    ["options-button", "options-menu"],
  ];

  function closePopups(except) {
    for (const [buttonId, menuId] of POPUPS) {
      if (menuId === except) continue;
      $(menuId).hidden = true;
      $(buttonId).setAttribute("aria-expanded", "false");
    }
  }

  function togglePopup(buttonId, menuId) {
    const menu = $(menuId);
    const opening = menu.hidden;
    closePopups(menuId);
    menu.hidden = !opening;
    $(buttonId).setAttribute("aria-expanded", String(opening));
    if (opening) {
      const first = menu.querySelector("button, a, input");
      if (first) first.focus();
    }
  }

  const CANNED = {
    // What Telegram's client would send for these, without asking the user anything.
    sticker: () => ({ kind: "sticker", emoji: "🙂" }),
    location: () => ({ kind: "location", latitude: 40.4093, longitude: 49.8671 }),
    contact: () => ({ kind: "contact", phone_number: "+994501234567", first_name: state.user.first_name }),
  };

  function attach(what) {
    closePopups();
    if (what === "forward") {
      openForward();
    } else if (CANNED[what]) {
      state.stickToBottom = true;
      send(CANNED[what]()).catch(failed);
    } else {
      $(`${what}-input`).click();
    }
  }

  function commandsFor(all) {
    const lang = (state.user && state.user.language_code) || "";
    const ranks = [
      (e) => e.scope.type === "chat" && e.scope.chat_id === state.userId && e.language_code === lang,
      (e) => e.scope.type === "chat" && e.scope.chat_id === state.userId && !e.language_code,
      (e) => e.scope.type === "all_private_chats" && e.language_code === lang,
      (e) => e.scope.type === "all_private_chats" && !e.language_code,
      (e) => e.scope.type === "default" && e.language_code === lang,
      (e) => e.scope.type === "default" && !e.language_code,
    ];
    for (const rank of ranks) {
      const found = all.find(rank);
      if (found && found.commands.length) return found.commands;
    }
    return [];
  }

  async function refreshCommands() {
    let commands = [];
    try {
      commands = commandsFor((await api("GET", "/control/commands")).commands);
    } catch (_) {
      commands = [];
    }
    $("menu-button").hidden = commands.length === 0;
    $("command-menu").replaceChildren(...commands.map((command) => el("button", {
      class: "popup-item command-item",
      attrs: { type: "button" },
      on: {
        click: () => {
          closePopups();
          sendText(`/${command.command}`).catch(failed);
        },
      },
    }, el("span", { class: "command-name", text: `/${command.command}` }), el("span", { class: "command-description", text: command.description }))));
  }

  // --- scrolling -------------------------------------------------------------------------

  function scrollToBottom() {
    const log = $("log");
    log.scrollTop = log.scrollHeight;
  }

  function trackScroll() {
    const log = $("log");
    state.stickToBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 80;
  }

  // --- start -----------------------------------------------------------------------------

  async function loadBot() {
    try {
      state.bot = (await api("GET", "/chat/api/bot")).bot;
    } catch (_) {
      return;
    }
    const name = fullName(state.bot);
    $("bot-name").textContent = name;
    $("picker-bot-name").textContent = state.bot.username ? `${name} (@${state.bot.username})` : name;
    $("bot-avatar").textContent = initial(name);
    $("picker-avatar").textContent = initial(name);
  }

  function wire() {
    $("new-user-form").addEventListener("submit", createUser);
    $("composer").addEventListener("submit", submitComposer);
    const input = $("message-input");
    input.addEventListener("input", autosize);
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        $("composer").requestSubmit();
      }
    });
    $("start").addEventListener("click", () => sendText("/start").catch(failed));
    $("back").addEventListener("click", () => location.assign("/chat"));
    for (const [buttonId, menuId] of POPUPS) {
      $(buttonId).addEventListener("click", (event) => {
        event.stopPropagation();
        if (menuId === "command-menu") refreshCommands();
        togglePopup(buttonId, menuId);
      });
    }
    for (const item of document.querySelectorAll("[data-attach]")) {
      item.addEventListener("click", () => attach(item.dataset.attach));
    }
    for (const kind of ["photo", "document", "voice", "album"]) {
      const fileInput = $(`${kind}-input`);
      fileInput.addEventListener("change", () => filesChosen(fileInput, kind));
    }
    $("keyboard-toggle").addEventListener("click", () => {
      state.keyboardHidden = !state.keyboardHidden;
      showReplyKeyboard();
    });
    $("show-deleted").addEventListener("change", (event) => {
      state.showDeleted = event.target.checked;
      api("GET", `/control/chats/${state.userId}/transcript`).then(render).catch(() => {});
    });
    $("forward-form").addEventListener("submit", submitForward);
    $("forward-cancel").addEventListener("click", () => $("forward-dialog").close());
    $("log").addEventListener("scroll", trackScroll, { passive: true });
    document.addEventListener("click", (event) => {
      if (!event.target.closest(".popup")) closePopups();
    });
    document.addEventListener("keydown", (event) => {
      if (event.key !== "Escape") return;
      for (const [buttonId, menuId] of POPUPS) {
        if (!$(menuId).hidden) {
          closePopups();
          $(buttonId).focus();
        }
      }
    });
  }

  async function main() {
    wire();
    await loadBot();
    const raw = new URLSearchParams(location.search).get("user");
    if (raw && /^\d{1,15}$/.test(raw)) openChat(Number(raw));
    else openPicker(raw ? "That is not a user id." : "");
  }

  main();
})();
