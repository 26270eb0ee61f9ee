/* Charts of the operator pages (Chart.js). Data comes from json_script blocks. */
(function () {
  "use strict";
  const palette = ["#1f6fb2", "#e07b39", "#3a9b5c", "#8e5ea2", "#c23b4e", "#5f6b7a"];

  function read(id) {
    return JSON.parse(document.getElementById(id).textContent);
  }

  function dailyEnergy(canvasId, dataId) {
    const data = read(dataId);
    new Chart(document.getElementById(canvasId), {
      type: "bar",
      data: {
        labels: data.labels,
        datasets: data.datasets.map((d, i) => ({
          label: d.label,
          data: d.data,
          backgroundColor: palette[i % palette.length],
        })),
      },
      options: {
        maintainAspectRatio: false,
        animation: false,
        scales: {
          x: { stacked: true, ticks: { maxRotation: 0, autoSkipPadding: 12 } },
          y: { stacked: true, title: { display: true, text: "kWh" }, beginAtZero: true },
        },
        plugins: { tooltip: { mode: "index", intersect: false } },
      },
    });
  }

  function sessionCurve(canvasId, dataId) {
    const data = read(dataId);
    new Chart(document.getElementById(canvasId), {
      type: "line",
      data: {
        labels: data.labels,
        datasets: [
          {
            label: data.power_derived ? "Power (kW, from the energy register)" : "Power (kW)",
            data: data.power_kw,
            borderColor: palette[0],
            backgroundColor: palette[0],
            yAxisID: "power",
            pointRadius: 0,
            spanGaps: true,
            stepped: data.power_derived ? "before" : false,
          },
          {
            label: "Energy (kWh)",
            data: data.energy_kwh,
            borderColor: palette[1],
            backgroundColor: palette[1],
            yAxisID: "energy",
            pointRadius: 0,
            spanGaps: true,
          },
        ],
      },
      options: {
        maintainAspectRatio: false,
        animation: false,
        interaction: { mode: "index", intersect: false },
        scales: {
          x: { ticks: { maxRotation: 0, autoSkipPadding: 16 } },
          power: { position: "left", beginAtZero: true, title: { display: true, text: "kW" } },
          energy: {
            position: "right",
            beginAtZero: true,
            title: { display: true, text: "kWh" },
            grid: { drawOnChartArea: false },
          },
        },
      },
    });
  }

  window.giuCharts = { dailyEnergy: dailyEnergy, sessionCurve: sessionCurve };
})();
