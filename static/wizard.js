// Wizard steps and the customer's settings tabs.
// - Show only the fields that apply to the current choice (kind of customer, own mail servers,
//   notification route), with their Test connection buttons. The server checks and ignores the
//   rest either way.
// - "Test connection": post this server's fields (and the CA certificate), show the answer as text.
// - A CA certificate file chosen is read into the certificate field.
// - Wizard only (a form with data-wizard-form): keep what is typed as it is typed. Each change
//   is posted, debounced, to the step's autosave URL (one request at a time; the newest values
//   win). The first save of a new wizard makes its draft: the answer gives the draft's URLs, and
//   the page, its form and its links move there. Leaving with changes not yet kept sends them
//   (sendBeacon) and asks the browser to warn; pressing Back / Next never warns.
(function () {
  "use strict";
  var AUTOSAVE_DELAY = 700;
  var form = document.querySelector("form[data-wizard-form]");
  var statusBox = document.querySelector("[data-testid=autosave-status]");
  function word(name, fallback) {
    return (statusBox && statusBox.getAttribute("data-" + name)) || fallback;
  }

  function group(id) {
    var field = document.getElementById(id);
    if (!field) { return null; }
    if (field.hasAttribute("data-server-test")) { return field; }
    return field.closest(".form-group") || field;
  }
  function show(ids, visible) {
    ids.forEach(function (id) {
      var g = group(id);
      if (g) { g.style.display = visible ? "" : "none"; g.hidden = !visible; }
    });
  }
  function checked(name) {
    var input = document.querySelector("input[name='" + name + "']:checked");
    return input ? input.value : null;
  }
  function servers(prefix) {
    return ["host", "port", "security", "username", "password"].map(function (p) { return prefix + "_" + p; })
      .concat(["test-" + prefix]);
  }
  var rules = [
    ["kind", function (v) {
      show(["company_name", "registration_number", "vat_id", "contact_first_name", "contact_last_name",
            "contact_email"], v !== "person");
      show(["first_name", "middle_name", "last_name"], v === "person");
    }],
    ["use_builtin_mail_servers", function (v) {
      show(["pop3_address", "mail_ca_certificate"].concat(servers("pop3"), servers("smtp_primary"),
                                                          servers("smtp_fallback")), v === "0");
    }],
    ["notification_route", function (v) {
      show(servers("notification_smtp").concat(["notification_from_address", "notification_to_address"]),
           v === "smtp");
    }]
  ];

  document.querySelectorAll("[data-server-test]").forEach(function (box) {
    var prefix = box.getAttribute("data-server-test");
    var button = box.querySelector("button");
    var status = box.querySelector("[role=status]");
    // Shown unless a rule above hides it (a settings tab without the radio, for instance).
    box.hidden = false;
    button.addEventListener("click", function () {
      var owner = button.form || document.querySelector("form");
      var body = new URLSearchParams();
      owner.querySelectorAll("[name^='" + prefix + "_'], [name=mail_ca_certificate]").forEach(function (input) {
        if (input.type !== "file") { body.append(input.name, input.value); }
      });
      body.append("csrf_token", owner.querySelector("[name=csrf_token]").value);
      status.className = "ml-2 small text-muted";
      status.textContent = word("connecting", "Connecting…");
      button.disabled = true;
      owner.querySelectorAll("[name^='" + prefix + "_'].is-invalid, [name=mail_ca_certificate].is-invalid")
        .forEach(function (input) { input.classList.remove("is-invalid"); });
      // Refusals (not allowed, too many tests) answer JSON too, with a non-200 status.
      fetch(button.getAttribute("data-url"), {method: "POST", body: body, credentials: "same-origin"})
        .then(function (r) { return r.json(); })
        .then(function (result) {
          status.className = "ml-2 small " + (result.ok ? "text-success" : "text-danger");
          status.textContent = result.message;
          var input = result.field && owner.querySelector("[name='" + result.field + "']");
          if (input) { input.classList.add("is-invalid"); }
        })
        .catch(function () {
          status.className = "ml-2 small text-danger";
          status.textContent = word("test-failed", "The test could not be run.");
        })
        .finally(function () { button.disabled = false; });
    });
  });

  rules.forEach(function (rule) {
    var inputs = document.querySelectorAll("input[name='" + rule[0] + "']");
    if (!inputs.length) { return; }
    var apply = function () { rule[1](checked(rule[0])); };
    inputs.forEach(function (input) { input.addEventListener("change", apply); });
    apply();
  });

  // A CA certificate file: its text goes into the field (then kept and tested like typed text).
  document.querySelectorAll("input[data-ca-file]").forEach(function (chooser) {
    chooser.addEventListener("change", function () {
      var file = chooser.files && chooser.files[0];
      var target = document.getElementById(chooser.getAttribute("data-ca-file"));
      if (!file || !target) { return; }
      var label = chooser.parentElement.querySelector(".custom-file-label");
      if (label) { label.textContent = file.name; }
      file.text().then(function (text) {
        target.value = text;
        target.dispatchEvent(new Event("input", {bubbles: true}));
      });
    });
  });

  if (!form) { return; }

  // --- autosave (wizard steps) -------------------------------------------------------------------
  var url = form.getAttribute("data-autosave-url");
  var dirty = false;      // changed since the last values sent
  var inFlight = false;   // a save is on its way
  var kept = values().toString();  // what the server holds: the page as it came, then each save
  var timer = null;
  var submitting = false;

  function values() {
    var body = new URLSearchParams();
    new FormData(form).forEach(function (value, name) {
      if (typeof value === "string" && name !== "nav") { body.append(name, value); }
    });
    return body;
  }
  function say(text, css) {
    if (!statusBox) { return; }
    statusBox.textContent = text;
    statusBox.className = "small " + (css || "text-muted");
  }
  function moveTo(answer) {
    // The first save made the draft: from now on this page is the draft's step 1.
    if (!answer.step_url || form.getAttribute("data-new") !== "1") { return; }
    form.setAttribute("data-new", "0");
    form.action = answer.step_url;
    var key = form.querySelector("input[name=draft_key]");
    if (key) { key.remove(); }
    var discard = document.querySelector("[data-testid=discard-draft]");
    if (discard && answer.discard_url) { discard.href = answer.discard_url; }
    var link = document.querySelector("[data-testid=wizard-steps] a[data-step=customer]");
    if (link) { link.href = answer.step_url; }
    history.replaceState(null, "", answer.step_url);
  }
  function save() {
    timer = null;
    if (inFlight || submitting) { return; }
    inFlight = true;
    dirty = false;
    var sent = values();
    var snapshot = sent.toString();
    say(word("saving", "Keeping what you typed…"));
    fetch(url, {method: "POST", body: sent, credentials: "same-origin",
                headers: {"Accept": "application/json"}})
      .then(function (r) { return r.json().then(function (answer) { return {status: r.status, answer: answer}; }); })
      .then(function (result) {
        if (result.status !== 200 || !result.answer.ok) {
          dirty = true;
          say(result.answer.message || word("failed", "Not kept."), "text-danger");
          return;
        }
        kept = snapshot;
        if (result.answer.autosave_url) { url = result.answer.autosave_url; }
        moveTo(result.answer);
        if (!dirty) { say(word("saved", "Kept in the draft"), "text-success"); }
      })
      .catch(function () {
        dirty = true;
        say(word("failed", "Not kept."), "text-danger");
      })
      .finally(function () {
        inFlight = false;
        if (dirty && !timer && !submitting) { timer = setTimeout(save, AUTOSAVE_DELAY); }
      });
  }
  function changed() {
    // A field's "change" also fires when it loses focus (a click on a link): nothing new then.
    if (!inFlight && values().toString() === kept) { return; }
    dirty = true;
    // Until the save answers, the page must not still say that everything is kept.
    say(word("saving", "Keeping what you typed…"));
    if (timer) { clearTimeout(timer); }
    timer = setTimeout(save, AUTOSAVE_DELAY);
  }
  form.addEventListener("input", changed);
  form.addEventListener("change", changed);
  form.addEventListener("submit", function () {
    submitting = true;
    if (timer) { clearTimeout(timer); timer = null; }
  });
  // The browser's Back/Forward cache may bring this page back after a submit: it is live again.
  window.addEventListener("pageshow", function () { submitting = false; });

  window.addEventListener("beforeunload", function (event) {
    if (submitting || !(dirty || inFlight)) { return; }
    // Send what is not kept yet (the browser delivers it even if the page goes), and warn.
    if (dirty && navigator.sendBeacon) {
      navigator.sendBeacon(url, values());
    }
    event.preventDefault();
    event.returnValue = form.getAttribute("data-leave-warning") || "";
    return event.returnValue;
  });
})();
