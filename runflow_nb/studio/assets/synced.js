// One transport for 2–6 clips of a runflow_nb synced compare; runs in the browser, no kernel round trip.
// The container (#ID) holds .rf-sync-video elements; clip 0 leads and the others follow its clock.
(function () {
  var root = document.getElementById("__ID__");
  if (!root || root.dataset.rfReady) { return; }
  root.dataset.rfReady = "1";
  var vids = Array.prototype.slice.call(root.querySelectorAll("video.rf-sync-video"));
  var cells = Array.prototype.slice.call(root.querySelectorAll(".rf-sync-cell"));
  var q = function (sel) { return root.querySelector(sel); };
  var play = q(".rf-sync-play"), scrub = q(".rf-sync-scrub"), loop = q(".rf-sync-loop"),
      speed = q(".rf-sync-speed"), clock = q(".rf-sync-time"), mode = q(".rf-sync-mode"), wipe = q(".rf-sync-wipe");
  var fps = parseFloat(root.dataset.fps) || 24, focus = 0, lead = vids[0];
  function span() {
    var d = Infinity;
    vids.forEach(function (v) { if (isFinite(v.duration) && v.duration > 0) { d = Math.min(d, v.duration); } });
    return isFinite(d) ? d : 0;
  }
  function show() {
    var d = span(), t = lead.currentTime || 0;
    if (d > 0 && !root.dataset.rfScrubbing) { scrub.value = Math.round(1000 * t / d); }
    clock.textContent = t.toFixed(2) + " / " + d.toFixed(2) + " s";
    play.textContent = lead.paused ? "\u25B6 play" : "\u275A\u275A pause";
    root.dataset.rfTime = t.toFixed(3);
    root.dataset.rfState = lead.paused ? "paused" : "playing";
  }
  function seek(t) {
    var d = span();
    t = Math.max(0, d > 0 ? Math.min(t, d - 0.001) : t);
    vids.forEach(function (v) { v.currentTime = t; });
    show();
  }
  function sound() {  // one sound at a time: only the focused clip is heard
    vids.forEach(function (v, i) { v.muted = i !== focus; });
    cells.forEach(function (c, i) { c.classList.toggle("rf-sync-focused", i === focus); });
    root.dataset.rfFocus = String(focus);
  }
  function start() {
    document.querySelectorAll("video").forEach(function (v) {  // other players on the page fall silent
      if (vids.indexOf(v) < 0 && !v.paused) { v.pause(); }
    });
    var t = lead.currentTime;
    vids.forEach(function (v) { v.currentTime = t; v.play().catch(function () {}); });
  }
  function stop() { vids.forEach(function (v) { v.pause(); }); show(); }
  function toggle() { if (lead.paused) { start(); } else { stop(); } }
  function step(n) { stop(); seek((lead.currentTime || 0) + n / fps); }
  function rate(n) {  // clicks the rating the kernel listens to, so the store records it
    var box = document.querySelector(".rf-sync-rating-" + root.dataset.token + "-" + focus);
    if (!box) { return; }
    box.querySelectorAll("button").forEach(function (b) { if (b.textContent.trim() === String(n)) { b.click(); } });
    root.dataset.rfRated = focus + ":" + n;
  }
  play.addEventListener("click", toggle);
  q(".rf-sync-back").addEventListener("click", function () { step(-1); });
  q(".rf-sync-fwd").addEventListener("click", function () { step(1); });
  scrub.addEventListener("input", function () { root.dataset.rfScrubbing = "1"; seek(span() * scrub.value / 1000); });
  scrub.addEventListener("change", function () { delete root.dataset.rfScrubbing; });
  speed.addEventListener("change", function () {
    vids.forEach(function (v) { v.playbackRate = parseFloat(speed.value); });
  });
  if (mode) {
    mode.addEventListener("change", function () {
      root.classList.remove("rf-mode-side", "rf-mode-wipe", "rf-mode-diff");
      root.classList.add("rf-mode-" + mode.value);
    });
    wipe.addEventListener("input", function () { root.style.setProperty("--rf-wipe", wipe.value + "%"); });
  }
  cells.forEach(function (c, i) { c.addEventListener("click", function () { focus = i; sound(); root.focus(); }); });
  lead.addEventListener("timeupdate", function () {
    var d = span();
    if (d > 0 && lead.currentTime >= d - 0.05 && !lead.paused) {
      if (loop.checked) { seek(0); start(); } else { stop(); }
    }
    vids.forEach(function (v) {  // followers keep to the leader's clock
      if (v !== lead && Math.abs(v.currentTime - lead.currentTime) > 0.08) { v.currentTime = lead.currentTime; }
    });
    show();
  });
  vids.forEach(function (v) {
    v.loop = false;
    v.controls = false;  // the shared transport drives every clip
    v.addEventListener("loadedmetadata", show);
    v.addEventListener("ended", function () { if (loop.checked) { seek(0); start(); } else { stop(); } });
  });
  root.addEventListener("keydown", function (e) {
    var k = e.key;
    if (k === " " || k === "Spacebar") { toggle(); }
    else if (k === "ArrowLeft") { step(e.shiftKey ? -fps : -1); }
    else if (k === "ArrowRight") { step(e.shiftKey ? fps : 1); }
    else if (k === "ArrowUp") { focus = (focus + vids.length - 1) % vids.length; sound(); }
    else if (k === "ArrowDown") { focus = (focus + 1) % vids.length; sound(); }
    else if (/^[1-5]$/.test(k)) { rate(parseInt(k, 10)); }
    else { return; }
    e.preventDefault(); e.stopPropagation();  // keep JupyterLab's own shortcuts out of it
  });
  sound(); show();
})();
