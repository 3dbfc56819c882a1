// Import pages: while a background job works on the preview or the import, follow its status and
// progress; when the status changes (the preview is ready, the import ended, was interrupted or
// resumed in another tab) reload, and the page shows the new state.
(function () {
  var box = document.querySelector("[data-import-status]");
  if (!box) { return; }
  var bar = box.querySelector("[data-field=bar]");
  var words = box.querySelector("[data-field=words]");
  var working = ["preview_queued", "previewing", "queued", "running"];
  function pause() { return working.indexOf(box.dataset.shownStatus) >= 0 ? 700 : 5000; }
  function poll() {
    fetch(box.dataset.importStatus, {credentials: "same-origin", cache: "no-store"})
      .then(function (r) { return r.json(); })
      .then(function (s) {
        if (s.status !== box.dataset.shownStatus) { window.location.reload(); return; }
        var p = s.progress || {};
        if (bar) {
          var share = p.total ? Math.floor((p.done || 0) * 100 / p.total) : 0;
          bar.style.width = share + "%";
          bar.setAttribute("aria-valuenow", p.done || 0);
          bar.textContent = (p.done || 0).toLocaleString() + " / " + (p.total || 0).toLocaleString();
        }
        if (words && s.words) { words.textContent = s.words; }
        setTimeout(poll, pause());
      })
      .catch(function () { setTimeout(poll, 2000); });
  }
  setTimeout(poll, pause());
})();
