// The quick form: live duplicate list while typing, then create. A company is created together
// with its contacts (it needs one with an e-mail): when the server refuses a company only for
// its missing contacts (answer `step: "contacts"`, nothing written), the modal asks for them and
// posts the company again with its contact rows. Opened by any element with data-quick-create.
// In a request form (data-select-into on the modal names the Customer field) a created or
// chosen customer is put into that field.
(function ($) {
  var modal = document.getElementById("quick-create");
  if (!modal) { return; }
  var form = document.getElementById("quick-create-form");
  var contactsForm = document.getElementById("quick-contacts-form");
  var list = document.getElementById("qc-candidates");
  var status = modal.querySelector("[data-search-status]");
  var confirmBox = modal.querySelector("[data-confirm]");
  var selectInto = modal.dataset.selectInto;
  var created = null;
  var timer = null;

  function stage(name) {
    modal.querySelectorAll("[data-stage]").forEach(function (el) {
      el.classList.toggle("d-none", el.dataset.stage !== name);
    });
  }

  function clearErrors(root) {
    root.querySelectorAll(".is-invalid").forEach(function (el) { el.classList.remove("is-invalid"); });
    root.querySelectorAll(".invalid-feedback").forEach(function (el) { el.remove(); });
    root.querySelector("[data-messages]").textContent = "";
  }

  function showErrors(root, body) {
    Object.keys(body.errors || {}).forEach(function (name) {
      var input = root.querySelector("[name='" + name + "']");
      if (!input) { body.messages = (body.messages || []).concat(body.errors[name]); return; }
      input.classList.add("is-invalid");
      var feedback = document.createElement("div");
      feedback.className = "invalid-feedback";
      feedback.textContent = body.errors[name].join(" ");
      input.insertAdjacentElement("afterend", feedback);
    });
    root.querySelector("[data-messages]").textContent = (body.messages || []).join(" ");
    var first = root.querySelector(".is-invalid");
    if (first) { first.focus(); }
  }

  function chooseCustomer(id, label) {
    var field = $("#" + selectInto);
    // Flask-Admin's Select2 (3.5) re-reads data-json when it initialises the selection.
    field.attr("data-json", JSON.stringify([String(id), label]));
    field.select2("data", {id: String(id), text: label});
    $(modal).modal("hide");
  }

  function candidateItem(c) {
    var li = document.createElement("li");
    li.className = "list-group-item py-2";
    var top = document.createElement("div");
    if (!c.visible) {
      top.textContent = "A matching record exists that you cannot open. " + c.ask;
    } else {
      var name = document.createElement("strong");
      name.textContent = c.label;
      var meta = document.createElement("small");
      meta.className = "text-muted ml-2";
      meta.textContent = [c.kind, c.email, c.phone].filter(Boolean).join(" · ");
      top.append(name, meta);
      if (c.inactive) {
        var badge = document.createElement("span");
        badge.className = "badge badge-secondary ml-2";
        badge.textContent = c.status + ": reactivate instead of re-creating";
        top.append(badge);
      }
    }
    var why = document.createElement("div");
    why.className = "small " + (c.strong ? "text-danger" : "text-warning");
    why.dataset.reasons = "";
    why.textContent = c.reasons.join(", ");
    li.append(top, why);
    if (c.visible) {
      var actions = document.createElement("div");
      var open = document.createElement("a");
      open.className = "btn btn-sm btn-link pl-0";
      open.href = modal.dataset.detailsUrl + "?id=" + c.customer_id;
      open.textContent = "Open";
      actions.append(open);
      if (selectInto) {
        var pick = document.createElement("button");
        pick.type = "button";
        pick.className = "btn btn-sm btn-outline-primary";
        pick.textContent = "Select as the customer";
        pick.addEventListener("click", function () {
          chooseCustomer(c.customer_id, c.customer_label);
        });
        actions.append(pick);
      }
      li.append(actions);
    }
    return li;
  }

  function showCandidates(candidates) {
    list.textContent = "";
    candidates.forEach(function (c) { list.append(candidateItem(c)); });
    status.textContent = candidates.length ? "Is it one of these? Open or select it instead of creating a new one."
                                           : "No existing customer or contact matches.";
  }

  function search() {
    var data = new FormData(form);
    if (!(data.get("name") || data.get("email") || data.get("phone"))) { showCandidates([]); return; }
    var query = new URLSearchParams({kind: data.get("kind"), name: data.get("name"),
                                     email: data.get("email"), phone: data.get("phone")});
    fetch(modal.dataset.candidatesUrl + "?" + query, {credentials: "same-origin"})
      .then(function (r) { return r.json(); })
      .then(function (body) { showCandidates(body.candidates); })
      .catch(function () { status.textContent = "The search is not available right now."; });
  }

  form.addEventListener("input", function (event) {
    if (event.target.name === "confirm_duplicate") { return; }
    clearTimeout(timer);
    timer = setTimeout(search, 250);
  });

  var COMPANY_FIELDS = ["kind", "name", "email", "phone", "confirm_duplicate"];

  function post(data) {
    return fetch(modal.dataset.createUrl, {method: "POST", body: data, credentials: "same-origin"})
      .then(function (r) { return r.json().then(function (body) { return [r.status, body]; }); });
  }

  function noAnswer(root) {
    return function () { root.querySelector("[data-messages]").textContent = "Nothing was saved: the server did not answer."; };
  }

  function refusedOnCompany(body) {
    // A refusal of the company's own fields (or a duplicate): back to the company, messages there.
    if (body.candidates) {
      showCandidates(body.candidates);
      confirmBox.classList.remove("d-none");
    }
    stage("customer");
    showErrors(form, body);
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    clearErrors(form);
    post(new FormData(form)).then(function (result) {
      var code = result[0], body = result[1];
      if (code === 201) { return finish(body); }
      if (code === 422 && body.step === "contacts") { return askForContacts(); }
      refusedOnCompany(body);
    }).catch(noAnswer(form));
  });

  function askForContacts() {
    modal.querySelector("[data-company-name]").textContent = document.getElementById("qc-name").value;
    var rows = contactsForm.querySelector("[data-rows]");
    if (!rows.children.length) { addRow(true); }
    clearErrors(contactsForm);
    stage("contacts");
    contactsForm.querySelector("input[data-field]").focus();
  }

  function finish(body) {
    created = body;
    if (body.warning) { window.alert(body.warning); }
    if (selectInto) { chooseCustomer(created.id, created.label); return; }
    window.location.href = modal.dataset.detailsUrl + "?id=" + created.id;
  }

  function addRow(main) {
    var rows = contactsForm.querySelector("[data-rows]");
    var index = rows.children.length;
    var row = document.getElementById("qc-contact-row").content.firstElementChild.cloneNode(true);
    row.querySelectorAll("[data-field]").forEach(function (input) {
      input.name = "contacts-" + index + "-" + input.dataset.field;
      input.id = "qc-" + input.name;
      input.previousElementSibling.htmlFor = input.id;
    });
    row.querySelector("[data-field=is_main]").value = main ? "1" : "";
    rows.append(row);
    return row;
  }

  contactsForm.querySelector("[data-add-row]").addEventListener("click", function () {
    addRow(false).querySelector("input").focus();
  });
  contactsForm.querySelector("[data-back]").addEventListener("click", function () {
    stage("customer");
    document.getElementById("qc-name").focus();
  });
  contactsForm.addEventListener("submit", function (event) {
    event.preventDefault();
    clearErrors(contactsForm);
    clearErrors(form);
    // One creation: the company's fields again, with its contact rows.
    var data = new FormData(form);
    contactsForm.querySelectorAll("[name]").forEach(function (input) { data.append(input.name, input.value); });
    post(data).then(function (result) {
      var code = result[0], body = result[1];
      if (code === 201) { return finish(body); }
      var onCompany = Object.keys(body.errors || {}).some(function (name) {
        return COMPANY_FIELDS.indexOf(name) >= 0;
      });
      if (code === 409 || onCompany) { return refusedOnCompany(body); }
      showErrors(contactsForm, body);
    }).catch(noAnswer(contactsForm));
  });

  // Leaving at the contacts step saves nothing: say so before the typed company is lost.
  $(modal).on("hide.bs.modal", function (event) {
    var asking = !modal.querySelector("[data-stage=contacts]").classList.contains("d-none");
    if (asking && !created && !window.confirm("The company is not saved without a contact. Leave without saving it?")) {
      event.preventDefault();
    }
  });

  if (selectInto) {
    // The blue "+" beside the request's Customer field.
    var label = document.querySelector("label[for='" + selectInto + "']");
    if (label) {
      var plus = document.createElement("button");
      plus.type = "button";
      plus.className = "btn btn-sm btn-primary ml-2 py-0";
      plus.dataset.quickCreate = "";
      plus.title = "Add a customer quickly";
      plus.setAttribute("aria-label", "Add a customer quickly");
      plus.textContent = "+";
      label.insertAdjacentElement("afterend", plus);
    }
  }

  document.querySelectorAll("[data-quick-create]").forEach(function (button) {
    button.addEventListener("click", function () {
      form.reset();
      clearErrors(form);
      created = null;
      contactsForm.querySelector("[data-rows]").textContent = "";
      confirmBox.classList.add("d-none");
      list.textContent = "";
      status.textContent = "Type a name, an e-mail or a phone: matches appear here.";
      stage("customer");
      $(modal).modal("show");
    });
  });
  $(modal).on("shown.bs.modal", function () {
    if (!modal.querySelector("[data-stage=customer]").classList.contains("d-none")) {
      document.getElementById("qc-name").focus();
    }
  });
})(window.jQuery);
