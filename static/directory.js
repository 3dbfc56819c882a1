// Directory source page: Test connection answers in place; a queued or running run's card polls
// its state and progress and the page reloads with the report when it ends.
(function () {
  var test = document.querySelector("[data-directory-test]");
  if (test) {
    var out = document.querySelector("[data-testid=test-result]");
    test.addEventListener("submit", function (event) {
      event.preventDefault();
      out.textContent = "Connecting…";
      fetch(test.dataset.directoryTest, {method: "POST", body: new FormData(test), credentials: "same-origin"})
        .then(function (r) { return r.json(); })
        .then(function (body) {
          out.className = "small mb-3 " + (body.ok ? "text-success" : "text-danger");
          out.textContent = body.message;
          (body.sample || []).forEach(function (s) {
            var line = document.createElement("div");
            line.className = "text-muted";
            line.textContent = s.left_out ? [s.sam, s.dn].filter(Boolean).join(" · ") + ": " + s.left_out
              : s.refused ? s.dn + ": " + s.refused
              : [s.name, s.sam, s.email, s.department, s.title, s.expired ? "expired" : s.disabled ? "disabled" : ""]
                  .filter(Boolean).join(" · ");
            out.append(line);
          });
        })
        .catch(function () { out.textContent = "The server did not answer."; });
    });
  }
  // Queued and running runs: their state and progress every second; the page reloads with the
  // report (and the Resume button) once the run has ended.
  document.querySelectorAll("[data-run][data-status=running], [data-run][data-status=queued]").forEach(function (card) {
    function poll() {
      fetch(card.dataset.run, {credentials: "same-origin"}).then(function (r) { return r.json(); }).then(function (run) {
        var share = run.total ? Math.floor(run.processed * 100 / run.total) : 0;
        var bar = card.querySelector("[data-field=bar]");
        bar.style.width = share + "%";
        bar.textContent = run.processed + " / " + (run.total === null ? "?" : run.total);
        card.querySelector("[data-field=status]").textContent = run.state;
        card.querySelector("[data-field=counts]").textContent = "created " + run.created + ", updated " + run.updated +
          ", unchanged " + run.unchanged + ", deactivated " + run.deactivated + ", failed " + run.failed +
          ", left out " + run.left_out;
        if (run.status === "running" || run.status === "queued") { setTimeout(poll, 1000); } else { window.location.reload(); }
      }).catch(function () { setTimeout(poll, 5000); });
    }
    poll();
  });
})();
