// Send the staff CSRF token with every htmx request.
document.addEventListener("htmx:configRequest", (e) => {
  const token = document.body.dataset.csrf;
  if (token) e.detail.headers["X-CSRF-Token"] = token;
});

// Charts: <div class="chart" data-chart='{"type": "line", "x": [...], "series": [{"name":..., "data": [...]}]}'>
function buddingCharts(root) {
  if (!window.echarts) return;
  (root || document).querySelectorAll("[data-chart]").forEach((el) => {
    if (el.dataset.rendered) return;
    el.dataset.rendered = "1";
    const spec = JSON.parse(el.dataset.chart);
    const chart = echarts.init(el, null, { renderer: "svg" });
    const option = spec.option || {
      tooltip: { trigger: "axis" },
      legend: spec.series.length > 1 ? {} : undefined,
      grid: { left: 48, right: 16, top: 24, bottom: 32 },
      xAxis: { type: "category", data: spec.x },
      yAxis: { type: "value" },
      series: spec.series.map((s) => Object.assign({ type: spec.type || "line", showSymbol: false }, s)),
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
