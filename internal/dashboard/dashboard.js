// shipbot dashboard: times in the viewer's zone, and live updates without
// reloading the page. The server says "something changed" over
// server-sent events (/live); this fetches the page again and swaps the
// sections marked data-live whose content differs, keeping the scroll
// position and the focused link. No framework, no inline script (the
// Content-Security-Policy allows only this file).
(function () {
  "use strict";

  // localTimes shows every <time datetime> in the viewer's zone; the
  // server wrote UTC, which the title attribute keeps.
  function localTimes(root) {
    var els = root.querySelectorAll("time[datetime]");
    for (var i = 0; i < els.length; i++) {
      var d = new Date(els[i].getAttribute("datetime"));
      if (!isNaN(d.getTime())) {
        els[i].textContent = d.toLocaleString(undefined, {
          year: "numeric", month: "short", day: "numeric",
          hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short"
        });
      }
    }
  }
  localTimes(document);

  var body = document.body;
  var since = body.getAttribute("data-live-since");
  if (!since || !window.EventSource || !window.fetch || !window.DOMParser) {
    return;
  }

  // focusKey names the focused link or button so that its copy in the
  // new content can take the focus back.
  function focusKey() {
    var el = document.activeElement;
    if (!el || el === body) {
      return null;
    }
    var section = el.closest("[data-live]");
    if (!section) {
      return null;
    }
    return { section: section.id, href: el.getAttribute("href"), text: el.textContent };
  }

  function restoreFocus(key) {
    if (!key) {
      return;
    }
    var section = document.getElementById(key.section);
    if (!section || section.contains(document.activeElement)) {
      return;
    }
    var links = section.querySelectorAll("a[href], button, summary");
    for (var i = 0; i < links.length; i++) {
      if (links[i].getAttribute("href") === key.href && links[i].textContent === key.text) {
        links[i].focus({ preventScroll: true });
        return;
      }
    }
  }

  var busy = false;
  var again = false;
  var updates = 0;

  function refresh() {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    fetch(location.href, { credentials: "same-origin", cache: "no-store", headers: { "Accept": "text/html" } })
      .then(function (res) {
        if (!res.ok) {
          throw new Error("HTTP " + res.status);
        }
        return res.text();
      })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        localTimes(doc); // as the page shows them, so unchanged sections compare equal
        var key = focusKey();
        var x = window.scrollX, y = window.scrollY;
        var sections = document.querySelectorAll("[data-live]");
        for (var i = 0; i < sections.length; i++) {
          var next = doc.getElementById(sections[i].id);
          if (next && next.innerHTML !== sections[i].innerHTML) {
            // <details> a reader opened stay open.
            var open = {};
            var ds = sections[i].querySelectorAll("details[id]");
            for (var j = 0; j < ds.length; j++) {
              open[ds[j].id] = ds[j].open;
            }
            sections[i].innerHTML = next.innerHTML;
            ds = sections[i].querySelectorAll("details[id]");
            for (j = 0; j < ds.length; j++) {
              if (ds[j].id in open) {
                ds[j].open = open[ds[j].id];
              }
            }
          }
        }
        window.scrollTo(x, y);
        restoreFocus(key);
        updates++;
        body.setAttribute("data-live-updates", String(updates));
      })
      .catch(function () {
        // The next change tries again; the page stays as it was.
      })
      .then(function () {
        busy = false;
        if (again) {
          again = false;
          refresh();
        }
      });
  }

  var stream = new EventSource("/live?since=" + encodeURIComponent(since));
  stream.addEventListener("change", refresh);
})();
