// Send the staff CSRF token with every htmx request.
document.addEventListener("htmx:configRequest", (e) => {
  const token = document.body.dataset.csrf;
  if (token) e.detail.headers["X-CSRF-Token"] = token;
});

const CHART_COLORS = ["#2f7d4f", "#d08a1e", "#3a6ea5", "#a23b72", "#6b8e23", "#66707a"];

// Charts: <div class="chart" data-chart='{"type": "line", "x": [...], "series": [{"name":..., "data": [...]}]}'>
function buddingCharts(root) {
  if (!window.echarts) return;
  (root || document).querySelectorAll("[data-chart]").forEach((el) => {
    if (el.dataset.rendered) return;
    el.dataset.rendered = "1";
    const spec = JSON.parse(el.dataset.chart);
    const chart = echarts.init(el, null, { renderer: "svg" });
    const option = spec.option || {
      color: CHART_COLORS,
      tooltip: { trigger: "axis" },
      legend: spec.series.length > 1 ? {} : undefined,
      grid: { left: 48, right: 16, top: 24, bottom: 32 },
      xAxis: { type: "category", data: spec.x },
      yAxis: { type: "value" },
      series: spec.series.map((s) =>
        Object.assign(
          { type: spec.type || "line", showSymbol: false },
          s,
          s.areaStyle ? { areaStyle: Object.assign({ opacity: 0.15 }, s.areaStyle) } : {},
        ),
      ),
    };
    chart.setOption(option);
    window.addEventListener("resize", () => chart.resize());
  });
}
document.addEventListener("DOMContentLoaded", () => buddingCharts());
document.addEventListener("htmx:afterSwap", (e) => buddingCharts(e.target));

// Copy-to-clipboard buttons: <button data-copy="text">
document.addEventListener("click", async (e) => {
  const btn = e.target.closest("[data-copy]");
  if (!btn) return;
  try { await navigator.clipboard.writeText(btn.dataset.copy); } catch (_) {
    const t = document.createElement("textarea"); t.value = btn.dataset.copy; document.body.appendChild(t); t.select(); document.execCommand("copy"); t.remove();
  }
  btn.dataset.copied = "1";
  btn.classList.add("copied");
});

// Select boxes that navigate: <select data-navigate> whose option values are URLs on this site.
document.addEventListener("change", (e) => {
  const select = e.target.closest("select[data-navigate]");
  if (select && select.value && select.value.startsWith("/")) location.href = select.value;
});

// Forms that ask first: <form data-confirm="Revoke this key?">
document.addEventListener("submit", (e) => {
  const form = e.target.closest("form[data-confirm]");
  if (form && !window.confirm(form.dataset.confirm)) e.preventDefault();
});

// Select boxes that submit their form when changed: <select data-autosubmit>
document.addEventListener("change", (e) => {
  const select = e.target.closest("select[data-autosubmit]");
  if (select && select.form) select.form.requestSubmit();
});
