// The fine-tune page, live: status, step, loss and its chart, time left, sample clips and events.

import { duration, follow, setStatus } from "./live.js";
import { LossChart } from "./loss-chart.js";

const TYPES = ["queued", "started", "progress", "checkpoint", "sample", "succeeded", "failed", "cancel_requested", "cancelled", "requeued"];
const root = document.getElementById("job");
const $ = (id) => document.getElementById(id);

function describe(event) {
  const data = event.data;
  switch (event.type) {
    case "queued": return data.resumed_from_step !== undefined ? `Queued again, to resume from step ${data.resumed_from_step}` : "Queued";
    case "started": return `Started on a worker (attempt ${data.attempt}${data.step ? `, from step ${data.step}` : ""})`;
    case "progress": return `Step ${data.step} of ${data.total_steps}, loss ${Number(data.loss).toPrecision(4)}`;
    case "checkpoint": return `Checkpoint saved at step ${data.step}`;
    case "sample": return `Sample clip rendered at step ${data.step}`;
    case "succeeded": return "Succeeded: the adapter is a new model version";
    case "failed": return `Failed: ${data.reason ?? "see the reason above"}`;
    case "cancel_requested": return "Cancel requested";
    case "cancelled": return `Cancelled${data.step !== undefined ? ` at step ${data.step}` : ""}`;
    case "requeued": return "Requeued after its worker stopped answering";
    default: return event.type;
  }
}

// Time left from the wall-clock rate since this run started (checkpoints and samples included);
// before a second progress event, from the trainer's own samples per second.
class Clock {
  constructor(batch) {
    this.batch = batch;
    this.first = null;
  }
  restart() {
    this.first = null;
  }
  left(event) {
    const { step, total_steps: total, samples_per_second: rate } = event.data;
    const at = Date.parse(event.created_at) / 1000;
    if (!this.first) this.first = { step, at };
    const stepsPerSecond = step > this.first.step ? (step - this.first.step) / (at - this.first.at) : rate / this.batch;
    return stepsPerSecond > 0 ? (total - step) / stepsPerSecond : NaN;
  }
}

function addSample(step, index) {
  const id = `sample-${step}-${index}`;
  if (document.getElementById(id)) return;
  const item = document.createElement("li");
  item.id = id;
  const video = document.createElement("video");
  video.controls = true;
  video.preload = "metadata";
  video.src = `${root.dataset.samples}/${step}/${index}`;
  video.setAttribute("aria-label", `Sample at step ${step}`);
  const label = document.createElement("span");
  label.className = "small";
  label.textContent = `Step ${step}`;
  item.append(video, document.createElement("br"), label);
  $("samples").append(item);
  $("samples-empty").hidden = true;
}

if (root) {
  const clock = new Clock(Number(root.dataset.batch) || 1);
  const chart = new LossChart($("loss-chart"));
  const active = (status, cancelling) => {
    $("cancel-form").hidden = !["queued", "running"].includes(status) || cancelling;
    $("resume-form").hidden = !["failed", "cancelled"].includes(status);
  };
  follow(root.dataset.stream, TYPES, (event) => {
    const entry = document.createElement("li");
    entry.textContent = `${new Date(event.created_at).toLocaleTimeString()} · ${describe(event)}`;
    $("job-events").append(entry);
    const data = event.data;
    switch (event.type) {
      case "queued":
      case "requeued":
        setStatus($("job-status"), "queued");
        clock.restart();
        active("queued", false);
        break;
      case "started":
        setStatus($("job-status"), "running");
        clock.restart();
        active("running", false);
        break;
      case "progress":
        $("job-progress").max = data.total_steps;
        $("job-progress").value = data.step;
        $("job-step").textContent = `${data.step} of ${data.total_steps}`;
        $("job-loss").textContent = Number(data.loss).toPrecision(4);
        chart.add(data.step, data.loss, data.total_steps);
        $("job-eta").textContent = data.step >= data.total_steps ? "–" : duration(clock.left(event));
        break;
      case "sample":
        for (const index of data.indexes) addSample(data.step, index);
        break;
      case "cancel_requested":
        active("running", true);
        break;
      case "succeeded":
      case "failed":
      case "cancelled":
        setStatus($("job-status"), event.type);
        $("job-eta").textContent = "–";
        active(event.type, false);
        if (event.type === "succeeded") $("job-model").hidden = false;
        if (event.type === "failed" && data.reason) {
          $("job-failure").textContent = data.reason;
          $("job-failure").hidden = false;
        }
        break;
    }
  }, (text) => { $("job-link").textContent = text; });
}
