// Wizard steps: show only the fields that apply to the current choice (kind of customer, own
// mail servers, notification route). The server checks and ignores the rest either way.
(function () {
  function group(id) {
    var field = document.getElementById(id);
    return field ? field.closest(".form-group") || field : null;
  }
  function show(ids, visible) {
    ids.forEach(function (id) { var g = group(id); if (g) { g.style.display = visible ? "" : "none"; } });
  }
  function checked(name) {
    var input = document.querySelector("input[name='" + name + "']:checked");
    return input ? input.value : null;
  }
  function servers(prefix) {
    return ["host", "port", "security", "username", "password"].map(function (p) { return prefix + "_" + p; });
  }
  var rules = [
    ["kind", function (v) {
      show(["company_name", "registration_number", "vat_id", "contact_first_name", "contact_last_name",
            "contact_email"], v !== "person");
      show(["first_name", "middle_name", "last_name"], v === "person");
    }],
    ["use_builtin_mail_servers", function (v) {
      show(["pop3_address"].concat(servers("pop3"), servers("smtp_primary"), servers("smtp_fallback")), v === "0");
    }],
    ["notification_route", function (v) {
      show(servers("notification_smtp").concat(["notification_from_address", "notification_to_address"]),
           v === "smtp");
    }]
  ];
  // "Test connection": post this server's fields, show the server's answer as text.
  document.querySelectorAll("[data-server-test]").forEach(function (box) {
    var prefix = box.getAttribute("data-server-test");
    var button = box.querySelector("button");
    var status = box.querySelector("[role=status]");
    button.addEventListener("click", function () {
      var form = button.form || document.querySelector("form");
      var body = new URLSearchParams();
      form.querySelectorAll("[name^='" + prefix + "_']").forEach(function (input) {
        body.append(input.name, input.value);
      });
      body.append("csrf_token", form.querySelector("[name=csrf_token]").value);
      status.className = "ml-2 small text-muted";
      status.textContent = "Connecting…";
      button.disabled = true;
      form.querySelectorAll("[name^='" + prefix + "_'].is-invalid").forEach(function (input) {
        input.classList.remove("is-invalid");
      });
      // Refusals (not allowed, too many tests) answer JSON too, with a non-200 status.
      fetch(button.getAttribute("data-url"), {method: "POST", body: body, credentials: "same-origin"})
        .then(function (r) { return r.json(); })
        .then(function (result) {
          status.className = "ml-2 small " + (result.ok ? "text-success" : "text-danger");
          status.textContent = result.message;
          var input = result.field && form.querySelector("[name='" + result.field + "']");
          if (input) { input.classList.add("is-invalid"); }
        })
        .catch(function () {
          status.className = "ml-2 small text-danger";
          status.textContent = "The test could not be run.";
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
})();
