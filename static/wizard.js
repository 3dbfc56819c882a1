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
  rules.forEach(function (rule) {
    var inputs = document.querySelectorAll("input[name='" + rule[0] + "']");
    if (!inputs.length) { return; }
    var apply = function () { rule[1](checked(rule[0])); };
    inputs.forEach(function (input) { input.addEventListener("change", apply); });
    apply();
  });
})();
