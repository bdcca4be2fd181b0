/* The watch page's player and its beacons (templates/watch.html).
 *
 * When beacons go is not decided here: the page gives this script the table of
 * sto_events/player.py (BEACON_RULES), and on() only looks it up. The rules, as stated there:
 *
 * - Join on the first frame played ("playing", not the click on play: a stream that does not
 *   answer never joins), heartbeats only while watching (or stalled, below), leave on pause,
 *   end, failure, or leaving the page (navigator.sendBeacon).
 * - A stall: while the player buffers, heartbeats go on for STALL_LIMIT_S (20 s); a longer
 *   stall sends a leave, and playing again a new join.
 * - A hidden tab keeps counting while the player plays with sound; hidden and silent (muted
 *   or volume 0) sends a leave, and visible or audible again a new join. The Vimeo player
 *   cannot say synchronously whether it is muted: a hidden Vimeo tab counts while it plays.
 * - A stream that does not answer (HTTP error, manifest or media that fails) shows "De
 *   uitzending is nog niet beschikbaar", sends nothing, and is tried again every
 *   min(heartbeat, 15 s).
 *
 * Which player: HLS plays natively where the browser says it can
 * (video.canPlayType("application/vnd.apple.mpegurl")), with the vendored hls.js otherwise
 * (loaded only then, its transmuxer worker from our own static files, so the CSP needs no
 * blob: workers). YouTube and Vimeo play in their own iframe, followed through their official
 * iframe APIs (loaded by this script's nonce), whose states the page maps by the tables
 * YOUTUBE_STATES and VIMEO_EVENTS. Any other address is a link; it reports nothing.
 *
 * During a replay every beacon carries the player's position in the recording (position_s,
 * seconds; YouTube and HLS, not Vimeo, whose player answers only asynchronously).
 *
 * window.stoPlayer exposes the viewer id, the heartbeat, the session state and the number of
 * load attempts, for the browser tests.
 */
