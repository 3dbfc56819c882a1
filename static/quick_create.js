// The quick form: live duplicate list while typing, then create. A company is created together
// with its contacts (it needs one with an e-mail): when the server refuses a company only for
// its missing contacts (answer `step: "contacts"`, nothing written), the modal asks for them and
// posts the company again with its contact rows. Opened by any element with data-quick-create.
// In a request form (data-select-into on the modal names the Customer field) a created or
// chosen customer is put into that field. Every refusal comes in one answer and each message is
// put on its field, in whichever step it is; an inactive match the operator may edit has a
// Reactivate button. The words shown are the page's (the JSON block "qc-words", translated there).
(function ($) {
  var modal = document.getElementById("quick-create");
  if (!modal) { return; }
  var form = document.getElementById("quick-create-form");
  var contactsForm = document.getElementById("quick-contacts-form");
  var list = document.getElementById("qc-candidates");
  var status = modal.querySelector("[data-search-status]");
  var confirmBox = modal.querySelector("[data-confirm]");
  var selectInto = modal.dataset.selectInto;
  var words = JSON.parse(document.getElementById("qc-words").textContent);
  var reactivated = modal.querySelector("[data-reactivated]");
  var created = null;
  var timer = null;
  var contactsAsked = false;  // the contacts step was reached for the company being typed

  function say(text, values) {
    return text.replace(/%\((\w+)\)s/g, function (all, name) { return values[name]; });
  }

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

  // Every message of an answer on its field, in either step; the rest (and the messages of the
  // form as a whole) under the step shown (`root`).
  function showErrors(root, body) {
    var rest = (body.messages || []).slice();
    Object.keys(body.errors || {}).forEach(function (name) {
      var input = modal.querySelector("[name='" + name + "']");
      if (!input) { rest = rest.concat(body.errors[name]); return; }
      input.classList.add("is-invalid");
      var feedback = document.createElement("div");
      feedback.className = "invalid-feedback";
      feedback.textContent = body.errors[name].join(" ");
      input.insertAdjacentElement("afterend", feedback);
    });
    if (root === form && contactsForm.querySelector(".is-invalid")) { rest.push(words.fix_contacts); }
    if (root === contactsForm && form.querySelector(".is-invalid")) { rest.push(words.fix_company); }
    root.querySelector("[data-messages]").textContent = rest.join(" ");
    var first = root.querySelector(".is-invalid");
    if (first) { first.focus(); }
  }

  function chooseCustomer(id, label) {
    var field = $("#" + selectInto);
    // Flask-Admin's Select2 (3.5) re-reads data-json when it initialises the selection.
    field.attr("data-json", JSON.stringify([String(id), label]));
    field.select2("data", {id: String(id), text: label});
    field.trigger("change");  // the request form's contact picker reloads for this customer
    $(modal).modal("hide");
  }

  // The live list: one request per pause in typing. Answers may arrive out of order (a short
  // prefix takes longer than the longer text typed after it): each request is numbered and only
  // the answer to the latest one is shown.
  var searchNumber = 0;

  function reasonsLine(c) {
    var why = document.createElement("div");
    why.dataset.reasons = "";
    // Strong: an identifying key (e-mail, phone, company ID…) is the same; the server refuses
    // to create the record without "create anyway".
    why.className = "small " + (c.strong ? "text-danger font-weight-bold" : "text-body");
    var label = document.createElement("span");
    label.className = c.strong ? "" : "text-muted";
    label.textContent = c.strong ? words.strong : words.why;
    var reasons = document.createElement("span");
    reasons.textContent = (c.reason_labels || c.reasons).join(", ");
    why.append(label, reasons);
    return why;
  }

  function badge(text, style, data) {
    var span = document.createElement("span");
    span.className = "badge text-wrap text-left ml-1 " + style;
    span.dataset[data] = "";
    span.textContent = text;
    return span;
  }

  function candidateItem(c) {
    var li = document.createElement("li");
    li.className = "list-group-item py-2 px-3 text-break" + (c.strong ? " border-danger" : "");
    li.dataset.candidate = c.strong ? "strong" : "similar";
    if (c.strong) { li.style.borderLeftWidth = "4px"; }
    var top = document.createElement("div");
    if (!c.visible) {
      top.textContent = say(words.hidden, {keys: (c.reason_labels || c.reasons).join(", ") || words.key}) + " " + c.ask;
      li.append(top, reasonsLine(c));
      return li;
    }
    // First line: the name with its kind (and status), the buttons on the right.
    // The buttons go under the name when both do not fit (a narrow window, three buttons).
    top.className = "d-flex flex-wrap align-items-start";
    var title = document.createElement("div");
    title.className = "mr-2 mb-1";
    title.style.flex = "1 1 12rem";  // a long name or kind wraps here instead of pushing the buttons out
    title.style.minWidth = "0";
    var name = document.createElement("strong");
    name.textContent = c.label;
    title.append(name, badge(c.kind, c.record === "contact" ? "badge-info" : "badge-light border", "kind"));
    if (c.inactive) {
      title.append(badge(say(words.inactive, {status: c.status}), "badge-secondary", "status"));
    }
    var actions = document.createElement("div");
    actions.className = "d-flex flex-wrap flex-shrink-0 mb-1";
    var open = document.createElement("a");
    open.className = "btn btn-sm btn-outline-secondary py-0 mb-1 text-nowrap";
    open.href = modal.dataset.detailsUrl + "?id=" + c.customer_id;
    open.textContent = words.open;
    open.title = say(words.open_title, {name: c.customer_label});
    open.setAttribute("aria-label", open.title);
    actions.append(open);
    if (c.inactive && c.may_reactivate) {
      var wake = document.createElement("button");
      wake.type = "button";
      wake.className = "btn btn-sm btn-success py-0 ml-1 mb-1 text-nowrap";
      wake.dataset.reactivate = "";
      wake.textContent = words.reactivate;
      wake.title = say(words.reactivate_title, {name: c.customer_label});
      wake.addEventListener("click", function () { reactivate(c, wake); });
      actions.append(wake);
    }
    if (selectInto) {
      var pick = document.createElement("button");
      pick.type = "button";
      pick.className = "btn btn-sm btn-outline-primary py-0 ml-1 mb-1 text-nowrap";
      pick.textContent = words.select;
      pick.addEventListener("click", function () {
        chooseCustomer(c.customer_id, c.customer_label);
      });
      actions.append(pick);
    }
    top.append(title, actions);
    li.append(top);
    var contact = [c.email, c.phone].filter(Boolean).join(" · ");
    if (contact) {
      var meta = document.createElement("div");
      meta.className = "small text-muted";
      meta.textContent = contact;
      li.append(meta);
    }
    li.append(reasonsLine(c));
    return li;
  }

  // `limit`: how many the server lists at most; a list that long may be cut short.
  function showCandidates(candidates, limit) {
    list.textContent = "";
    candidates.forEach(function (c) { list.append(candidateItem(c)); });
    if (!candidates.length) {
      status.textContent = words.none;
    } else if (limit && candidates.length >= limit) {
      status.textContent = say(words.many, {count: candidates.length});
    } else {
      status.textContent = words.some;
    }
  }

  // How many answers came back, shown or set aside as stale (for tests and debugging: what a
  // late answer did to the list can only be checked once it has arrived).
  function answered() {
    list.dataset.answers = String(Number(list.dataset.answers || 0) + 1);
  }

  function search() {
    var number = ++searchNumber;
    var data = new FormData(form);
    if (!(data.get("name").trim() || data.get("email").trim() || data.get("phone").trim())) {
      list.textContent = "";
      status.textContent = words.type;
      return;
    }
    var query = new URLSearchParams({kind: data.get("kind"), name: data.get("name"),
                                     email: data.get("email"), phone: data.get("phone")});
    status.textContent = words.searching;
    fetch(modal.dataset.candidatesUrl + "?" + query, {credentials: "same-origin"})
      .then(function (r) {
        if (!r.ok) { throw new Error(r.status); }
        return r.json();
      })
      .then(function (body) {
        answered();
        if (number !== searchNumber) { return; }  // a later search was started: its answer counts
        showCandidates(body.candidates, body.limit);
      })
      .catch(function () {
        answered();
        if (number !== searchNumber) { return; }
        list.textContent = "";
        status.textContent = words.unavailable;
      });
  }

  form.addEventListener("input", function (event) {
    if (event.target.name === "confirm_duplicate") { return; }
    clearTimeout(timer);
    timer = setTimeout(search, 250);
  });

  var COMPANY_FIELDS = ["kind", "name", "email", "phone", "confirm_duplicate"];

  function post(data, url) {
    return fetch(url || modal.dataset.createUrl, {method: "POST", body: data, credentials: "same-origin"})
      .then(function (r) { return r.json().then(function (body) { return [r.status, body]; }); });
  }

  function noAnswer(root) {
    return function () { root.querySelector("[data-messages]").textContent = words.no_answer; };
  }

  // Reactivate an inactive match (the server checks the edit right and the version shown), then
  // use it: into the request's Customer field, or open it.
  function reactivate(c, button) {
    var data = new FormData();
    data.append("csrf_token", form.querySelector("[name=csrf_token]").value);
    data.append("customer", String(c.customer_id));
    data.append("version_seen", String(c.version));
    button.disabled = true;
    button.textContent = words.reactivating;
    reactivated.textContent = "";
    form.querySelector("[data-messages]").textContent = "";
    post(data, modal.dataset.reactivateUrl).then(function (result) {
      var code = result[0], body = result[1];
      if (code === 200) {
        reactivated.textContent = body.message;
        created = body;  // nothing typed is lost by leaving now
        if (selectInto) { chooseCustomer(body.id, body.label); return; }
        window.location.href = modal.dataset.detailsUrl + "?id=" + body.id;
        return;
      }
      button.disabled = false;
      button.textContent = words.reactivate;
      showErrors(form, body);
    }).catch(function () {
      button.disabled = false;
      button.textContent = words.reactivate;
      noAnswer(form)();
    });
  }

  function refusedOnCompany(body) {
    // A refusal of the company's own fields (or a duplicate): back to the company, messages there.
    if (body.candidates) {
      searchNumber++;
      showCandidates(body.candidates);
      confirmBox.classList.remove("d-none");
    }
    stage("customer");
    showErrors(form, body);
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    clearErrors(form);
    clearErrors(contactsForm);
    post(new FormData(form)).then(function (result) {
      var code = result[0], body = result[1];
      if (code === 201) { return finish(body); }
      if (code === 422 && body.step === "contacts") { return askForContacts(); }
      refusedOnCompany(body);
    }).catch(noAnswer(form));
  });

  function askForContacts() {
    contactsAsked = true;
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
      if (code === 409 || onCompany) { return refusedOnCompany(body); }  // the contacts' messages too
      showErrors(contactsForm, body);
    }).catch(noAnswer(contactsForm));
  });

  // Leaving once the contacts were asked for (at that step, or back at the company) saves
  // nothing: ask before the typed company and its contacts are lost (Esc, ×, Cancel, backdrop).
  $(modal).on("hide.bs.modal", function (event) {
    if (event.target !== modal) { return; }  // a tooltip or the like inside the modal
    if (contactsAsked && !created && !window.confirm(words.leave)) {
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
      plus.title = words.add_quickly;
      plus.setAttribute("aria-label", words.add_quickly);
      plus.textContent = "+";
      label.insertAdjacentElement("afterend", plus);
    }
  }

  document.querySelectorAll("[data-quick-create]").forEach(function (button) {
    button.addEventListener("click", function () {
      form.reset();
      clearErrors(form);
      created = null;
      contactsAsked = false;
      reactivated.textContent = "";
      clearErrors(contactsForm);
      contactsForm.querySelector("[data-rows]").textContent = "";
      confirmBox.classList.add("d-none");
      clearTimeout(timer);
      searchNumber++;  // an answer to the previous opening is no longer wanted
      list.textContent = "";
      status.textContent = words.type;
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
