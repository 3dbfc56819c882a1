// Import result page: while the import runs, poll its progress and reload with the report at the end.
(function () {
  var box = document.querySelector("[data-import-status]");
  if (!box) { return; }
  var bar = box.querySelector("[data-field=bar]");
  function poll() {
    fetch(box.dataset.importStatus, {credentials: "same-origin"})
      .then(function (r) { return r.json(); })
      .then(function (s) {
        var p = s.progress || {};
        var share = p.total ? Math.floor((p.done || 0) * 100 / p.total) : 0;
        bar.style.width = share + "%";
        bar.textContent = (p.done || 0) + " / " + (p.total || "?");
        if (s.done) { window.location.reload(); } else { setTimeout(poll, 700); }
      })
      .catch(function () { setTimeout(poll, 2000); });
  }
  poll();
})();
