/* The crew page: stations by urgency, open alerts, service commands; MQTT 5 over the broker's websockets listener (docs/crew.md). */
(function () {
  "use strict";

  var M = CrewModel;
  var PREFIX = M.PREFIX, IMPACTS = M.IMPACTS, STATION_ID = M.STATION_ID, USER_NAME = M.USER_NAME, ALERT_ID = M.ALERT_ID;
  var isObject = M.isObject, text = M.text, parse = M.parse, activeFaults = M.activeFaults, rankOf = M.rankOf;
  var NOTE_MAX = 200;
  var REPLY_WAIT_MS = 30000;
  var QUIET_MS = 11 * 60 * 1000;  /* a little over two telemetry intervals (300 s) */
  var TICK_MS = 15000;
  var LOGIN_KEY = "crew.login";
  var LANG_KEY = "crew.lang";
  var REFUSED_CODES = {134: true, 135: true};  /* CONNACK: bad user name or password, not authorized */
  /* Signed commands go to cmd/{topic}/{user}: the broker lets a crew sign with its own name only (docs/mqtt.md). */
  var COMMANDS = {
    service_start: {topic: "service", signed: true, args: function () { return {on: true}; }},
    service_end: {topic: "service", signed: true, args: function () { return {on: false}; }},
    terminal_status: {topic: "terminal/status", args: function () { return {}; }},
    restart: {topic: "restart", args: function () { return {}; }},
    fixed: {topic: "fixed", signed: true, args: function (extra) { return {component: extra.component, note: extra.note}; }}
  };
  var CONFIRMED = ["service_start", "service_end", "terminal_status", "restart"];

  var state = {
    lang: "en", user: null, password: null, client: null, connected: false, everConnected: false,
    staleSince: null, replyTag: null, stations: {}, alerts: {}, pending: {}, results: {},
    confirm: null, notice: null, loginError: null, ackAsked: false, renderQueued: false
  };

  /* Texts and times */

  function t(key, params) {
    var table = CREW_TEXTS[state.lang] || CREW_TEXTS.en;
    var text = table[key] !== undefined ? table[key] : CREW_TEXTS.en[key];
    return String(text).replace(/\{(\w+)\}/g, function (whole, name) {
      return params && params[name] !== undefined && params[name] !== null ? String(params[name]) : whole;
    });
  }

  function pad(n) { return n < 10 ? "0" + n : String(n); }

  function fmtTime(value) {
    var date = value instanceof Date ? value : new Date(value);
    if (isNaN(date.getTime())) { return String(value); }
    var time = pad(date.getHours()) + ":" + pad(date.getMinutes());
    var now = new Date();
    if (date.toDateString() === now.toDateString()) { return time; }
    var months = t("months").split(" ");
    return t("date.format", {day: date.getDate(), month: months[date.getMonth()], time: time});
  }

  function chooseLanguage() {
    var stored = localStorage.getItem(LANG_KEY);
    if (stored && CREW_TEXTS[stored]) { return stored; }
    var wanted = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || "en"];
    for (var i = 0; i < wanted.length; i++) {
      var base = String(wanted[i]).toLowerCase().split("-")[0];
      if (CREW_TEXTS[base]) { return base; }
    }
    return "en";
  }

  /* DOM helpers: every text goes in through textContent, never as HTML. */

  function $(id) { return document.getElementById(id); }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      if (name === "text") { node.textContent = attrs.text; } else if (name === "onclick") { node.addEventListener("click", attrs.onclick); } else { node.setAttribute(name, attrs[name]); }
    });
    (children || []).forEach(function (child) { if (child) { node.appendChild(child); } });
    return node;
  }

  function randomHex(bytes) {
    var values = new Uint8Array(bytes);
    crypto.getRandomValues(values);
    return Array.prototype.map.call(values, function (b) { return pad16(b); }).join("");
  }

  function pad16(b) { return (b < 16 ? "0" : "") + b.toString(16); }

  /* What arrives */

  function station(id) {
    if (!state.stations[id]) { state.stations[id] = M.newStation(id); }
    return state.stations[id];
  }

  function onMessage(topic, payload, packet) {
    var levels = topic.split("/");
    if (levels.length < 4 || levels[0] + "/" + levels[1] !== PREFIX) { return; }
    var body = new TextDecoder().decode(payload);
    if (levels[2] === "_alerts" && levels.length === 4) { return onAlert(levels[3], body); }
    if (levels[2].charAt(0) === "_" || !STATION_ID.test(levels[2])) { return; }
    if (levels[3] === "reply") { return onReply(levels[2], packet, body); }
    if (M.apply(station(levels[2]), levels[3], levels.slice(4), parse(body), new Date())) { renderSoon(); }
  }

  function onAlert(id, body) {
    if (!ALERT_ID.test(id)) { return; }
    var data = parse(body);
    if (body === "" || !isObject(data)) { delete state.alerts[id]; } else { state.alerts[id] = data; }
    renderSoon();
  }

  function onReply(stationId, packet, body) {
    var raw = packet.properties && packet.properties.correlationData;
    var correlation = raw ? new TextDecoder().decode(raw) : "";
    var pending = state.pending[correlation];
    var data = parse(body);
    if (!pending || pending.station !== stationId || !isObject(data)) { return; }
    clearTimeout(pending.timer);
    delete state.pending[correlation];
    state.results[stationId] = {command: pending.command, state: data.ok === true ? "ok" : "refused", reply: data};
    if (pending.command === "fixed" && data.ok === true) { $("fixed-note").value = ""; }
    render();
  }

  /* Rendering */

  function faultItem(component, fault) {
    var active = fault.active === true;
    var when = fault.since ? t(active ? "fault.since" : "fault.cleared", {time: fmtTime(fault.since)}) : "";
    var impact = active && IMPACTS.indexOf(fault.parker_impact) >= 0 ? t("impact." + fault.parker_impact) : "";
    return el("li", {"class": "fault " + (active ? "active sev-" + text(fault.severity) : "cleared")}, [
      el("p", {"class": "what"}, [
        el("span", {"class": "component", text: component + ": " + text(fault.code)}), document.createTextNode(" "),
        el("span", {"class": "since", text: when})]),
      text(fault.message) ? el("p", {"class": "message", text: fault.message}) : null,
      impact ? el("p", {"class": "impact", text: impact}) : null
    ]);
  }

  function telemetryLine(st) {
    var data = st.telemetry;
    if (!data) { return el("p", {"class": "telemetry none", text: t("telemetry.none")}); }
    var link = isObject(data.link) ? text(data.link.state) : "";
    var temp = typeof data.cpu_temp_c === "number" ? data.cpu_temp_c.toFixed(1) + " °C" : t("telemetry.no_temp");
    return el("p", {"class": "telemetry", text: t("telemetry.line", {
      terminal: text(data.terminal) || "?", link: link || "?", outbox: typeof data.outbox_depth === "number" ? data.outbox_depth : "?",
      temp: temp, time: fmtTime(typeof data.ts === "string" ? data.ts : st.seen)})});
  }

  function stationCard(st, detail) {
    var rank = rankOf(st);
    var zone = st.status && text(st.status.zone);
    var components = Object.keys(st.faults).sort();
    var shown = components.filter(function (c) { return detail || st.faults[c].active === true; });
    var quiet = st.seen && st.status && st.status.state === "online" && Date.now() - st.seen.getTime() > QUIET_MS;
    var title = detail ? el("h2", {"class": "name", text: st.id}) :
      el("h3", {"class": "name"}, [el("button", {"type": "button", "class": "open", "data-focus": "open:" + st.id, "aria-label": st.id + " – " + t("station.open"),
        text: st.id, onclick: function () { openStation(st.id); }})]);
    return el(detail ? "div" : "li", {"class": "station rank-" + rank, "data-station": st.id}, [
      el("div", {"class": "head"}, [title, el("span", {"class": "badge", text: t("rank." + rank)})]),
      zone ? el("p", {"class": "zone", text: t("station.zone", {zone: zone})}) : null,
      quiet ? el("p", {"class": "quiet", text: t("stale.quiet", {time: fmtTime(st.seen)})}) : null,
      shown.length ? el("ul", {"class": "faults"}, shown.map(function (c) { return faultItem(c, st.faults[c]); })) :
        el("p", {"class": "faults none", text: t("fault.none")}),
      telemetryLine(st)
    ]);
  }

  function alertItem(alert, id) {
    var acked = alert.state === "acknowledged";
    var stations = Array.isArray(alert.stations) ? alert.stations.filter(function (s) { return typeof s === "string"; }) : [];
    var severity = M.SEVERITY_ORDER.hasOwnProperty(alert.severity) ? t("severity." + alert.severity) : "";
    var meta = [severity, alert.since ? t("alert.since", {time: fmtTime(alert.since)}) : "",
      alert.group ? t("alert.group", {group: alert.group}) : ""].filter(Boolean).join(" · ");
    return el("li", {"class": "alert sev-" + text(alert.severity) + (acked ? " acked" : ""), "data-alert": id}, [
      el("p", {"class": "title", text: text(alert.title) || id}),
      el("p", {"class": "meta", text: meta}),
      text(alert.message) ? el("p", {"class": "message", text: alert.message}) : null,
      stations.length ? el("p", {"class": "stations"}, stations.map(function (s) {
        return el("button", {"type": "button", "class": "link", "data-focus": "alert-station:" + id + ":" + s, text: s, onclick: function () { openStation(s); }});
      })) : null,
      acked ? el("p", {"class": "acked", text: t("alert.acked", {user: text(alert.acked_by), time: fmtTime(alert.acked_at)})}) :
        el("button", {"type": "button", "class": "ack", "data-focus": "ack:" + id, text: t("alert.ack"), onclick: function () { askAck(id); }})
    ]);
  }

  function resultText(result) {
    var name = t("cmd." + result.command);
    if (result.state === "sent") { return t("cmd.sent", {command: name}); }
    if (result.state === "no_answer") { return t("cmd.no_answer", {command: name}); }
    var reply = result.reply;
    var parts = [result.state === "ok" ? t("cmd.ok", {command: name}) : t("cmd.refused", {command: name, code: text(reply.code)})];
    if (text(reply.detail)) { parts.push(reply.detail); }
    Object.keys(reply).forEach(function (key) {
      if (["ok", "code", "detail", "fault_active", "recorded_at"].indexOf(key) >= 0) { return; }
      parts.push(key + ": " + (typeof reply[key] === "string" ? reply[key] : JSON.stringify(reply[key])));
    });
    if (typeof reply.fault_active === "boolean") { parts.push(t(reply.fault_active ? "fixed.active" : "fixed.cleared")); }
    return parts.join(" · ");
  }

  /* Lists are replaced only when what they show changed: a tap on a button is never lost to a redraw of the same. */
  function replaceIfChanged(container, nodes) {
    var html = nodes.map(function (node) { return node.outerHTML; }).join("");
    if (container.innerHTML !== html) { container.replaceChildren.apply(container, nodes); }
  }

  /* Messages come in bursts (a fleet's retained state at sign-in): one redraw per frame for all of them. */
  function renderSoon() {
    if (state.renderQueued) { return; }
    state.renderQueued = true;
    requestAnimationFrame(function () { state.renderQueued = false; render(); });
  }

  function renderTexts() {
    document.documentElement.lang = state.lang;
    document.title = t("app.title");
    Array.prototype.forEach.call(document.querySelectorAll("[data-text]"), function (node) {
      node.textContent = t(node.getAttribute("data-text"));
    });
    Array.prototype.forEach.call(document.querySelectorAll("[data-lang]"), function (node) {
      node.textContent = CREW_TEXTS[node.getAttribute("data-lang")]["lang.name"];
      node.setAttribute("aria-pressed", String(node.getAttribute("data-lang") === state.lang));
    });
  }

  function renderConnection() {
    var conn = $("conn");
    conn.className = state.connected ? "ok" : state.staleSince ? "stale" : "waiting";
    conn.replaceChildren();
    if (state.connected) {
      conn.textContent = t("conn.connected");
    } else if (state.staleSince) {
      conn.appendChild(el("strong", {"class": "stale-since", text: t("stale.since", {time: fmtTime(state.staleSince)})}));
      conn.appendChild(el("span", {text: " " + t("stale.detail")}));
    } else {
      conn.textContent = t("conn.waiting");
    }
  }

  function render() {
    var focused = document.activeElement && document.activeElement.getAttribute("data-focus");
    renderLists();
    if (focused && !$("confirm").open) {
      var again = document.querySelector("[data-focus=\"" + CSS.escape(focused) + "\"]");
      if (again) { again.focus(); }
    }
  }

  function renderLists() {
    renderTexts();
    var signedIn = state.user !== null;
    $("login").hidden = signedIn;
    $("main").hidden = !signedIn;
    $("session").hidden = !signedIn;
    $("login-error").textContent = state.loginError ? t(state.loginError) : "";
    if (!signedIn) { return; }
    $("who").textContent = t("signed.in", {user: state.user});
    renderConnection();
    $("notice").textContent = state.notice ? t(state.notice.key, state.notice.params) : "";
    var detailId = currentStation();
    var alertIds = M.sortAlerts(state.alerts).filter(function (id) {
      return detailId === null || (Array.isArray(state.alerts[id].stations) && state.alerts[id].stations.indexOf(detailId) >= 0);
    });
    replaceIfChanged($("alert-list"), alertIds.map(function (id) { return alertItem(state.alerts[id], id); }));
    $("alerts-none").hidden = alertIds.length > 0;
    $("alerts").hidden = detailId !== null && alertIds.length === 0;
    $("back").hidden = detailId === null;
    $("list").hidden = detailId !== null;
    $("detail").hidden = detailId === null;
    if (detailId === null) {
      var list = M.sortStations(state.stations);
      replaceIfChanged($("station-list"), list.map(function (st) { return stationCard(st, false); }));
      $("stations-none").hidden = list.length > 0;
    } else {
      renderDetail(detailId);
    }
    renderConfirm();
  }

  function renderDetail(id) {
    var st = state.stations[id];
    replaceIfChanged($("detail-info"), [st ? stationCard(st, true) : el("p", {text: t("station.unknown", {id: id})})]);
    var result = state.results[id];
    $("result").textContent = result ? resultText(result) : "";
    $("result").className = result ? "result " + result.state : "result";
    Array.prototype.forEach.call(document.querySelectorAll("#actions button[data-command], #fixed button"), function (button) {
      button.disabled = !state.connected;
    });
    var select = $("fixed-component");
    var chosen = select.value;
    var components = st ? activeFaults(st).map(function (item) { return item.component; }).concat(
      Object.keys(st.faults).sort().filter(function (c) { return st.faults[c].active !== true; })) : [];
    if (components.join("\n") !== Array.prototype.map.call(select.options, function (o) { return o.value; }).join("\n")) {
      select.replaceChildren.apply(select, components.map(function (c) { return el("option", {value: c, text: c}); }));
      if (components.indexOf(chosen) >= 0) { select.value = chosen; }
    }
  }

  /* The confirm dialog: commands and acknowledgements */

  function renderConfirm() {
    var dialog = $("confirm");
    var ask = state.confirm;
    if (!ask) { if (dialog.open) { dialog.close(); } return; }
    var okButton = $("confirm-ok");
    okButton.disabled = !state.connected;
    $("confirm-note-row").hidden = ask.kind !== "ack";
    if (ask.kind === "ack") {
      var alert = state.alerts[ask.id];
      if (alert && alert.state === "acknowledged") {
        $("confirm-text").textContent = t("alert.ack.already", {title: text(alert.title) || ask.id, user: text(alert.acked_by)});
        okButton.disabled = true;
      } else {
        $("confirm-text").textContent = alert ? t("alert.ack.question", {title: text(alert.title) || ask.id}) :
          t("alert.ack.unknown", {id: ask.id});
      }
    } else {
      $("confirm-text").textContent = t("cmd.question", {command: t("cmd." + ask.command), station: ask.station});
    }
    if (!dialog.open) {
      $("confirm-note").value = "";
      dialog.showModal();
      okButton.focus();
    }
  }

  function askAck(id) {
    state.confirm = {kind: "ack", id: id};
    render();
  }

  function askCommand(command) {
    state.confirm = {kind: "command", command: command, station: currentStation()};
    render();
  }

  function confirmed() {
    var ask = state.confirm;
    state.confirm = null;
    if (ask && ask.kind === "ack") { sendAck(ask.id, $("confirm-note").value.trim().slice(0, NOTE_MAX)); }
    if (ask && ask.kind === "command") { sendCommand(ask.station, ask.command, {}); }
    render();
  }

  function cancelled() {
    if (state.confirm && state.confirm.kind === "ack") { forgetAckLink(); }
    state.confirm = null;
    render();
  }

  /* What the page sends */

  function sendAck(id, note) {
    if (!state.connected) { state.notice = {key: "cmd.offline"}; return; }
    var alert = state.alerts[id];
    var title = alert ? text(alert.title) || id : id;
    state.client.publish(PREFIX + "/_ack/" + state.user + "/" + id, JSON.stringify(note ? {note: note} : {}), {qos: 1, retain: false},
      function (error) {
        if (!error) { state.notice = {key: "alert.ack.sent", params: {title: title}}; render(); }
      });
    forgetAckLink();
  }

  function sendCommand(stationId, command, extra) {
    if (!state.connected || !stationId) { state.notice = {key: "cmd.offline"}; return; }
    var spec = COMMANDS[command];
    var correlation = randomHex(16);
    state.pending[correlation] = {station: stationId, command: command, timer: setTimeout(function () {
      if (state.pending[correlation]) {
        delete state.pending[correlation];
        state.results[stationId] = {command: command, state: "no_answer"};
        render();
      }
    }, REPLY_WAIT_MS)};
    state.results[stationId] = {command: command, state: "sent"};
    var topic = PREFIX + "/" + stationId + "/cmd/" + spec.topic + (spec.signed ? "/" + state.user : "");
    state.client.publish(topic, JSON.stringify(spec.args(extra)), {
      qos: 1, retain: false,
      properties: {responseTopic: PREFIX + "/" + stationId + "/reply/" + state.replyTag, correlationData: correlation,
        payloadFormatIndicator: true, contentType: "application/json"}});
  }

  function submitFixed(event) {
    event.preventDefault();
    var stationId = currentStation();
    var component = $("fixed-component").value;
    var note = $("fixed-note").value.trim();
    $("fixed-error").textContent = "";
    if (!component) { $("fixed-error").textContent = t("fixed.need_component"); return; }
    if (note.length < 1 || note.length > NOTE_MAX) { $("fixed-error").textContent = t("fixed.need_note"); return; }
    sendCommand(stationId, "fixed", {component: component, note: note});
    render();
  }

  /* Navigation: ?station=ID and #ack=ID */

  function currentStation() {
    var id = new URLSearchParams(location.search).get("station");
    return id && STATION_ID.test(id) ? id : null;
  }

  function openStation(id) {
    history.pushState(null, "", "?station=" + encodeURIComponent(id));
    $("fixed-note").value = "";
    $("fixed-error").textContent = "";
    render();
    window.scrollTo(0, 0);
  }

  function closeStation() {
    history.pushState(null, "", location.pathname);
    render();
  }

  function ackFromLink() {
    var match = /^#ack=([a-z0-9-]{1,64})$/.exec(location.hash);
    return match ? match[1] : null;
  }

  function forgetAckLink() {
    if (ackFromLink()) { history.replaceState(null, "", location.pathname + location.search); }
  }

  /* The connection */

  function connect() {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var tag = randomHex(4);
    state.replyTag = "crew-" + state.user + "/" + tag;  /* the crew reads only reply/crew-{user}/# (docs/broker.md) */
    state.client = mqtt.connect(scheme + location.host + "/mqtt", {
      protocolVersion: 5, username: state.user, password: state.password, clientId: "crew-" + state.user + "-" + tag, clean: true,
      keepalive: 20, reconnectPeriod: 3000, connectTimeout: 10000, resubscribe: false});
    state.client.on("connect", onConnect);
    state.client.on("message", onMessage);
    state.client.on("close", onDown);
    state.client.on("error", onError);
  }

  function onConnect() {
    state.connected = true;
    state.everConnected = true;
    state.staleSince = null;
    state.loginError = null;
    state.alerts = {};  /* the retained alerts come again: one closed meanwhile must not linger */
    /* The retained state at QoS 0, which the broker writes out whole (at QoS 1 it queues 1,000 and drops the rest). */
    var topics = {};
    [PREFIX + "/+/status", PREFIX + "/+/fault/+", PREFIX + "/+/telemetry", PREFIX + "/_alerts/+"].forEach(function (topic) {
      topics[topic] = {qos: 0};
    });
    topics[PREFIX + "/+/reply/" + state.replyTag] = {qos: 1};
    state.client.subscribe(topics);
    var ackId = ackFromLink();
    if (ackId && !state.ackAsked) { state.ackAsked = true; state.confirm = {kind: "ack", id: ackId}; }
    render();
  }

  function onDown() {
    if (state.connected || (state.everConnected && !state.staleSince)) { state.staleSince = new Date(); }
    state.connected = false;
    render();
  }

  function onError(error) {
    if (error && REFUSED_CODES[error.code]) {
      signOut();
      state.loginError = "login.refused";
      render();
    }
  }

  function signIn(event) {
    event.preventDefault();
    var user = $("user").value.trim();
    var password = $("password").value;
    if (!user || !password) { state.loginError = "login.missing"; render(); return; }
    if (!USER_NAME.test(user)) { state.loginError = "login.bad_user"; render(); return; }
    sessionStorage.setItem(LOGIN_KEY, JSON.stringify({user: user, password: password}));
    $("password").value = "";
    start(user, password);
  }

  function start(user, password) {
    state.user = user;
    state.password = password;
    state.loginError = null;
    render();
    connect();
  }

  function signOut() {
    sessionStorage.removeItem(LOGIN_KEY);
    if (state.client) { state.client.end(true); }
    Object.keys(state.pending).forEach(function (c) { clearTimeout(state.pending[c].timer); });
    state.client = null;
    state.user = state.password = null;
    state.connected = state.everConnected = false;
    state.staleSince = state.confirm = state.notice = null;
    state.stations = {};
    state.alerts = {};
    state.pending = {};
    state.results = {};
    render();
  }

  function setLanguage(lang) {
    state.lang = lang;
    localStorage.setItem(LANG_KEY, lang);
    render();
  }

  function init() {
    state.lang = chooseLanguage();
    $("login-form").addEventListener("submit", signIn);
    $("logout").addEventListener("click", signOut);
    $("back").addEventListener("click", closeStation);
    $("confirm-ok").addEventListener("click", confirmed);
    $("confirm-cancel").addEventListener("click", cancelled);
    $("confirm").addEventListener("cancel", function (event) { event.preventDefault(); cancelled(); });
    $("fixed").addEventListener("submit", submitFixed);
    Array.prototype.forEach.call(document.querySelectorAll("[data-lang]"), function (button) {
      button.addEventListener("click", function () { setLanguage(button.getAttribute("data-lang")); });
    });
    Array.prototype.forEach.call(document.querySelectorAll("#actions button[data-command]"), function (button) {
      var command = button.getAttribute("data-command");
      if (CONFIRMED.indexOf(command) >= 0) { button.addEventListener("click", function () { askCommand(command); }); }
    });
    window.addEventListener("popstate", render);
    setInterval(render, TICK_MS);  /* the "since" and "no data since" markers age */
    var saved = parse(sessionStorage.getItem(LOGIN_KEY) || "");
    if (isObject(saved) && typeof saved.user === "string" && USER_NAME.test(saved.user) && typeof saved.password === "string") {
      start(saved.user, saved.password);
    } else {
      render();
    }
  }

  document.addEventListener("DOMContentLoaded", init);
}());
