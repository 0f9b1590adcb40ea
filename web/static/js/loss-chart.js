// The fine-tune page's loss per step, drawn as SVG as progress events arrive.
// One point per step: a step reported again (a resumed run trains the steps after its last
// checkpoint again) replaces its point, so a reconnect or a replay never adds one. The caption
// under the chart says the same in words; it is not a live region, since the page's step and
// loss already are one.

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 640;
const HEIGHT = 240;
const PAD = { left: 64, right: 16, top: 12, bottom: 32 };
// Past this many points the markers would merge into the line; the line alone reads better.
const MARKERS = 200;

const loss = (value) => value.toPrecision(4);

function make(name, attributes, text) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
  if (text !== undefined) element.textContent = text;
  return element;
}

export class LossChart {
  // `figure` holds the chart's <svg> and, as its text alternative, a <figcaption>.
  constructor(figure) {
    this.figure = figure;
    this.svg = figure.querySelector("svg");
    this.caption = figure.querySelector("figcaption");
    this.points = new Map();
    this.total = 0;
    this.drawing = false;
    this.svg.setAttribute("viewBox", `0 0 ${WIDTH} ${HEIGHT}`);
  }

  add(step, value, total) {
    // A diverged run's NaN (sent as null) has no place on an axis.
    if (typeof value !== "number" || !Number.isFinite(value)) return;
    this.points.set(step, value);
    this.total = Math.max(this.total, total || 0);
    this.schedule();
  }

  // A reload replays the whole history at once: draw once per frame, not once per event.
  schedule() {
    if (this.drawing) return;
    this.drawing = true;
    requestAnimationFrame(() => {
      this.drawing = false;
      this.draw();
    });
  }

  draw() {
    const steps = [...this.points.keys()].sort((a, b) => a - b);
    const values = steps.map((step) => this.points.get(step));
    this.figure.dataset.steps = String(steps.length);
    this.svg.replaceChildren();
    if (steps.length === 0) {
      this.caption.textContent = "No loss reported yet.";
      return;
    }
    const firstStep = Math.min(steps[0], 1);
    const lastStep = Math.max(steps[steps.length - 1], this.total, firstStep + 1);
    const lowest = Math.min(...values);
    const highest = Math.max(...values);
    const margin = highest > lowest ? (highest - lowest) * 0.05 : Math.abs(highest) * 0.1 || 1;
    const low = lowest - margin;
    const high = highest + margin;
    const x = (step) => PAD.left + ((step - firstStep) / (lastStep - firstStep)) * (WIDTH - PAD.left - PAD.right);
    const y = (value) => PAD.top + ((high - value) / (high - low)) * (HEIGHT - PAD.top - PAD.bottom);
    const bottom = HEIGHT - PAD.bottom;

    this.svg.append(
      make("line", { class: "chart-axis", x1: PAD.left, y1: PAD.top, x2: PAD.left, y2: bottom }),
      make("line", { class: "chart-axis", x1: PAD.left, y1: bottom, x2: WIDTH - PAD.right, y2: bottom }),
      // The axis is labelled at the highest and lowest loss seen (one label while they are equal).
      ...[...new Set([highest, lowest])].map((value) =>
        make("text", { class: "chart-label", x: PAD.left - 6, y: y(value) + 4, "text-anchor": "end" }, loss(value))),
      make("text", { class: "chart-label", x: PAD.left, y: HEIGHT - 8, "text-anchor": "start" }, `step ${firstStep}`),
      make("text", { class: "chart-label", x: WIDTH - PAD.right, y: HEIGHT - 8, "text-anchor": "end" }, `step ${lastStep}`),
      make("polyline", {
        class: "chart-line",
        points: steps.map((step, i) => `${x(step).toFixed(1)},${y(values[i]).toFixed(1)}`).join(" "),
      }),
    );
    if (steps.length <= MARKERS) {
      steps.forEach((step, i) => {
        const marker = make("circle", { class: "chart-point", cx: x(step).toFixed(1), cy: y(values[i]).toFixed(1), r: 3 });
        marker.append(make("title", {}, `Step ${step}: loss ${loss(values[i])}`));
        this.svg.append(marker);
      });
    }

    const latest = steps[steps.length - 1];
    const of = this.total ? ` of ${this.total}` : "";
    this.caption.textContent =
      `Latest loss ${loss(this.points.get(latest))} at step ${latest}${of}; ` +
      `lowest ${loss(lowest)} at step ${steps[values.indexOf(lowest)]}; ` +
      `${steps.length} ${steps.length === 1 ? "step" : "steps"} recorded.`;
  }
}
