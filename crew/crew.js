/* The crew page: stations by urgency, open alerts, service commands; MQTT 5 over the broker's websockets listener (docs/crew.md). */
(function () {
  "use strict";

  var M = CrewModel;
  var OUTCOME = CrewLink.OUTCOME;
  var PREFIX = M.PREFIX, STATION_ID = M.STATION_ID, USER_NAME = M.USER_NAME, ALERT_ID = M.ALERT_ID;
  var dict = M.dict, has = M.has, isObject = M.isObject, text = M.text, parse = M.parse, activeFaults = M.activeFaults;
  var REPLY_WAIT_MS = 30000;
  var QUIET_MS = 11 * 60 * 1000;  /* a little over two telemetry intervals (300 s) */
  var TICK_MS = 15000;
  var LOGIN_KEY = "crew.login";
  var LANG_KEY = "crew.lang";
  /* Signed commands go to cmd/{topic}/{user}: the broker lets a crew sign with its own name only (docs/mqtt.md). */
  var COMMANDS = {
    service_start: {topic: "service", signed: true, args: function () { return {on: true}; }},
    service_end: {topic: "service", signed: true, args: function () { return {on: false}; }},
    terminal_status: {topic: "terminal/status", args: function () { return {}; }},
    restart: {topic: "restart", args: function () { return {}; }},
    fixed: {topic: "fixed", signed: true, args: function (extra) { return {component: extra.component, note: extra.note}; }}
  };
  var CONFIRMED = ["service_start", "service_end", "terminal_status", "restart"];
  var SINCE_KEYS = {lost: "station.lost_since", offline: "station.offline_since"};

  var state = {
    lang: "en", user: null, link: null, connected: false, everConnected: false, lastHeard: null, staleSince: null,
    stations: dict(), previous: dict(), alerts: dict(), pending: dict(), results: dict(),
    confirm: null, notice: null, loginError: null, ackAsked: null, renderQueued: false
  };

  /* Texts and times */

  function t(key, params) {
    var table = CREW_TEXTS[state.lang] || CREW_TEXTS.en;
    var value = has(table, key) ? table[key] : CREW_TEXTS.en[key];
    return String(value).replace(/\{(\w+)\}/g, function (whole, name) {
      if (!params || !has(params, name)) { return whole; }
      var param = params[name];  /* a time is a Date, or null when the message had none that parses */
      return param instanceof Date || param === null ? fmtTime(param) : String(param);
    });
  }

  function pad(n) { return n < 10 ? "0" + n : String(n); }

  /* A time (a Date from the model, null when the message had none that parses) in the phone's local time. */
  function fmtTime(date) {
    if (!(date instanceof Date) || isNaN(date.getTime())) { return t("time.unknown"); }
    var time = pad(date.getHours()) + ":" + pad(date.getMinutes());
    if (date.toDateString() === new Date().toDateString()) { return time; }
    var months = t("months").split(" ");
    return t("date.format", {day: date.getDate(), month: months[date.getMonth()], time: time});
  }

  function chooseLanguage() {
    var stored = localStorage.getItem(LANG_KEY);
    if (stored && has(CREW_TEXTS, stored)) { return stored; }
    var wanted = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || "en"];
    for (var i = 0; i < wanted.length; i++) {
      var base = String(wanted[i]).toLowerCase().split("-")[0];
      if (has(CREW_TEXTS, base)) { return base; }
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

  /* What arrives: each message on its own, so that one bad message is dropped (and logged) and never stops the others. */

  function station(id) {
    if (!state.stations[id]) {
      var st = state.stations[id] = M.newStation(id);
      var before = state.previous[id];  /* telemetry is not retained: keep the last one over a reconnect */
      if (before) { st.telemetry = before.telemetry; st.seen = before.seen; }
    }
    return state.stations[id];
  }

  function onMessage(topic, body, correlation) {
    state.lastHeard = new Date();
    try {
      handle(topic, body, correlation);
    } catch (error) {
      console.error("crew page: dropped the message on " + topic + ":", error);
    }
  }

  function handle(topic, body, correlation) {
    var levels = topic.split("/");
    if (levels.length < 4 || levels[0] + "/" + levels[1] !== PREFIX) { return; }
    if (levels[2] === "_alerts" && levels.length === 4) { return onAlert(levels[3], body); }
    if (levels[2].charAt(0) === "_" || !STATION_ID.test(levels[2])) { return; }
    if (levels[3] === "reply") { return onReply(levels[2], correlation, body); }
    var st = station(levels[2]);
    var changed = M.apply(st, levels[3], levels.slice(4), body, new Date());
    if (M.isEmpty(st)) { delete state.stations[st.id]; }
    if (changed) { renderSoon(); }
  }

  function onAlert(id, body) {
    if (!ALERT_ID.test(id)) { return; }
    var alert = body === "" ? null : M.cleanAlert(id, parse(body));
    if (alert) { state.alerts[id] = alert; } else if (body === "") { delete state.alerts[id]; } else { return; }
    renderSoon();
  }

  function onReply(stationId, correlation, body) {
    var pending = state.pending[correlation];
    var data = parse(body);
    if (!pending || pending.station !== stationId || !isObject(data)) { return; }
    clearTimeout(pending.timer);
    delete state.pending[correlation];
    setResult(stationId, correlation, {command: pending.command, state: data.ok === true ? "ok" : "refused", reply: data});
    if (pending.command === "fixed" && data.ok === true) { $("fixed-note").value = ""; }
  }

  /* A command's result, unless a newer command to the station has one already. */
  function setResult(stationId, correlation, result) {
    var shown = state.results[stationId];
    if (shown && shown.correlation !== correlation) { return; }
    result.correlation = correlation;
    state.results[stationId] = result;
    render();
  }

  /* Rendering: never throws, whatever arrived (the model has checked every value). */

  function faultItem(component, fault) {
    var when = t(fault.active ? "fault.since" : "fault.cleared", {time: fault.since});
    var impact = fault.active && fault.impact ? t("impact." + fault.impact) : "";
    return el("li", {"class": "fault " + (fault.active ? "active sev-" + fault.severity : "cleared")}, [
      el("p", {"class": "what"}, [
        el("span", {"class": "component", text: component + ": " + fault.code}), document.createTextNode(" "),
        el("span", {"class": "since", text: when})]),
      fault.message ? el("p", {"class": "message", text: fault.message}) : null,
      impact ? el("p", {"class": "impact", text: impact}) : null
    ]);
  }

  function telemetryLine(st) {
    var data = st.telemetry;
    if (!data) { return el("p", {"class": "telemetry none", text: t("telemetry.none")}); }
    return el("p", {"class": "telemetry", text: t("telemetry.line", {
      terminal: data.terminal || "?", link: data.link || "?", outbox: data.outbox === null ? "?" : data.outbox,
      temp: data.temp === null ? t("telemetry.no_temp") : data.temp.toFixed(1) + " °C", time: data.ts || st.seen})});
  }

  function stationCard(st, detail) {
    var rank = M.rankOf(st);
    var status = st.status || {state: "", zone: "", since: null};
    var sinceKey = has(SINCE_KEYS, status.state) ? SINCE_KEYS[status.state] : "";
    var shown = Object.keys(st.faults).sort().filter(function (c) { return detail || st.faults[c].active; });
    var quiet = st.seen && status.state === "online" && Date.now() - st.seen.getTime() > QUIET_MS;
    var title = detail ? el("h2", {"class": "name", text: st.id}) :
      el("h3", {"class": "name"}, [el("button", {"type": "button", "class": "open", "data-focus": "open:" + st.id, "aria-label": st.id + " – " + t("station.open"),
        text: st.id, onclick: function () { openStation(st.id); }})]);
    return el(detail ? "div" : "li", {"class": "station rank-" + rank, "data-station": st.id}, [
      el("div", {"class": "head"}, [title, el("span", {"class": "badge", text: t("rank." + rank)})]),
      status.zone ? el("p", {"class": "zone", text: t("station.zone", {zone: status.zone})}) : null,
      sinceKey ? el("p", {"class": "state-since", text: t(sinceKey, {time: status.since})}) : null,
      quiet ? el("p", {"class": "quiet", text: t("stale.quiet", {time: st.seen})}) : null,
      shown.length ? el("ul", {"class": "faults"}, shown.map(function (c) { return faultItem(c, st.faults[c]); })) :
        sinceKey ? null : el("p", {"class": "faults none", text: t("fault.none")}),
      telemetryLine(st)
    ]);
  }

  function alertItem(alert) {
    var id = alert.id;
    var meta = [alert.severity ? t("severity." + alert.severity) : "", alert.since ? t("alert.since", {time: alert.since}) : "",
      alert.group ? t("alert.group", {group: alert.group}) : ""].filter(Boolean).join(" · ");
    return el("li", {"class": "alert sev-" + alert.severity + (alert.acked ? " acked" : ""), "data-alert": id}, [
      el("p", {"class": "title", text: alert.title}),
      el("p", {"class": "meta", text: meta}),
      alert.message ? el("p", {"class": "message", text: alert.message}) : null,
      alert.stations.length ? el("p", {"class": "stations"}, alert.stations.map(function (s) {
        return el("button", {"type": "button", "class": "link", "data-focus": "alert-station:" + id + ":" + s, text: s, onclick: function () { openStation(s); }});
      })) : null,
      alert.acked ? el("p", {"class": "acked", text: t("alert.acked", {user: alert.ackedBy, time: alert.ackedAt})}) :
        el("button", {"type": "button", "class": "ack", "data-focus": "ack:" + id, "aria-label": t("alert.ack.label", {title: alert.title}),
          text: t("alert.ack"), onclick: function () { askAck(id); }})
    ]);
  }

  function resultText(result) {
    var name = t("cmd." + result.command);
    if (result.state !== "ok" && result.state !== "refused") { return t("cmd." + result.state, {command: name}); }
    var reply = result.reply;
    var parts = [result.state === "ok" ? t("cmd.ok", {command: name}) :
      t("cmd.refused", {command: name, reason: t(M.codeKey(reply), {code: text(reply.code) || "?"})})];
    if (text(reply.detail)) { parts.push(reply.detail); }
    M.replyFacts(result.command, reply).forEach(function (fact) { parts.push(t(fact[0], fact[1])); });
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
    Array.prototype.forEach.call(document.querySelectorAll("[data-label]"), function (node) {
      node.setAttribute("aria-label", t(node.getAttribute("data-label")));
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
      conn.appendChild(el("strong", {"class": "stale-since", text: t("stale.since", {time: state.staleSince})}));
      conn.appendChild(el("span", {text: " " + t("stale.detail")}));
    } else {
      conn.textContent = t("conn.waiting");
    }
  }

  function render() {
    try {
      var focused = document.activeElement && document.activeElement.getAttribute("data-focus");
      renderLists();
      if (focused && !$("confirm").open) {
        var again = document.querySelector("[data-focus=\"" + CSS.escape(focused) + "\"]");
        if (again) { again.focus(); }
      }
    } catch (error) {
      console.error("crew page: cannot draw the page:", error);
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
      return detailId === null || state.alerts[id].stations.indexOf(detailId) >= 0;
    });
    replaceIfChanged($("alert-list"), alertIds.map(function (id) { return alertItem(state.alerts[id]); }));
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
      Object.keys(st.faults).sort().filter(function (c) { return !st.faults[c].active; })) : [];
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
      if (!alert) {
        $("confirm-text").textContent = t("alert.ack.unknown", {id: ask.id});
        okButton.disabled = true;
      } else if (alert.acked) {
        $("confirm-text").textContent = t("alert.ack.already", {title: alert.title, user: alert.ackedBy});
        okButton.disabled = true;
      } else {
        $("confirm-text").textContent = t("alert.ack.question", {title: alert.title});
      }
    } else {
      $("confirm-text").textContent = t("cmd.question", {command: t("cmd." + ask.command), station: ask.station});
    }
    if (!dialog.open) {
      $("confirm-note").value = "";
      $("confirm-error").textContent = "";
      dialog.showModal();
      (ask.kind === "ack" ? $("confirm-note") : okButton).focus();  /* a second Enter after signing in confirms nothing */
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
    if (ask && ask.kind === "ack") {
      var note = $("confirm-note").value.trim();
      var problem = M.noteProblem(note, true);
      if (problem) { $("confirm-error").textContent = t(problem); return; }
      sendAck(ask.id, note);
    }
    if (ask && ask.kind === "command") { sendCommand(ask.station, ask.command, {}); }
    state.confirm = null;
    render();
  }

  function cancelled() {
    if (state.confirm && state.confirm.kind === "ack") { forgetAckLink(); }
    state.confirm = null;
    render();
  }

  /* What the page sends */

  function sendAck(id, note) {
    forgetAckLink();
    if (!state.connected) { state.notice = {key: "cmd.offline"}; return; }
    var title = state.alerts[id] ? state.alerts[id].title : id;
    state.link.publish(PREFIX + "/_ack/" + state.user + "/" + id, note ? {note: note} : {}, function (outcome) {
      state.notice = {key: "alert.ack." + outcome, params: {title: title}};
      render();
    });
  }

  function sendCommand(stationId, command, extra) {
    if (!state.connected || !stationId) { state.notice = {key: "cmd.offline"}; return; }
    var spec = COMMANDS[command];
    var topic = PREFIX + "/" + stationId + "/cmd/" + spec.topic + (spec.signed ? "/" + state.user : "");
    var correlation = state.link.request(stationId, topic, spec.args(extra), function (outcome) {
      if (outcome === OUTCOME.SENT || !state.pending[correlation]) { return; }
      clearTimeout(state.pending[correlation].timer);
      delete state.pending[correlation];
      setResult(stationId, correlation, {command: command, state: outcome});
    });
    state.pending[correlation] = {station: stationId, command: command, timer: setTimeout(function () {
      if (state.pending[correlation]) {
        delete state.pending[correlation];
        setResult(stationId, correlation, {command: command, state: "no_answer"});
      }
    }, REPLY_WAIT_MS)};
    state.results[stationId] = {command: command, state: "sent", correlation: correlation};
  }

  function submitFixed(event) {
    event.preventDefault();
    var component = $("fixed-component").value;
    var note = $("fixed-note").value.trim();
    var problem = component ? M.noteProblem(note, false) : "fixed.need_component";
    $("fixed-error").textContent = problem ? t(problem) : "";
    if (problem) { return; }
    sendCommand(currentStation(), "fixed", {component: component, note: note});
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

  /* Ask once per link: after sign-in, and when the address gets a new #ack= while the page is open. */
  function askFromLink() {
    var ackId = ackFromLink();
    if (ackId && state.connected && state.ackAsked !== ackId) { state.ackAsked = ackId; state.confirm = {kind: "ack", id: ackId}; }
  }

  /* The connection (crew-link.js) */

  var LINK_EVENTS = {
    connected: function () {
      state.connected = state.everConnected = true;
      state.staleSince = state.loginError = null;
      state.lastHeard = new Date();
      /* Rebuilt from the retained messages that come again: what the broker dropped meanwhile must not linger. */
      state.previous = state.stations;
      state.stations = dict();
      state.alerts = dict();
      askFromLink();
      render();
    },
    down: function () {
      if (state.user === null) { return; }
      if (state.connected || (state.everConnected && !state.staleSince)) { state.staleSince = state.lastHeard || new Date(); }
      state.connected = false;
      render();
    },
    refused: function () {
      signOut();
      state.loginError = "login.refused";
      render();
    },
    message: onMessage,
    denied: function (topics) {
      console.error("crew page: the broker refused the subscriptions", topics);
      state.notice = {key: "subscribe.denied"};
      render();
    }
  };

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
    state.loginError = null;
    render();
    state.link = CrewLink.open(user, password, LINK_EVENTS);
  }

  function signOut() {
    sessionStorage.removeItem(LOGIN_KEY);
    Object.keys(state.pending).forEach(function (c) { clearTimeout(state.pending[c].timer); });
    state.user = null;
    if (state.link) { state.link.end(); }
    state.link = null;
    state.connected = state.everConnected = false;
    state.staleSince = state.confirm = state.notice = state.lastHeard = null;
    state.stations = dict();
    state.previous = dict();
    state.alerts = dict();
    state.pending = dict();
    state.results = dict();
    render();
  }

  function setLanguage(lang) {
    state.lang = lang;
    localStorage.setItem(LANG_KEY, lang);
    render();
  }

  /* Framed by another page (clickjacking: mosquitto's http_dir cannot send X-Frame-Options), the page does nothing. */
  function framed() {
    document.body.replaceChildren(el("p", {"id": "framed", text: t("framed")}));
  }

  function init() {
    state.lang = chooseLanguage();
    if (window.top !== window.self) { framed(); return; }
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
    window.addEventListener("hashchange", function () { askFromLink(); render(); });
    setInterval(render, TICK_MS);  /* the "since" and "no data since" markers age */
    var saved = parse(sessionStorage.getItem(LOGIN_KEY) || "");
    if (isObject(saved) && typeof saved.user === "string" && USER_NAME.test(saved.user) && typeof saved.password === "string") {
      start(saved.user, saved.password);
    } else {
      render();
    }
  }

  if (window.top !== window.self) { document.documentElement.className = "framed"; }
  document.addEventListener("DOMContentLoaded", init);
}());
