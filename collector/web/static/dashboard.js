// Refreshes the "people present now" figures every 5 s from the small JSON endpoint of the page.
"use strict";
(function () {
  const spots = document.querySelectorAll("[data-now]");
  if (!spots.length) return;
  const one = spots.length === 1 && document.querySelector("[data-now-at]");
  const url = one ? "/stores/" + encodeURIComponent(spots[0].dataset.now) + "/now.json" : "/now.json";
  function show(spot, p) {
    const figure = spot.querySelector("[data-figure=present]");
    figure.textContent = p.present === null ? "-" : p.present.toFixed(1);
    let interval = spot.querySelector("[data-figure=present-interval]");
    if (p.low !== null && p.low !== undefined) {
      if (!interval) {
        interval = document.createElement("small");
        interval.dataset.figure = "present-interval";
        spot.append(" ", interval);
      }
      interval.textContent = "(" + p.low.toFixed(1) + "–" + p.high.toFixed(1) + ")";
    }
    const at = document.querySelector('[data-now-at="' + spot.dataset.now + '"]');
    if (at && p.start) at.textContent = p.start.slice(0, 19).replace("T", " ");
  }
  async function poll() {
    try {
      const answer = await fetch(url, { credentials: "same-origin", cache: "no-store" });
      if (answer.ok) {
        const data = await answer.json();
        spots.forEach(function (spot) { if (data[spot.dataset.now]) show(spot, data[spot.dataset.now]); });
      }
    } finally {
      setTimeout(poll, 5000);
    }
  }
  setTimeout(poll, 5000);
})();