(function () {
  "use strict";
  var root = document.getElementById("speler");
  if (!root) { return; }
  var cfg = root.dataset;
  var plan = JSON.parse(document.getElementById("speler-regels").textContent);
  var nonce = (document.currentScript && document.currentScript.nonce) || "";
  var statusText = document.getElementById("kijkstatus");
  var heartbeatMs = Math.max(Number(cfg.heartbeatS) || 30, 5) * 1000;
  var retryEveryMs = Math.min(heartbeatMs, 15000);
  var viewer = viewerId();
  var mode = cfg.mode;
  var pageState = cfg.state;
  var session = "idle";
  var heartbeat = null, stallTimer = null, poller = null;
  var queue = [], retryMs = 2000, retryTimer = null;
  var player = null, attempts = 0, unavailableShown = false;

  function viewerId() {
    // A personal link the server verified; otherwise this browser's own anonymous id, which
    // counts in the live and view figures but never toward anyone's attendance.
    if (cfg.viewerId && cfg.viewerToken) { return cfg.viewerId; }
    var stored = null;
    try { stored = localStorage.getItem("sto-kijker-id"); } catch (e) { stored = null; }
    if (!stored) {
      var bytes = new Uint8Array(12);
      crypto.getRandomValues(bytes);
      stored = "anon-" + Array.prototype.map.call(bytes, function (b) {
        return ("0" + b.toString(16)).slice(-2); }).join("");
      try { localStorage.setItem("sto-kijker-id", stored); } catch (e) { /* private mode */ }
    }
    return stored;
  }

  function say(text, warning) {
    statusText.textContent = text;
    statusText.classList.toggle("warning", !!warning);
  }
  function stateText() {
    if (pageState === "replay") { return "De uitzending is afgelopen. Je kijkt de terugblik."; }
    return "De uitzending is live.";
  }

  // -- beacons ---------------------------------------------------------------------------------
  function beacon(action) {
    var item = { event_id: cfg.eventId, viewer_id: viewer, action: action, mode: mode,
                 client_ts: new Date().toISOString() };
    if (cfg.viewerToken) { item.viewer_token = cfg.viewerToken; }
    // During a replay: where in the recording the viewer is, so watch minutes count distinct
    // minutes of the recording. Live beacons carry none.
    var at = mode === "replay" && player ? player.position() : null;
    if (typeof at === "number" && isFinite(at) && at >= 0) {
      item.position_s = Math.min(Math.round(at * 10) / 10, 86400);
    }
    return item;
  }
  function send(items) {
    var body = JSON.stringify(items.length === 1 ? items[0] : items);
    return fetch(cfg.beaconUrl, { method: "POST", body: body, keepalive: true,
                                  headers: { "Content-Type": "text/plain" } })
      .then(function (answer) {
        // 409: not live (yet, or any more) as far as the endpoint knows; its status cache may
        // lag the page's by a second, and the status poll tells the end: try again.
        if (answer.status === 409 || answer.status >= 500) { throw new Error("opnieuw"); }
        retryMs = 2000;
        if (answer.status === 404) {
          on("refused");
          say("Deze uitzending is niet (meer) beschikbaar.", true);
        }
      })
      .catch(function () {
        if (session === "closed") { return; }
        queue = queue.concat(items).slice(-20);
        if (!retryTimer) {
          retryTimer = setTimeout(function () {
            retryTimer = null;
            var again = queue; queue = [];
            if (again.length && session !== "closed") { send(again); }
          }, retryMs);
          retryMs = Math.min(retryMs * 2, 30000);
        }
      });
  }
  function sendLeave() {
    var body = JSON.stringify(beacon("leave"));
    if (!(navigator.sendBeacon && navigator.sendBeacon(cfg.beaconUrl, body))) {
      fetch(cfg.beaconUrl, { method: "POST", body: body, keepalive: true,
                             headers: { "Content-Type": "text/plain" } }).catch(function () {});
    }
  }

  // The one place beacons are decided: sto_events.player.BEACON_RULES.
  function on(event) {
    var step = (plan.rules[session] || {})[event];
    if (!step) { return; }
    var action = step[0];
    session = step[1];
    if (action === "join") { send([beacon("join")]); }
    if (action === "leave") { sendLeave(); }
    var beating = plan.heartbeat_states.indexOf(session) >= 0;
    if (heartbeat && (action === "join" || !beating)) { clearInterval(heartbeat); heartbeat = null; }
    if (beating && !heartbeat) {
      heartbeat = setInterval(function () { send([beacon("heartbeat")]); }, heartbeatMs);
    }
    if (session === "stalled" && !stallTimer) {
      stallTimer = setTimeout(function () { stallTimer = null; on("stall_limit"); },
                              plan.stall_limit_s * 1000);
    } else if (session !== "stalled" && stallTimer) {
      clearTimeout(stallTimer); stallTimer = null;
    }
    if (session === "closed") { queue = []; }
  }
  function audience() {
    on(document.hidden && player && player.silent() ? "unseen" : "seen");
    if (session === "watching" && player && player.stalled()) { on("buffering"); }
  }
  // What a player reports: also what the viewer is told.
  function report(event) {
    if (event === "failed") { unavailable(); }
    if (event === "playing") { available(); }
    on(event);
    if (event === "playing") { audience(); }
  }
  function unavailable() {
    unavailableShown = true;
    say("De uitzending is nog niet beschikbaar. We proberen het over " +
        Math.round(retryEveryMs / 1000) + " seconden opnieuw.", true);
  }
  function available() {
    if (unavailableShown) { unavailableShown = false; say(stateText()); }
  }

  // -- players ---------------------------------------------------------------------------------
  function loadScript(src, loaded, failed) {
    var script = document.createElement("script");
    script.src = src;
    script.async = true;
    if (nonce) { script.nonce = nonce; }
    if (loaded) { script.addEventListener("load", loaded); }
    if (failed) { script.addEventListener("error", failed); }
    document.head.appendChild(script);
  }

  function hlsPlayer(video, url) {
    var native = !!video.canPlayType("application/vnd.apple.mpegurl");
    var hls = null, retry = null, wantsPlay = false, recovered = false;
    function failed() {
      report("failed");
      clearTimeout(retry);
      retry = setTimeout(load, retryEveryMs);
    }
    function play() {
      var started = video.play();
      if (started && started.catch) {
        started.catch(function (refused) {
          // The browser allows no autoplay with sound here: the viewer presses play.
          if (refused && refused.name === "NotAllowedError") {
            say("De uitzending is live. Druk op afspelen om te kijken.");
          }
        });
      }
    }
    function load() {
      attempts += 1;
      if (native) {
        video.src = url;
        video.load();
        if (wantsPlay) { play(); }
        return;
      }
      if (hls) { hls.destroy(); }
      var Hls = window.Hls;
      recovered = false;
      hls = new Hls({ workerPath: cfg.hlsWorker, autoStartLoad: true });
      hls.on(Hls.Events.MANIFEST_PARSED, function () { available(); if (wantsPlay) { play(); } });
      // Attaching (again, after a media error) resets the element to paused without a "pause"
      // event: a viewer who pressed play keeps playing.
      hls.on(Hls.Events.MEDIA_ATTACHED, function () { if (wantsPlay) { play(); } });
      hls.on(Hls.Events.ERROR, function (_name, error) {
        if (!error.fatal) { return; }
        if (error.type === Hls.ErrorTypes.MEDIA_ERROR && !recovered) {
          recovered = true;
          hls.recoverMediaError();
          return;
        }
        hls.destroy();
        hls = null;
        failed();
      });
      hls.loadSource(url);
      hls.attachMedia(video);
    }
    video.addEventListener("play", function () { wantsPlay = true; });
    video.addEventListener("playing", function () { report("playing"); });
    video.addEventListener("pause", function () { wantsPlay = false; report("paused"); });
    video.addEventListener("ended", function () { report("ended"); });
    video.addEventListener("waiting", function () { report("buffering"); });
    video.addEventListener("volumechange", audience);
    video.addEventListener("loadedmetadata", available);
    if (native) { video.addEventListener("error", failed); }
    return {
      native: native,
      silent: function () { return video.muted || video.volume === 0; },
      position: function () { return video.currentTime; },
      stalled: function () { return !video.paused && video.readyState < 3; },
      start: function (autoplay) {
        wantsPlay = autoplay;
        if (native) { load(); return; }
        loadScript(cfg.hlsScript, function () {
          if (window.Hls && window.Hls.isSupported()) { load(); return; }
          say("Deze browser kan de uitzending niet afspelen.", true);
        }, function () { say("De speler kon niet worden geladen. Ververs de pagina.", true); });
      }
    };
  }

  function embedPlayer(frame, kind) {
    var youtube = null;
    function follow() {
      if (kind === "youtube") {
        window.onYouTubeIframeAPIReady = function () {
          youtube = new window.YT.Player(frame, { events: {
            onStateChange: function (change) {
              var event = plan.youtube[String(change.data)];
              if (event) { report(event); }
            },
            onError: function () { report("failed"); }
          } });
        };
        loadScript("https://www.youtube.com/iframe_api");
      } else {
        loadScript("https://player.vimeo.com/api/player.js", function () {
          var vimeo = new window.Vimeo.Player(frame);
          Object.keys(plan.vimeo).forEach(function (name) {
            vimeo.on(name, function () { report(plan.vimeo[name]); });
          });
        });
      }
    }
    return {
      native: false,
      silent: function () {
        return !!(youtube && youtube.isMuted && (youtube.isMuted() || youtube.getVolume() === 0));
      },
      stalled: function () { return false; },
      // YouTube answers at once; Vimeo only asynchronously: its replay beacons carry none.
      position: function () {
        return youtube && youtube.getCurrentTime ? youtube.getCurrentTime() : null;
      },
      start: function () {
        if (frame.dataset.src) { frame.src = frame.dataset.src; }
        follow();
      }
    };
  }

  function start(autoplay) {
    var area = document.getElementById("beeld");
    var elsewhere = document.getElementById("elders");
    var waiting = document.getElementById("wachten");
    if (area) { area.hidden = false; }
    if (elsewhere) { elsewhere.hidden = false; }
    if (waiting) { waiting.hidden = true; }
    if (player) { player.start(autoplay); }
  }

  // -- the broadcast's state -----------------------------------------------------------------------
  function poll() {
    if (poller) { return; }
    poller = setInterval(function () {
      fetch(cfg.statusUrl, { headers: { "Accept": "application/json" }, cache: "no-store" })
        .then(function (answer) {
          if (answer.status === 404) { window.location.reload(); return null; }
          return answer.ok ? answer.json() : null;
        })
        .then(function (event) { if (event) { changed(event); } })
        .catch(function () { /* try again at the next tick */ });
    }, retryEveryMs);
  }
  function changed(event) {
    if ((event.stream_url || "") !== cfg.streamUrl && event.status !== "ended") {
      window.location.reload();  // a new address: the page (and its CSP) must know it
      return;
    }
    if (pageState === "upcoming" && event.status === "live") {
      pageState = "live";
      say(cfg.kind === "link" ? "De uitzending is live: open haar met de knop hierboven."
        : cfg.kind === "none" ? "De uitzending is nog niet beschikbaar." : "De uitzending is live.");
      start(true);
    } else if (pageState === "upcoming" && event.status !== "published") {
      window.location.reload();
    } else if (pageState === "live" && event.status !== "live") {
      clearInterval(poller); poller = null;
      pageState = "ended";
      on("over");
      say(event.replay_url ? "De uitzending is afgelopen. De terugblik staat klaar: ververs de pagina."
        : "De uitzending is afgelopen. De terugblik volgt op deze pagina.");
    }
  }

  // -- the countdown ---------------------------------------------------------------------------
  // The same words as sto_events.player.countdown_nl, on the server's clock (the skew between
  // the page's "now" and this device's is taken out).
  function count(n, one, many) { return n + " " + (n === 1 ? one : many); }
  function countdownNl(seconds) {
    if (seconds <= 60) { return "De uitzending begint zo."; }
    var minutes = Math.ceil(seconds / 60);
    var days = Math.floor(minutes / 1440), hours = Math.floor((minutes % 1440) / 60);
    var units = [days ? count(days, "dag", "dagen") : "", hours ? hours + " uur" : "",
                 minutes % 60 ? count(minutes % 60, "minuut", "minuten") : ""];
    var first = 0;
    while (!units[first]) { first += 1; }
    return "Nog " + units.slice(first, first + 2).filter(Boolean).join(" en ");
  }
  var countdown = document.getElementById("aftellen");
  if (countdown) {
    var skew = Date.parse(countdown.dataset.now) - Date.now();
    var startsAt = Date.parse(countdown.dataset.startsAt);
    var tick = function () {
      countdown.textContent = countdownNl((startsAt - Date.now() - skew) / 1000);
    };
    tick();
    setInterval(tick, 15000);
  }

  // -- wiring ------------------------------------------------------------------------------------
  if (cfg.kind === "hls") {
    player = hlsPlayer(document.getElementById("video"), cfg.source);
  } else if (cfg.kind === "youtube" || cfg.kind === "vimeo") {
    player = embedPlayer(document.getElementById("embed"), cfg.kind);
  }
  document.addEventListener("visibilitychange", audience);
  window.addEventListener("pagehide", function () { on("gone"); });
  if (pageState === "live" || pageState === "replay") {
    if (pageState === "live" && cfg.kind === "none") { say("De uitzending is nog niet beschikbaar.", true); }
    start(false);
  }
  if (pageState === "upcoming" || pageState === "live") { poll(); }
  window.stoPlayer = {
    viewer: viewer,
    heartbeatMs: heartbeatMs,
    kind: cfg.kind,
    native: !!(player && player.native),
    session: function () { return session; },
    attempts: function () { return attempts; }
  };
}());
